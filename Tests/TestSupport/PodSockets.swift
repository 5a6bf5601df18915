import Foundation
import Lab
import Netns

/// Sockets opened inside a pod's network namespace from the test process: traffic with exactly
/// known packets, sizes and connections.
public enum PodSockets {
    /// A socket of `type` created in the namespace (it stays there whatever thread uses it),
    /// close-on-exec: a program another test starts meanwhile must not hold it open.
    static func socket(in netns: String, type: Int32, family: Int32 = AF_INET, proto: Int32 = 0) throws -> Int32 {
        let fd = try NetworkNamespace.run(inNamespaceAt: NetworkNamespace.path(named: netns)) {
            Glibc.socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto)
        }
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return fd
    }

    /// Calls `body` with the IPv4 address `ip:port` as a `sockaddr` and its length, as `bind`,
    /// `connect` and `sendto` take it.
    static func withAddress<T>(_ ip: String, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, ip, &address.sin_addr)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// The IPv4 address and port `fd` is bound to (`getsockname`): a connected socket's local
    /// port, or the one the kernel picked for a bind to port 0.
    public static func localAddress(_ fd: Int32) throws -> sockaddr_in {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return address
    }

    /// Sends `bytes` as one datagram (or raw packet) on `fd` to `ip:port`; throws unless all of
    /// it was sent.
    static func send(_ fd: Int32, _ bytes: [UInt8], to ip: String, port: UInt16) throws {
        let sent = withAddress(ip, port) { sendto(fd, bytes, bytes.count, 0, $0, $1) }
        guard sent == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Sends `count` UDP datagrams of `payload` bytes each from the pod to `ip:port`: all at
    /// once, or in bursts of `burst` a millisecond apart.
    public static func sendUDP(
        from netns: String, to ip: String, port: UInt16, count: Int, payload: Int, burst: Int? = nil
    ) throws {
        let fd = try socket(in: netns, type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        let bytes = [UInt8](repeating: 0x6f, count: payload)
        for index in 0..<count {
            try send(fd, bytes, to: ip, port: port)
            if let burst, (index + 1) % burst == 0 { usleep(1000) }
        }
    }

    /// Sends `count` ICMP echo requests (identifier `identifier`, sequence 1, 2, …) from the pod
    /// to `ip` through a raw socket, without waiting for the replies (the destination's kernel
    /// answers each).
    public static func ping(from netns: String, to ip: String, count: Int, identifier: UInt16 = 0x05b1) throws {
        let fd = try socket(in: netns, type: Int32(SOCK_RAW.rawValue), proto: Int32(IPPROTO_ICMP))
        defer { close(fd) }
        for index in 0..<count {
            let sequence = UInt16(truncatingIfNeeded: index + 1)
            var message: [UInt8] = [8, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xff)]
            message += [UInt8(sequence >> 8), UInt8(sequence & 0xff)] + [UInt8](repeating: 0x6f, count: 56)
            let sum = checksum(message)
            message[2] = UInt8(sum >> 8)
            message[3] = UInt8(sum & 0xff)
            try send(fd, message, to: ip, port: 0)
        }
    }

    /// The Internet checksum of `bytes`: the ones' complement of the ones' complement sum of
    /// their 16-bit words (an odd last byte padded with a zero).
    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        for offset in stride(from: 0, to: bytes.count, by: 2) {
            sum += UInt32(bytes[offset]) << 8 | UInt32(offset + 1 < bytes.count ? bytes[offset + 1] : 0)
        }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// The next sequence numbers of connected TCP socket `fd`: the one its next byte will
    /// carry, and the one it expects from its peer (read in TCP repair mode, which needs
    /// CAP_NET_ADMIN; leaving it sends a window probe, one byte behind, as keepalives are).
    public static func sequenceNumbers(_ fd: Int32) throws -> (send: UInt32, receive: UInt32) {
        // include/uapi/linux/tcp.h: TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ; the queues.
        let (repair, queue, queueSequence, receiveQueue, sendQueue): (Int32, Int32, Int32, Int32, Int32) =
            (19, 20, 21, 1, 2)
        func set(_ option: Int32, _ value: Int32) throws {
            var value = value
            guard setsockopt(fd, Int32(IPPROTO_TCP), option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
        func sequence(of which: Int32) throws -> UInt32 {
            try set(queue, which)
            var value: UInt32 = 0
            var length = socklen_t(MemoryLayout<UInt32>.size)
            guard getsockopt(fd, Int32(IPPROTO_TCP), queueSequence, &value, &length) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            return value
        }
        try set(repair, 1)
        defer { _ = try? set(repair, 0) }
        return (try sequence(of: sendQueue), try sequence(of: receiveQueue))
    }

    /// Sends one TCP segment with `flags`, sequence and acknowledgment numbers of the caller's
    /// choice and `payload` from the pod's address (the route's) and port `sourcePort` to
    /// `ip:port`, through a raw socket: what no socket of the pod would send, e.g. a segment
    /// outside its connection's window or data sent again.
    public static func sendTCPSegment(
        from netns: String, sourcePort: UInt16, to ip: String, port: UInt16, sequence: UInt32, acknowledgment: UInt32,
        flags: UInt8, payload: [UInt8]
    ) throws {
        let fd = try socket(in: netns, type: Int32(SOCK_RAW.rawValue), proto: Int32(IPPROTO_TCP))
        defer { close(fd) }
        // The checksum covers a pseudo-header with both addresses: the source is the one the
        // route to `ip` picks, as a connected UDP socket learns it.
        let probe = try socket(in: netns, type: Int32(SOCK_DGRAM.rawValue))
        defer { close(probe) }
        guard withAddress(ip, port, { Glibc.connect(probe, $0, $1) }) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        let local = try localAddress(probe)
        var destination = in_addr()
        inet_pton(AF_INET, ip, &destination)
        func bytes(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        func bytes(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
        var segment = bytes(sourcePort) + bytes(port) + bytes(sequence) + bytes(acknowledgment)
        segment += [5 << 4, flags] + bytes(UInt16(65535)) + [0, 0, 0, 0] + payload
        let pseudo =
            withUnsafeBytes(of: local.sin_addr.s_addr) { Array($0) }
            + withUnsafeBytes(of: destination.s_addr) { Array($0) }
            + [0, UInt8(IPPROTO_TCP)] + bytes(UInt16(segment.count))
        let sum = checksum(pseudo + segment)
        segment[16] = UInt8(sum >> 8)
        segment[17] = UInt8(sum & 0xff)
        try send(fd, segment, to: ip, port: 0)
    }

    /// A TCP socket listening on `port` in the pod (nonblocking; the caller closes it).
    public static func listenTCP(in netns: String, port: UInt16) throws -> Int32 {
        let fd = try socket(in: netns, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withAddress("0.0.0.0", port) { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 8) == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        return fd
    }

    /// The next connection `listener` accepts within `timeout` (nonblocking), or nil.
    public static func accept(_ listener: Int32, timeout: Double) -> Int32? {
        var pollFD = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&pollFD, 1, Int32(timeout * 1000)) == 1 else { return nil }
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    /// Moves `count` bytes from the connected nonblocking socket `sender` to its peer
    /// `receiver`, reading them as they arrive; false if it stalls for `timeout`.
    public static func transfer(_ count: Int, from sender: Int32, to receiver: Int32, timeout: Double = 10) -> Bool {
        let chunk = [UInt8](repeating: 0x61, count: 65536)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var (written, read) = (0, 0)
        while read < count {
            var fds = [
                pollfd(fd: sender, events: written < count ? Int16(POLLOUT) : 0, revents: 0),
                pollfd(fd: receiver, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&fds, 2, Int32(timeout * 1000)) > 0 else { return false }
            if written < count, fds[0].revents & Int16(POLLOUT) != 0 {
                let sent = write(sender, chunk, min(chunk.count, count - written))
                if sent > 0 { written += sent }
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                let got = Glibc.read(receiver, &buffer, buffer.count)
                if got <= 0 { return false }
                read += got
            }
        }
        return true
    }

    /// Starts a TCP connection from the pod and waits up to `timeout` for it to be established.
    /// Returns the connected socket (the caller closes it), or nil if it was not established —
    /// then the socket is already closed, so the kernel sends nothing more for it.
    public static func connectTCP(from netns: String, to ip: String, port: UInt16, timeout: Double) throws -> Int32? {
        let fd = try socket(in: netns, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        let status = withAddress(ip, port) { Glibc.connect(fd, $0, $1) }
        if status != 0 && errno != EINPROGRESS {
            close(fd)
            return nil
        }
        var pollFD = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard poll(&pollFD, 1, Int32(timeout * 1000)) == 1,
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0
        else {
            close(fd)
            return nil
        }
        return fd
    }
}
