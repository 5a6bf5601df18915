import FlowDecoder
import Foundation
import Netns

/// The answer to one DNS query, as a resolver sees it.
public struct DNSAnswer: Sendable, Equatable {
    /// RCODE: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED.
    public var rcode: Int
    /// Addresses in the answer section (A and AAAA records), in order.
    public var addresses: [String]

    public init(rcode: Int, addresses: [String]) {
        self.rcode = rcode
        self.addresses = addresses
    }
}

/// Sends a real DNS query over UDP from inside a pod's network namespace.
///
/// Tests use it to assert the response code exactly (glibc's `getent` cannot tell NXDOMAIN
/// from a timeout).
public enum DNSProbe {
    public enum RecordType: UInt16, Sendable { case a = 1, aaaa = 28 }

    /// Returns the answer, or nil when none arrived within `timeout`. From `sourcePort` when
    /// given, else from a port the kernel picks.
    public static func query(
        _ name: String, type: RecordType = .a, server: String, fromNamespace netns: String, timeout: Double = 2,
        sourcePort: UInt16? = nil
    ) throws -> DNSAnswer? {
        // The socket is created inside the pod's namespace and keeps living there.
        let fd = try NetworkNamespace.run(inNamespaceAt: NetworkNamespace.path(named: netns)) {
            socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let sourcePort {
            var reuse: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
            guard PodSockets.withAddress("0.0.0.0", sourcePort, { bind(fd, $0, $1) }) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }

        let id = UInt16.random(in: 1...UInt16.max)
        let message = encodeQuery(id: id, name: name, type: type)
        try PodSockets.send(fd, message, to: server, port: 53)
        var buffer = [UInt8](repeating: 0, count: 1500)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count < 0 { return nil }  // timed out
            if let answer = decodeResponse(Array(buffer[0..<count]), id: id) { return answer }
        }
        return nil
    }

    static func encodeQuery(id: UInt16, name: String, type: RecordType) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        bytes += [0, UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xff), 0, 1]
        return bytes
    }

    /// The answer to query `id`, parsed by the same decoder the agent uses for DNS flows.
    static func decodeResponse(_ bytes: [UInt8], id: UInt16) -> DNSAnswer? {
        guard let message = DNSMessage(bytes), message.id == id, message.isResponse else { return nil }
        return DNSAnswer(rcode: message.rcode, addresses: message.addresses)
    }
}

/// Asks a DNS server one query after another from inside a pod, each from a socket and a port of
/// its own as resolvers do, on a thread of its own until told to stop. The ports are taken in
/// turn from 10000–29999, below the kernel's ephemeral range: none is one the pod's own resolver
/// used moments before through the DNS Service, which would make the node's NAT change it on the
/// way to the server (README, Limits).
public final class DNSAsker: @unchecked Sendable {
    let name: String
    let server: String
    let netns: String
    private let lock = NSCondition()
    /// Guarded by `lock`.
    private var stopping = false
    private var done = false
    private var asked = 0
    private var unansweredPorts: Set<UInt16> = []

    public init(name: String, server: String, netns: String) {
        self.name = name
        self.server = server
        self.netns = netns
    }

    public func start() {
        Thread { [self] in
            while !lock.withLock({ stopping }) {
                let port = UInt16(10_000 + lock.withLock { asked } % 20_000)
                let answer = try? DNSProbe.query(
                    name, server: server, fromNamespace: netns, timeout: 1, sourcePort: port)
                lock.withLock {
                    asked += 1
                    if answer == nil { unansweredPorts.insert(port) }
                }
            }
            lock.withLock {
                done = true
                lock.broadcast()
            }
        }.start()
    }

    /// Stops asking, once the query under way has its answer or timed out (again: nothing more):
    /// how many were asked, and the ports of those that got no answer.
    @discardableResult
    public func stop() -> (asked: Int, unansweredPorts: Set<UInt16>) {
        lock.lock()
        defer { lock.unlock() }
        stopping = true
        while !done { lock.wait() }
        return (asked, unansweredPorts)
    }
}
