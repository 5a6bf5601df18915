import Flows
import Foundation
import NodeMetrics
import Observer
import Synchronization

/// What a `source`/`destination` label holds (Hubble's metric context options).
public enum ContextOption: String, Sendable, CaseIterable {
    case pod, namespace, workload, app, ip
    case podName = "pod-name"
    case workloadName = "workload-name"

    func value(_ endpoint: Endpoint, ip: String) -> String {
        switch self {
        case .pod: endpoint.podName.isEmpty ? "" : "\(endpoint.namespace)/\(endpoint.podName)"
        case .podName: endpoint.podName
        case .namespace: endpoint.namespace
        case .workload: endpoint.workloads.first.map { "\(endpoint.namespace)/\($0.name)" } ?? ""
        case .workloadName: endpoint.workloads.first?.name ?? ""
        case .ip: ip
        case .app:
            ["app.kubernetes.io/name", "k8s-app", "app"].lazy.compactMap { key in
                endpoint.labels.first { $0.hasPrefix("k8s:\(key)=") }.map { String($0.dropFirst("k8s:\(key)=".count)) }
            }.first ?? ""
        }
    }
}

/// Hubble's context configuration: `sourceEgressContext` and `destinationIngressContext`, each a
/// list tried in order (first non-empty wins), as in `--hubble-metrics`.
public struct MetricsContext: Sendable {
    public var sourceEgress: [ContextOption]
    public var destinationIngress: [ContextOption]

    public init(sourceEgress: [ContextOption] = [.pod], destinationIngress: [ContextOption] = [.pod]) {
        self.sourceEgress = sourceEgress
        self.destinationIngress = destinationIngress
    }

    /// Parses `pod|ip`-style lists; nil names the bad option.
    public static func options(_ text: String) -> Result<[ContextOption], ContextError> {
        var options: [ContextOption] = []
        for part in text.split(separator: "|") {
            guard let option = ContextOption(rawValue: String(part)) else { return .failure(.unknown(String(part))) }
            options.append(option)
        }
        return .success(options)
    }

    public enum ContextError: Error, CustomStringConvertible {
        case unknown(String)
        public var description: String {
            guard case .unknown(let text) = self else { return "" }
            return
                "Unknown metrics context '\(text)'; use \(ContextOption.allCases.map(\.rawValue).joined(separator: ", "))."
        }
    }

    func labels(_ flow: Flow) -> (source: String, destination: String) {
        func first(_ options: [ContextOption], _ endpoint: Endpoint, _ ip: String) -> String {
            options.lazy.map { $0.value(endpoint, ip: ip) }.first { !$0.isEmpty } ?? ""
        }
        return (
            flow.trafficDirection == .egress ? first(sourceEgress, flow.source, flow.sourceIP) : "",
            flow.trafficDirection == .ingress ? first(destinationIngress, flow.destination, flow.destinationIP) : ""
        )
    }
}

/// The pod-level Hubble metrics, computed from flows: `hubble_flows_processed_total`,
/// `hubble_drop_total`, `hubble_tcp_flags_total`, `hubble_dns_queries_total`,
/// `hubble_dns_responses_total`, `hubble_lost_events_total` (plus Osprey's unanswered DNS queries).
///
/// Thread-safe. Series of a deleted pod are removed `expiry` seconds after it went away.
public final class HubbleMetrics: Sendable {
    let context: MetricsContext
    let expiry: Double
    /// Where lost events are counted, by source.
    let observer: Observer?
    private let state = Mutex(State())

    struct State {
        var counters: [String: [[String]: Double]] = [:]
        var expiring: [(pod: String, at: Date)] = []
    }

    static let labelNames: [String: [String]] = [
        "hubble_flows_processed_total": ["protocol", "type", "subtype", "verdict", "source", "destination"],
        "hubble_drop_total": ["protocol", "reason", "source", "destination"],
        "hubble_tcp_flags_total": ["flag", "family", "source", "destination"],
        "hubble_dns_queries_total": ["rcode", "qtypes", "ips_returned", "query", "source", "destination"],
        "hubble_dns_responses_total": ["rcode", "qtypes", "ips_returned", "query", "source", "destination"],
        "osprey_dns_queries_unanswered_total": ["qtypes", "query", "source", "destination"],
    ]

