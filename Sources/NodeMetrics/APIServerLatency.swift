import Flows
import Foundation
import Locking
import Netlink
import PrometheusExposition

/// Retina's API-server latency metrics, from what the kernel already measures: every
/// `interval` the agent reads (sock_diag, as `ss -ti`) the node's established TCP connections to
/// the Kubernetes API server it uses — the kubelet's, its own, anyone's — and takes each one's
/// smoothed round-trip time. Nothing is sent: no probe traffic, no log line on the API server.
///
/// - `adv_node_apiserver_latency`: every connection's RTT, each time it is read.
/// - `adv_node_apiserver_tcp_handshake_latency`: the RTT of connections seen for the first
///   time (new ones, whose RTT the kernel took from their handshake; the connections already
///   open when the agent starts are not counted).
/// - `adv_node_apiserver_no_response`: segments to the API server retransmitted because no
///   answer came in time (`tcpi_total_retrans`, growth between readings).
public final class APIServerLatency: Sendable {
    /// The API server's host (a name or an address) and port, from the kubeconfig or the pod's
    /// environment.
    public let host: String
    public let port: UInt16
    public let interval: Double

    /// Retina's buckets: 0.5, 1.5, … 63.5 ms.
    static let bounds = (0..<64).map { Double($0) + 0.5 }

    struct Histogram {
        var counts = [UInt64](repeating: 0, count: APIServerLatency.bounds.count + 1)
        var sum = 0.0

        mutating func observe(_ milliseconds: Double) {
            let slot = APIServerLatency.bounds.firstIndex { milliseconds <= $0 } ?? APIServerLatency.bounds.count
            counts[slot] += 1
            sum += milliseconds
        }
    }

    struct State {
        var latency = Histogram()
        var handshake = Histogram()
        var noResponse: UInt64 = 0
        var failures: UInt64 = 0
        /// Retransmissions of each connection at the last reading; nil before the first.
        var retransmissions: [String: UInt32]?
    }
    private let state = Lock(State())

    public init(server: String, interval: Double) throws(APIServerLatencyError) {
        guard let url = URL(string: server), let host = url.host, !host.isEmpty else {
            throw APIServerLatencyError(message: "The API server address \(server) has no host to measure.")
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        port = UInt16(url.port ?? 443)
        self.interval = interval
    }

    /// Reads the connections every `interval` until cancelled.
    public func run() async {
        while !Task.isCancelled {
            await Task.detached { [self] in self.sample() }.value
            try? await Task.sleep(for: .seconds(interval))
        }
    }

    /// One reading of the node's connections to the API server.
    public func sample() {
        let addresses = Set(IPText.addresses(ofHost: host))
        do {
            let sockets = try SocketDiag().established(remotePort: port).filter {
                addresses.contains(Self.unmapped($0.remoteAddress))
            }
            record(sockets)
        } catch {
            state.withLock { $0.failures += 1 }
        }
    }

    /// Adds one reading's connections.
    func record(_ sockets: [TCPSocketInfo]) {
        state.withLock { state in
            let previous = state.retransmissions
            var current: [String: UInt32] = [:]
            for socket in sockets {
                let key = "\(socket.localAddress) \(socket.localPort) \(socket.remoteAddress) \(socket.remotePort)"
                current[key] = socket.totalRetransmissions
                // Whole milliseconds, as Retina rounds them.
                let milliseconds = (Double(socket.rttMicroseconds) / 1000).rounded()
                state.latency.observe(milliseconds)
                guard let previous else { continue }  // the first reading only learns what is open
                if let before = previous[key] {
                    state.noResponse += UInt64(socket.totalRetransmissions &- min(before, socket.totalRetransmissions))
                } else {
                    state.handshake.observe(milliseconds)
                    state.noResponse += UInt64(socket.totalRetransmissions)
                }
            }
            state.retransmissions = current
        }
    }

    /// An IPv4-mapped IPv6 address as its IPv4 one.
    static func unmapped(_ address: String) -> String {
        address.hasPrefix("::ffff:") && address.contains(".") ? String(address.dropFirst(7)) : address
    }

    public func families() -> [MetricFamily] {
        let state = state.withLock { $0 }
        func family(_ name: String, _ help: String, _ histogram: Histogram) -> MetricFamily {
            .histogram(name: name, help: help, bounds: Self.bounds, counts: histogram.counts, sum: histogram.sum)
        }
        return [
            family(
                "networkobservability_adv_node_apiserver_latency",
                "Round-trip milliseconds of this node's connections to the API server (each reading of each).",
                state.latency),
            family(
                "networkobservability_adv_node_apiserver_tcp_handshake_latency",
                "Round-trip milliseconds of new connections to the API server (from their handshake).",
                state.handshake),
            // The name Retina's Standard Pod Level dashboard asks for (Retina never exports it).
            family(
                "networkobservability_node_apiserver_handshake_latency_ms",
                "The handshake latency to the API server again, under the name Retina's dashboard queries.",
                state.handshake),
            MetricFamily(
                name: "networkobservability_adv_node_apiserver_no_response",
                help: "Segments to the API server retransmitted because no answer came in time.", kind: .counter,
                samples: [.init([("no_response", "no_response")], Double(state.noResponse))]),
            MetricFamily(
                name: "osprey_agent_apiserver_latency_failures_total",
                help: "Readings of the node's connections to the API server that failed (sock_diag).",
                kind: .counter, samples: [.init([], Double(state.failures))]),
        ]
    }
}

public struct APIServerLatencyError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
