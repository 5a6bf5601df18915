import Foundation
import PrometheusExposition
import Synchronization

/// Retina's API-server latency metrics, measured from this node: every `interval` the agent
/// opens a TCP connection to the Kubernetes API server it uses and times the handshake (SYN
/// out, SYN-ACK back: `connect` completing), then closes it without sending anything.
///
/// Retina matches packets on the host interface by TCP timestamp; a handshake is what both
/// measure alike, so `adv_node_apiserver_latency` and `…_tcp_handshake_latency` get the same
/// observations here. A handshake not answered within `noResponseAfter` (Retina keeps a sent
/// packet 500 ms) counts in `adv_node_apiserver_no_response`.
public final class APIServerProbe: Sendable {
    /// `host:port` of the API server (from the kubeconfig or the pod's environment).
    let host: String
    let port: UInt16
    let interval: Double
    let noResponseAfter: Double

    /// Retina's buckets: 0.5, 1.5, … 63.5 ms.
    static let bounds = (0..<64).map { Double($0) + 0.5 }

    struct Histogram {
        var counts = [UInt64](repeating: 0, count: APIServerProbe.bounds.count + 1)
        var sum = 0.0
        var noResponse: UInt64 = 0
        var failures: UInt64 = 0
    }
    private let histogram = Mutex(Histogram())

    public init(server: String, interval: Double, noResponseAfter: Double = 0.5) throws(APIServerProbeError) {
        guard let url = URL(string: server), let host = url.host, !host.isEmpty else {
            throw APIServerProbeError(message: "The API server address \(server) has no host to time.")
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        port = UInt16(url.port ?? 443)
        self.interval = interval
        self.noResponseAfter = noResponseAfter
    }

    /// Times a handshake every `interval` until cancelled.
    public func run() async {
        while !Task.isCancelled {
            let outcome = await Task.detached { [self] in self.handshake() }.value
            record(outcome)
            try? await Task.sleep(for: .seconds(interval))
        }
    }

    public enum Outcome: Equatable, Sendable {
        /// The handshake took this many milliseconds.
        case answered(Double)
        /// No SYN-ACK within `noResponseAfter`.
        case unanswered
        /// Refused, unreachable or not resolvable: nothing to time.
        case failed
    }

    public func record(_ outcome: Outcome) {
        histogram.withLock { histogram in
            switch outcome {
            case .answered(let milliseconds):
                // Whole milliseconds, as Retina rounds them.
                let rounded = milliseconds.rounded()
                let slot = Self.bounds.firstIndex { rounded <= $0 } ?? Self.bounds.count
                histogram.counts[slot] += 1
                histogram.sum += rounded
            case .unanswered: histogram.noResponse += 1
            case .failed: histogram.failures += 1
            }
        }
    }

    /// One timed handshake (blocking; run off the cooperative pool).
    public func handshake() -> Outcome {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let address = list else { return .failed }
        defer { freeaddrinfo(list) }
        let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failed }
        defer { close(fd) }
        let started = DispatchTime.now().uptimeNanoseconds
        if connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
            return .failed
        }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&poller, 1, Int32(noResponseAfter * 1000))
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        guard ready > 0 else { return ready == 0 ? .unanswered : .failed }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { return .failed }
        return .answered(elapsed)
    }

    public func families() -> [MetricFamily] {
        let histogram = histogram.withLock { $0 }
        func family(_ name: String, _ help: String) -> MetricFamily {
            .histogram(name: name, help: help, bounds: Self.bounds, counts: histogram.counts, sum: histogram.sum)
        }
        return [
            family(
                "networkobservability_adv_node_apiserver_latency",
                "Milliseconds between this node's packet to the API server and the answer (its TCP handshake)."),
            family(
                "networkobservability_adv_node_apiserver_tcp_handshake_latency",
                "Milliseconds between this node's SYN to the API server and its SYN-ACK."),
            // The name Retina's Standard Pod Level dashboard asks for (Retina never exports it).
            family(
                "networkobservability_node_apiserver_handshake_latency_ms",
                "The TCP handshake latency to the API server again, under the name Retina's dashboard queries."),
            MetricFamily(
                name: "networkobservability_adv_node_apiserver_no_response",
                help: "Handshakes to the API server not answered within 500 ms.", kind: .counter,
                samples: [.init([("no_response", "no_response")], Double(histogram.noResponse))]),
            MetricFamily(
                name: "osprey_agent_apiserver_probe_failures_total",
                help: "Handshakes to the API server that could not be timed (refused, unreachable, not resolvable).",
                kind: .counter, samples: [.init([], Double(histogram.failures))]),
        ]
    }
}

public struct APIServerProbeError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
