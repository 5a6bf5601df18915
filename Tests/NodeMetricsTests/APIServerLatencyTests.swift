import Foundation
import Netlink
import PrometheusExposition
import Testing

@testable import NodeMetrics

/// The API-server latency readings against real connections of this namespace (sock_diag).
@Suite("API-server latency from the node's connections")
struct APIServerLatencyTests {
    /// A TCP listener on 127.0.0.1 and its port.
    static func listener() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        try #require(bound == 0 && listen(fd, 16) == 0)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// A connected client socket to 127.0.0.1:`port`.
    static func connectClient(_ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(status == 0)
        return fd
    }

    static func value(_ families: [MetricFamily], _ name: String, suffix: String, le: String? = nil) -> Double? {
        families.first { $0.name == name }?.samples.first {
            $0.suffix == suffix && (le == nil || $0.labels.contains { $0 == ("le", le!) })
        }?.value
    }

    @Test("sock_diag finds this namespace's connection to the server, with the kernel's RTT")
    func socketDiag() throws {
        let server = try Self.listener()
        defer { close(server.fd) }
        let client = try Self.connectClient(server.port)
        defer { close(client) }
        let sockets = try SocketDiag().established(remotePort: server.port)
        #expect(sockets.count == 1)
        #expect(sockets.first?.remoteAddress == "127.0.0.1")
        #expect(sockets.first.map { $0.rttMicroseconds > 0 && $0.rttMicroseconds < 1_000_000 } == true)
    }

    @Test("every reading adds each connection's RTT; only new ones count as handshakes; retransmissions as no response")
    func readings() throws {
        let server = try Self.listener()
        defer { close(server.fd) }
        let latency = try APIServerLatency(server: "https://127.0.0.1:\(server.port)", interval: 10)
        let open = try Self.connectClient(server.port)
        defer { close(open) }
        latency.sample()  // learns what is open: no handshake
        let new = try Self.connectClient(server.port)
        defer { close(new) }
        latency.sample()
        var families = latency.families()
        #expect(Self.value(families, "networkobservability_adv_node_apiserver_latency", suffix: "_count") == 3)
        #expect(
            Self.value(families, "networkobservability_adv_node_apiserver_tcp_handshake_latency", suffix: "_count") == 1
        )
        #expect(Self.value(families, "networkobservability_node_apiserver_handshake_latency_ms", suffix: "_count") == 1)
        #expect(
            Self.value(families, "networkobservability_adv_node_apiserver_latency", suffix: "_bucket", le: "0.5") == 3)

        // Retransmissions grow: what grew is counted; a connection seen first counts all its own.
        let known = TCPSocketInfo(
            localAddress: "10.0.0.2", localPort: 40000, remoteAddress: "10.0.0.1", remotePort: 6443,
            rttMicroseconds: 2_400, totalRetransmissions: 2)
        let quiet = try APIServerLatency(server: "https://10.0.0.1:6443", interval: 10)
        quiet.record([known])
        var later = known
        later.totalRetransmissions = 5
        later.rttMicroseconds = 80_000
        var other = known
        other.localPort = 40001
        other.totalRetransmissions = 1
        quiet.record([later, other])
        families = quiet.families()
        #expect(
            families.first { $0.name == "networkobservability_adv_node_apiserver_no_response" }?.samples.first?.value
                == 4)
        let name = "networkobservability_adv_node_apiserver_latency"
        #expect(Self.value(families, name, suffix: "_bucket", le: "2.5") == 2, "2.4 ms rounds to 2")
        #expect(Self.value(families, name, suffix: "_bucket", le: "63.5") == 2, "80 ms is past the last bound")
        #expect(Self.value(families, name, suffix: "_bucket", le: "+Inf") == 3)
        #expect(families.first { $0.name == name }?.kind == .histogram)
    }

    @Test("a server address without a host is one sentence")
    func badServer() {
        #expect(throws: APIServerLatencyError.self) { try APIServerLatency(server: "https://", interval: 10) }
    }
}