    static let help: [String: String] = [
        "hubble_flows_processed_total": "Flows processed, by protocol, type, subtype and verdict.",
        "hubble_drop_total": "Dropped flows, by protocol and Hubble drop reason.",
        "hubble_tcp_flags_total": "Forwarded TCP flows by flag (SYN, SYN-ACK, FIN, RST) and IP family.",
        "hubble_dns_queries_total": "DNS queries sent by pods.",
        "hubble_dns_responses_total": "DNS responses received by pods, by response code.",
        "osprey_dns_queries_unanswered_total": "DNS queries of pods that got no answer within the timeout.",
    ]

    public init(context: MetricsContext = MetricsContext(), expiry: Double = 60, observer: Observer? = nil) {
        self.context = context
        self.expiry = expiry
        self.observer = observer
    }

    public func process(_ flows: [Flow]) {
        state.withLock { state in
            for flow in flows { count(flow, &state) }
        }
    }

    private func count(_ flow: Flow, _ state: inout State) {
        let (source, destination) = context.labels(flow)
        func inc(_ name: String, _ values: [String]) {
            state.counters[name, default: [:]][values + [source, destination], default: 0] += 1
        }
        let proto = flow.isL7 ? "DNS" : flow.l4.protocolName
        let type = flow.verdict == .dropped ? "Drop" : (flow.isL7 ? "L7" : "Trace")
        let subtype = flow.verdict == .dropped ? "" : (flow.isL7 ? "DNS" : flow.observationPoint.name)
        inc("hubble_flows_processed_total", [proto, type, subtype, flow.verdict.description])
        if flow.verdict == .dropped {
            inc("hubble_drop_total", [flow.l4.protocolName, DropReasons.name(flow.dropReason)])
        }
        if flow.verdict == .forwarded, case .tcp(_, _, let flags) = flow.l4 {
            let family = flow.ipVersion == 2 ? "IPv6" : "IPv4"
            if flags.contains(.syn) {
                inc("hubble_tcp_flags_total", [flags.contains(.ack) ? "SYN-ACK" : "SYN", family])
            }
            if flags.contains(.fin) { inc("hubble_tcp_flags_total", ["FIN", family]) }
            if flags.contains(.rst) { inc("hubble_tcp_flags_total", ["RST", family]) }
        }
        // DNS is counted on the client's side: queries leaving it, answers reaching it.
        if let dns = flow.dns {
            let qtypes = dns.qtypes.joined(separator: ",")
            if dns.unanswered {
                inc("osprey_dns_queries_unanswered_total", [qtypes, dns.query])
            } else if !dns.isResponse, flow.observationPoint == .fromEndpoint {
                inc("hubble_dns_queries_total", ["", qtypes, "0", dns.query])
            } else if dns.isResponse, flow.observationPoint == .toEndpoint {
                inc("hubble_dns_responses_total", [dns.rcodeName, qtypes, String(dns.ips.count), dns.query])
            }
        }
    }

    /// Schedules removal of the series of pods that went away (`namespace/name`).
    public func podsDeleted(_ pods: [String], at time: Date = Date()) {
        state.withLock { $0.expiring += pods.map { ($0, time) } }
    }

    public func families(now: Date = Date()) -> [MetricFamily] {
        let lost = observer?.lost ?? [:]
        return state.withLock { state in
            let due = Set(state.expiring.filter { now.timeIntervalSince($0.at) >= expiry }.map(\.pod))
            if !due.isEmpty {
                state.expiring.removeAll { due.contains($0.pod) }
                for name in state.counters.keys {
                    state.counters[name] = state.counters[name]?.filter { key, _ in
                        !key.suffix(2).contains { due.contains($0) }
                    }
                }
            }
            var families = Self.labelNames.keys.sorted().map { name in
                let labels = Self.labelNames[name] ?? []
                return MetricFamily(
                    name: name, help: Self.help[name] ?? "", kind: .counter,
                    samples: (state.counters[name] ?? [:]).sorted { $0.key.lexicographicallyPrecedes($1.key) }.map {
                        MetricFamily.Sample(Array(zip(labels, $0.key)), $0.value)
                    })
            }
            families.append(
                MetricFamily(
                    name: "hubble_lost_events_total", help: "Events lost before they became flows, by where.",
                    kind: .counter,
                    samples: LostEventSource.allCases.map { .init([("source", $0.label)], Double(lost[$0] ?? 0)) }))
            return families
        }
    }
}
