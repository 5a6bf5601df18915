import Flows
import Foundation
import PrometheusExposition

/// The Hubble metrics Osprey computes, each owned by one handler (Handlers/).
enum Metric: Int, CaseIterable, Sendable {
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

/// What a flow's series follow from, as numbers: every field of the flow a handler reads (for
/// flows without DNS; their labels are free text), packed, and the endpoint whose context label
/// the series carry, by box identity. Flows with equal signatures count into the same series,
/// so the store finds them with one lookup per flow instead of hashing label strings per
/// series — while the context labels follow from the endpoints alone (`HubbleMetrics.fastPath`:
/// not `ip`). A handler that reads another field of the flow must add it here.
struct FlowSignature: Hashable {
    var fields: UInt64
    var source: ObjectIdentifier?
    var destination: ObjectIdentifier?

    /// Nil for a flow with DNS.
    init?(_ flow: borrowing Flow) {
        guard !flow.hasDNS else { return nil }
        let l4: UInt64
        var flags: UInt64 = 0
        switch flow.l4 {
        case .tcp(_, _, let tcpFlags):
            l4 = 1
            flags =
                (tcpFlags.contains(.syn) ? 1 : 0) | (tcpFlags.contains(.ack) ? 2 : 0)
                | (tcpFlags.contains(.fin) ? 4 : 0) | (tcpFlags.contains(.rst) ? 8 : 0)
        case .udp: l4 = 2
        case .icmpv4: l4 = 3
        case .icmpv6: l4 = 4
        case .other: l4 = 5
        }
        // Bits: 0-2 the protocol, 3-7 the verdict, 8-15 the observation point, 16-19 the TCP
        // flags, 20 IPv6, 32-63 the drop reason.
        fields =
            l4 | UInt64(flow.verdict.rawValue & 0x1F) << 3 | UInt64(flow.observationPoint.rawValue & 0xFF) << 8
            | flags << 16 | (flow.ipVersion == 2 ? 1 << 20 : 0)
            | UInt64(UInt32(truncatingIfNeeded: flow.dropReason)) << 32
        let direction = flow.trafficDirection
        source = direction == .egress ? flow.sourceBoxIdentity : nil
        destination = direction == .ingress ? flow.destinationBoxIdentity : nil
    }

    /// One word into the hasher instead of each field (with the optionals' tags): the hasher's
    /// rounds are most of a lookup. Equality still compares every field; a nil endpoint and an
    /// endpoint box at address 0 cannot both occur.
    func hash(into hasher: inout Hasher) {
        let source = UInt64(source.map { UInt(bitPattern: $0) } ?? 0)
        let destination = UInt64(destination.map { UInt(bitPattern: $0) } ?? 0)
        hasher.combine(
            (fields &* 0x9E37_79B9_7F4A_7C15) ^ (source &* 0xFF51_AFD7_ED55_8CCD)
                ^ (destination &* 0xC4CE_B9FE_1A85_EC53))
    }
}

/// The series one flow counts into, by index in `SeriesStore.values`: at most five for a flow
/// without DNS (flows processed, a drop, three TCP flags).
struct SeriesSlots {
    private var slots = InlineArray<5, Int32>(repeating: 0)
    private var count = 0

    /// False when full (the flow is then not remembered).
    mutating func append(_ slot: Int) -> Bool {
        guard count < slots.count, let slot = Int32(exactly: slot) else { return false }
        slots[count] = slot
        count += 1
        return true
    }

    /// Counts one more flow in each of the series.
    func increment(_ values: inout [Double]) {
        for index in 0..<count { values[Int(slots[index])] += 1 }
    }
}

/// The label values of one series: up to four metric-specific ones, then the context labels.
/// A fixed struct, so counting a flow allocates no key arrays.
struct SeriesKey: Hashable {
    var v0 = "", v1 = "", v2 = "", v3 = ""
    var source: String
    var destination: String

