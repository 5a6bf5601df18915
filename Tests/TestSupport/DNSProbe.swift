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

    /// Returns the answer, or nil when none arrived within `timeout`.
    public static func query(
        _ name: String, type: RecordType = .a, server: String, fromNamespace netns: String, timeout: Double = 2
    ) throws -> DNSAnswer? {
        // The socket is created inside the pod's namespace and keeps living there.
        let fd = try NetworkNamespace.run(inNamespaceAt: NetworkNamespace.path(named: netns)) {
            socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))

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
