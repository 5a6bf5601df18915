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
        case .pod: endpoint.podQualifiedName
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

    func labels(_ flow: borrowing Flow) -> (source: String, destination: String) {
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
        /// One dictionary per metric (indexed by `Metric.rawValue`).
        var counters: [[SeriesKey: Double]] = Array(repeating: [:], count: Metric.allCases.count)
        var expiring: [(pod: String, at: Date)] = []
    }

    /// The label values of one series: up to four metric-specific ones, then the context labels.
    /// A fixed struct, so counting a flow allocates no key arrays.
    struct SeriesKey: Hashable {
        var v0 = "", v1 = "", v2 = "", v3 = ""
        var source: String
        var destination: String

        func values(_ count: Int) -> [String] { Array([v0, v1, v2, v3].prefix(count)) + [source, destination] }
    }

    enum Metric: Int, CaseIterable {
        case dnsQueries, dnsResponses, drops, flows, tcpFlags, unanswered

        var name: String {
            switch self {
            case .flows: "hubble_flows_processed_total"
            case .drops: "hubble_drop_total"
            case .tcpFlags: "hubble_tcp_flags_total"
            case .dnsQueries: "hubble_dns_queries_total"
            case .dnsResponses: "hubble_dns_responses_total"
            case .unanswered: "osprey_dns_queries_unanswered_total"
            }
        }

        /// Metric-specific label names; `source` and `destination` follow.
        var labels: [String] {
            switch self {
            case .flows: ["protocol", "type", "subtype", "verdict"]
            case .drops: ["protocol", "reason"]
            case .tcpFlags: ["flag", "family"]
            case .dnsQueries, .dnsResponses: ["rcode", "qtypes", "ips_returned", "query"]
            case .unanswered: ["qtypes", "query"]
            }
        }

        var help: String {
            switch self {
            case .flows: "Flows processed, by protocol, type, subtype and verdict."
            case .drops: "Dropped flows, by protocol and Hubble drop reason."
            case .tcpFlags: "Forwarded TCP flows by flag (SYN, SYN-ACK, FIN, RST) and IP family."
            case .dnsQueries: "DNS queries sent by pods."
            case .dnsResponses: "DNS responses received by pods, by response code."
            case .unanswered: "DNS queries of pods that got no answer within the timeout."
            }
        }
    }

    public init(context: MetricsContext = MetricsContext(), expiry: Double = 60, observer: Observer? = nil) {
        self.context = context
        self.expiry = expiry
        self.observer = observer
    }

    public func process(_ flows: [Flow]) {
        state.withLock { state in
            // Borrowed in place: copying each flow would retain and release all its references.
            flows.withUnsafeBufferPointer { flows in
                for index in flows.indices { count(flows[index], &state) }
            }
        }
    }

    private func count(_ flow: borrowing Flow, _ state: inout State) {
        let (source, destination) = context.labels(flow)
        func inc(_ metric: Metric, _ v0: String, _ v1: String, _ v2: String = "", _ v3: String = "") {
            let key = SeriesKey(v0: v0, v1: v1, v2: v2, v3: v3, source: source, destination: destination)
            state.counters[metric.rawValue][key, default: 0] += 1
        }
        let isL7 = flow.dns != nil
        let proto = isL7 ? "DNS" : flow.l4.protocolName
        if flow.verdict == .dropped {
            inc(.flows, proto, "Drop", "", flow.verdict.description)
            inc(.drops, flow.l4.protocolName, DropReasons.name(flow.dropReason))
        } else {
            inc(
                .flows, proto, isL7 ? "L7" : "Trace", isL7 ? "DNS" : flow.observationPoint.name,
                flow.verdict.description)
        }
        if flow.verdict == .forwarded, case .tcp(_, _, let flags) = flow.l4 {
            let family = flow.ipVersion == 2 ? "IPv6" : "IPv4"
            if flags.contains(.syn) { inc(.tcpFlags, flags.contains(.ack) ? "SYN-ACK" : "SYN", family) }
            if flags.contains(.fin) { inc(.tcpFlags, "FIN", family) }
            if flags.contains(.rst) { inc(.tcpFlags, "RST", family) }
        }
        // DNS is counted on the client's side: queries leaving it, answers reaching it.
        if let dns = flow.dns {
            let qtypes = dns.qtypes.joined(separator: ",")
            if dns.unanswered {
                inc(.unanswered, qtypes, dns.query)
            } else if !dns.isResponse, flow.observationPoint == .fromEndpoint {
                inc(.dnsQueries, "", qtypes, "0", dns.query)
            } else if dns.isResponse, flow.observationPoint == .toEndpoint {
                inc(.dnsResponses, dns.rcodeName, qtypes, String(dns.ips.count), dns.query)
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
                for index in state.counters.indices {
                    state.counters[index] = state.counters[index].filter {
                        !due.contains($0.key.source) && !due.contains($0.key.destination)
                    }
                }
            }
            var families = Metric.allCases.map { metric in
                let names = metric.labels + ["source", "destination"]
                let samples = state.counters[metric.rawValue].map { ($0.key.values(metric.labels.count), $0.value) }
                    .sorted { $0.0.lexicographicallyPrecedes($1.0) }
                return MetricFamily(
                    name: metric.name, help: metric.help, kind: .counter,
                    samples: samples.map { MetricFamily.Sample(Array(zip(names, $0.0)), $0.1) })
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