    func values(_ count: Int) -> [String] { Array([v0, v1, v2, v3].prefix(count)) + [source, destination] }
}

/// Every series' value, found by its labels or, on the fast path, by a flow's signature.
/// Guarded by `HubbleMetrics`'s lock.
final class SeriesStore {
    /// One dictionary per metric (indexed by `Metric.rawValue`): series → index in `values`.
    var series: [[SeriesKey: Int]] = Array(repeating: [:], count: Metric.allCases.count)
    var values: [Double] = []
    /// Most series a metric may have; what would make more is counted in its overflow slot.
    let seriesLimit: Int
    /// Per metric, the index in `values` of what its limit kept out (nil: nothing yet).
    var overflow: [Int?] = Array(repeating: nil, count: Metric.allCases.count)

    init(seriesLimit: Int = SeriesStore.defaultSeriesLimit) { self.seriesLimit = seriesLimit }

    /// A churn storm of pods must not make a Prometheus series per pod pair without bound.
    static let defaultSeriesLimit = 50_000
    /// The series of flows seen before, by signature: one lookup per flow (see `FlowSignature`).
    var fast: [FlowSignature: SeriesSlots] = [:]
    /// The endpoints `fast` refers to by box identity, kept alive so no identity is reused.
    var anchors: [ObjectIdentifier: Endpoint] = [:]
    var expiring: [(pod: String, at: Date)] = []

    /// Most entries the fast path remembers before starting over (bounds memory when endpoints
    /// churn).
    static let fastPathLimit = 65536

    func forgetFastPath() {
        fast.removeAll(keepingCapacity: true)
        anchors.removeAll(keepingCapacity: true)
    }

    /// The index of a series' value, created at 0 the first time; past the metric's limit,
    /// its overflow slot.
    func slot(_ metric: Metric, _ key: SeriesKey) -> Int {
        if let index = series[metric.rawValue][key] { return index }
        if series[metric.rawValue].count >= seriesLimit {
            if let index = overflow[metric.rawValue] { return index }
            values.append(0)
            overflow[metric.rawValue] = values.count - 1
            return values.count - 1
        }
        values.append(0)
        series[metric.rawValue][key] = values.count - 1
        return values.count - 1
    }

    /// Drops the series of pods that went away `expiry` seconds ago or more.
    func expire(now: Date, expiry: Double) {
        let due = Set(expiring.filter { now.timeIntervalSince($0.at) >= expiry }.map(\.pod))
        guard !due.isEmpty else { return }
        expiring.removeAll { due.contains($0.pod) }
        // The remaining series keep their values; their indexes and the fast path start over.
        var kept: [Double] = []
        for index in overflow.indices {
            guard let slot = overflow[index] else { continue }
            kept.append(values[slot])
            overflow[index] = kept.count - 1
        }
        for index in series.indices {
            var survivors: [SeriesKey: Int] = [:]
            for (key, slot) in series[index] where !due.contains(key.source) && !due.contains(key.destination) {
                kept.append(values[slot])
                survivors[key] = kept.count - 1
            }
            series[index] = survivors
        }
        values = kept
        forgetFastPath()
    }

    static let overflowFamilyName = "osprey_agent_metrics_series_overflow_total"

    /// One family per metric, series sorted by their labels, and what the limit kept out.
    func families() -> [MetricFamily] {
        Metric.allCases.map { metric in
            let names = metric.labels + ["source", "destination"]
            let samples = series[metric.rawValue].map { ($0.key.values(metric.labels.count), values[$0.value]) }
                .sorted { $0.0.lexicographicallyPrecedes($1.0) }
            return MetricFamily(
                name: metric.name, help: metric.help, kind: .counter,
                samples: samples.map { MetricFamily.Sample(Array(zip(names, $0.0)), $0.1) })
        } + [
            MetricFamily(
                name: Self.overflowFamilyName,
                help:
                    "Counts that would have made a metric exceed its series limit (--metrics-series-limit), by metric; they are in no series.",
                kind: .counter,
                samples: Metric.allCases.map { metric in
                    .init([("metric", metric.name)], overflow[metric.rawValue].map { values[$0] } ?? 0)
                })
        ]
    }
}
