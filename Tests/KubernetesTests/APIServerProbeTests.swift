import Foundation
import PrometheusExposition
import Testing

@testable import KubernetesSource

/// The API-server latency probe against real sockets: a listener answers, a closed port is a
/// failure, a listener whose accept queue is full drops the SYN (no response).
@Suite("API-server latency probe")
struct APIServerProbeTests {
    /// A TCP listener on 127.0.0.1 that never accepts; its port.
    static func listener(backlog: Int32) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        try #require(bound == 0 && listen(fd, backlog) == 0)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    static func value(_ families: [MetricFamily], _ name: String, suffix: String = "", le: String? = nil) -> Double? {
        families.first { $0.name == name }?.samples.first {
            $0.suffix == suffix && (le == nil || $0.labels.contains { $0 == ("le", le!) })
        }?.value
    }

    @Test("answered handshakes fill both histograms in whole milliseconds; refused and unanswered ones are counted")
    func probe() throws {
        let open = try Self.listener(backlog: 16)
        defer { close(open.fd) }
        let probe = try APIServerProbe(server: "https://127.0.0.1:\(open.port)", interval: 10)
        let outcome = probe.handshake()
        guard case .answered(let milliseconds) = outcome else {
            Issue.record("a listening port answers: \(outcome)")
            return
        }
        #expect(milliseconds < 50)
        probe.record(outcome)
        probe.record(.answered(2.4))
        probe.record(.answered(80))

        // A port nobody listens on refuses: nothing to time.
        let closed = try Self.listener(backlog: 1)
        close(closed.fd)
        let refused = try APIServerProbe(server: "https://127.0.0.1:\(closed.port)", interval: 10)
        #expect(refused.handshake() == .failed)

        // A full accept queue drops SYNs: no SYN-ACK within 500 ms.
        let full = try Self.listener(backlog: 0)
        defer { close(full.fd) }
        let filler = try APIServerProbe(server: "https://127.0.0.1:\(full.port)", interval: 10, noResponseAfter: 0.2)
        var outcomes: [APIServerProbe.Outcome] = []
        for _ in 0..<4 { outcomes.append(filler.handshake()) }
        #expect(outcomes.contains(.unanswered), "\(outcomes)")
        probe.record(.unanswered)

        let families = probe.families()
        for name in [
            "networkobservability_adv_node_apiserver_latency",
            "networkobservability_adv_node_apiserver_tcp_handshake_latency",
            "networkobservability_node_apiserver_handshake_latency_ms",
        ] {
            #expect(families.first { $0.name == name }?.kind == .histogram)
            #expect(Self.value(families, name, suffix: "_count") == 3)
            #expect(Self.value(families, name, suffix: "_bucket", le: "2.5") == 2, "2.4 ms rounds to 2")
            #expect(Self.value(families, name, suffix: "_bucket", le: "63.5") == 2, "80 ms is past the last bound")
            #expect(Self.value(families, name, suffix: "_bucket", le: "+Inf") == 3)
        }
        #expect(Self.value(families, "networkobservability_adv_node_apiserver_no_response") == 1)
    }

    @Test("a server address without a host is one sentence")
    func badServer() {
        #expect(throws: APIServerProbeError.self) { try APIServerProbe(server: "https://", interval: 10) }
    }
}
