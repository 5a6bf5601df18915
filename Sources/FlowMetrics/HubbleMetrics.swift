import Flows
import Foundation
import PrometheusExposition
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

    /// True when no option reads the address: the labels then follow from the endpoints alone.
    var dependsOnEndpointsOnly: Bool { !sourceEgress.contains(.ip) && !destinationIngress.contains(.ip) }

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
    let lostEvents: (any LostEventLedger)?
    private let state = Mutex(State())

    struct State {
        /// One dictionary per metric (indexed by `Metric.rawValue`): series → index in `values`.
        var series: [[SeriesKey: Int]] = Array(repeating: [:], count: Metric.allCases.count)
        var values: [Double] = []
        /// The same series found without hashing label strings (see `FastKey`).
        var fast: [FastKey: Int] = [:]
        /// The endpoints `fast` refers to by box identity, kept alive so no identity is reused.
        var anchors: [ObjectIdentifier: Endpoint] = [:]
        var expiring: [(pod: String, at: Date)] = []

        mutating func forgetFastPath() {
            fast.removeAll(keepingCapacity: true)
            anchors.removeAll(keepingCapacity: true)
        }
    }

    /// A series named by numbers: the metric, its label values packed as codes (they come from
    /// a flow's enums), and the endpoints whose context labels it carries, by box identity.
    /// Hashing it costs a fraction of hashing the label strings.
    struct FastKey: Hashable {
        var metric: UInt8
        var codes: UInt64
        var source: ObjectIdentifier?
        var destination: ObjectIdentifier?
    }

    /// Most entries the fast path remembers before starting over (bounds memory when endpoints
    /// churn).
    static let fastPathLimit = 65536

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

    public init(
        context: MetricsContext = MetricsContext(), expiry: Double = 60, lostEvents: (any LostEventLedger)? = nil
    ) {
        self.context = context
        self.expiry = expiry
        self.lostEvents = lostEvents
    }

    public func process(_ flows: [Flow]) {
        state.withLock { state in
            if state.fast.count > Self.fastPathLimit { state.forgetFastPath() }
            // Borrowed in place: copying each flow would retain and release all its references.
            flows.withUnsafeBufferPointer { flows in
                for index in flows.indices { count(flows[index], &state) }
            }
        }
    }

    private func count(_ flow: borrowing Flow, _ state: inout State) {
        // The context labels are a function of the endpoints alone unless an option reads the IP.
        let byEndpoint = context.dependsOnEndpointsOnly
        let egress = flow.trafficDirection == .egress
        let ingress = flow.trafficDirection == .ingress
        let sourceBox = byEndpoint && egress ? flow.source.boxIdentity : nil
        let destinationBox = byEndpoint && ingress ? flow.destination.boxIdentity : nil
        var labels: (source: String, destination: String)?
        func slot(_ metric: Metric, _ key: () -> SeriesKey) -> Int {
            if let index = state.series[metric.rawValue][key()] { return index }
            state.values.append(0)
            state.series[metric.rawValue][key()] = state.values.count - 1
            return state.values.count - 1
        }
        /// Counts a series whose metric-specific labels are determined by `codes`.
        func inc(_ metric: Metric, codes: UInt64, _ v0: String, _ v1: String, _ v2: String = "", _ v3: String = "") {
            let fastKey =
                byEndpoint
                ? FastKey(metric: UInt8(metric.rawValue), codes: codes, source: sourceBox, destination: destinationBox)
                : nil
            if let fastKey, let index = state.fast[fastKey] {
                state.values[index] += 1
                return
            }
            if labels == nil { labels = context.labels(flow) }
            let (source, destination) = labels!
            let index = slot(metric) {
                SeriesKey(v0: v0, v1: v1, v2: v2, v3: v3, source: source, destination: destination)
            }
            state.values[index] += 1
            if let fastKey {
                state.fast[fastKey] = index
                if egress { state.anchors[flow.source.boxIdentity] = flow.source }
                if ingress { state.anchors[flow.destination.boxIdentity] = flow.destination }
            }
        }
        func inc(_ metric: Metric, _ v0: String, _ v1: String, _ v2: String = "", _ v3: String = "") {
            if labels == nil { labels = context.labels(flow) }
            let (source, destination) = labels!
            let index = slot(metric) {
                SeriesKey(v0: v0, v1: v1, v2: v2, v3: v3, source: source, destination: destination)
            }
            state.values[index] += 1
        }
        let isL7 = flow.dns != nil
        let proto = isL7 ? "DNS" : flow.l4.protocolName
        // What the flow's enums say, packed: it names the metric-specific labels below.
        let l4Code: UInt64 =
            switch flow.l4 {
            case .tcp: 1
            case .udp: 2
            case .icmpv4: 3
            case .icmpv6: 4
            case .other: 5
            }
        let flowCodes =
            l4Code | (isL7 ? 8 : 0) | UInt64(flow.verdict.rawValue) << 4 | UInt64(flow.observationPoint.rawValue) << 8
        if flow.verdict == .dropped {
            inc(.flows, codes: flowCodes, proto, "Drop", "", flow.verdict.description)
            inc(
                .drops, codes: l4Code | UInt64(UInt32(truncatingIfNeeded: flow.dropReason)) << 8,
                flow.l4.protocolName, DropReasons.name(flow.dropReason))
        } else {
            inc(
                .flows, codes: flowCodes, proto, isL7 ? "L7" : "Trace", isL7 ? "DNS" : flow.observationPoint.name,
                flow.verdict.description)
        }
        if flow.verdict == .forwarded, case .tcp(_, _, let flags) = flow.l4 {
            let v6: UInt64 = flow.ipVersion == 2 ? 1 : 0
            let family = v6 == 1 ? "IPv6" : "IPv4"
            if flags.contains(.syn) {
                let synAck = flags.contains(.ack)
                inc(.tcpFlags, codes: (synAck ? 2 : 1) | v6 << 4, synAck ? "SYN-ACK" : "SYN", family)
            }
            if flags.contains(.fin) { inc(.tcpFlags, codes: 3 | v6 << 4, "FIN", family) }
            if flags.contains(.rst) { inc(.tcpFlags, codes: 4 | v6 << 4, "RST", family) }
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
        let lost = lostEvents?.lost ?? [:]
        return state.withLock { state in
            let due = Set(state.expiring.filter { now.timeIntervalSince($0.at) >= expiry }.map(\.pod))
            if !due.isEmpty {
                state.expiring.removeAll { due.contains($0.pod) }
                // The remaining series keep their values; their indexes and the fast path start over.
                var values: [Double] = []
                for index in state.series.indices {
                    var kept: [SeriesKey: Int] = [:]
                    for (key, slot) in state.series[index]
                    where !due.contains(key.source) && !due.contains(key.destination) {
                        values.append(state.values[slot])
                        kept[key] = values.count - 1
                    }
                    state.series[index] = kept
                }
                state.values = values
                state.forgetFastPath()
            }
            var families = Metric.allCases.map { metric in
                let names = metric.labels + ["source", "destination"]
                let samples = state.series[metric.rawValue].map {
                    ($0.key.values(metric.labels.count), state.values[$0.value])
                }
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
