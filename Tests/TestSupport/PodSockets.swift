import Foundation
import Lab
import Netns

/// Sockets opened inside a pod's network namespace from the test process: traffic with exactly
/// known packets, sizes and connections.
public enum PodSockets {
    /// A socket of `type` created in the namespace (it stays there whatever thread uses it).
    static func socket(in netns: String, type: Int32, family: Int32 = AF_INET) throws -> Int32 {
        let fd = try NetworkNamespace.run(inNamespaceAt: NetworkNamespace.path(named: netns)) {
            Glibc.socket(family, type, 0)
        }
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return fd
    }

    static func address(_ ip: String, _ port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, ip, &address.sin_addr)
        return address
    }

    /// Sends `count` UDP datagrams of `payload` bytes each from the pod to `ip:port`.
    public static func sendUDP(from netns: String, to ip: String, port: UInt16, count: Int, payload: Int) throws {
        let fd = try socket(in: netns, type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        var destination = address(ip, port)
        let bytes = [UInt8](repeating: 0x6f, count: payload)
        for _ in 0..<count {
            let sent = withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard sent == payload else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }
    }

    /// Starts a TCP connection from the pod and waits up to `timeout` for it to be established.
    /// Returns the connected socket (the caller closes it), or nil if it was not established —
    /// then the socket is already closed, so the kernel sends nothing more for it.
    public static func connectTCP(from netns: String, to ip: String, port: UInt16, timeout: Double) throws -> Int32? {
        let fd = try socket(in: netns, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        var destination = address(ip, port)
        let status = withUnsafePointer(to: &destination) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
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
