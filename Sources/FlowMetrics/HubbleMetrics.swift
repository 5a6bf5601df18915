import Flows
import Foundation
import Locking
import PrometheusExposition

/// The pod-level Hubble metrics, computed from flows: `hubble_flows_processed_total`,
/// `hubble_drop_total`, `hubble_tcp_flags_total`, `hubble_dns_queries_total`,
/// `hubble_dns_responses_total`, `hubble_lost_events_total` (plus Osprey's unanswered DNS queries).
/// Each metric kind is a handler (Handlers/); this class keeps their series.
///
/// Thread-safe. Series of a deleted pod are removed `expiry` seconds after it went away.
public final class HubbleMetrics: Sendable {
    let context: MetricsContext
    /// `context.dependsOnEndpointsOnly`, worked out once: series may then be found by a flow's
    /// signature.
    let fastPath: Bool
    let expiry: Double
    /// Where lost events are counted, by source.
    let lostEvents: [any LostEventLedger]
    private let store: Lock<SeriesStore>
    /// Retina's basic DNS metrics (node-level), beside Hubble's.
    private let retinaDNS = Lock(RetinaDNSMetrics())
    /// Retina's advanced pod-level metrics, when asked for (`--pod-level-metrics`).
    private let podLevel: Lock<RetinaPodMetrics?>
    private let podLevelEnabled: Bool
    /// The zones of the cluster's nodes, by name (for the pod-level `zone` label).
    private let zones: @Sendable () -> [String: String]

    /// - Parameter seriesLimit: the most series each metric may have; counts past it go to
    ///   `osprey_agent_metrics_series_overflow_total{metric}`.
    /// - Parameter podLevel: Retina's advanced pod-level metrics and their labels; nil: none.
    /// - Parameter zones: the zones of the cluster's nodes, asked at each scrape.
    public init(
        context: MetricsContext = MetricsContext(), expiry: Double = 60, lostEvents: [any LostEventLedger] = [],
        seriesLimit: Int = HubbleMetrics.defaultSeriesLimit, podLevel: PodLevelOptions? = nil,
        zones: @escaping @Sendable () -> [String: String] = { [:] }
    ) {
        self.context = context
        fastPath = context.dependsOnEndpointsOnly
        self.expiry = expiry
        self.lostEvents = lostEvents
        store = Lock(SeriesStore(seriesLimit: seriesLimit))
        self.podLevel = Lock(podLevel.map { RetinaPodMetrics(options: $0, seriesLimit: seriesLimit) })
        podLevelEnabled = podLevel != nil
        self.zones = zones
    }

    /// Series per metric by default: far more than a node's pods make, few enough for Prometheus.
    public static let defaultSeriesLimit = SeriesStore.defaultSeriesLimit

    public func process(_ flows: [Flow]) {
        store.withLock { store in
            if store.fast.count > SeriesStore.fastPathLimit { store.forgetFastPath() }
            // Borrowed in place: copying each flow would retain and release all its references.
            flows.withUnsafeBufferPointer { flows in
                for index in flows.indices { count(flows[index], store) }
            }
        }
        retinaDNS.withLock { dns in
            flows.withUnsafeBufferPointer { flows in
                for index in flows.indices where flows[index].hasDNS { dns.count(flows[index]) }
            }
        }
        guard podLevelEnabled else { return }
        let now = Date().timeIntervalSince1970
        podLevel.withLock { metrics in
            flows.withUnsafeBufferPointer { flows in
                for index in flows.indices { metrics?.count(flows[index], now: now) }
            }
        }
    }

    /// TCP retransmissions of this node's sockets: only Retina's pod-level
    /// `adv_tcpretrans_count` counts them (they are no Hubble flows).
    public func processRetransmissions(_ flows: [Flow]) {
        guard podLevelEnabled else { return }
        let now = Date().timeIntervalSince1970
        podLevel.withLock { metrics in
            for flow in flows { metrics?.countRetransmission(flow, now: now) }
        }
    }

    /// Counts a flow into its series: those of a flow with the same signature seen before, or
    /// the ones the handlers name (then remembered by the signature).
    private func count(_ flow: borrowing Flow, _ store: SeriesStore) {
        let signature = fastPath ? FlowSignature(flow) : nil
        if let signature, let slots = store.fast[signature] {
            slots.increment(&store.values)
            return
        }
        let facts = FlowFacts(flow)
        var counter = StoreCounter(store: store, labels: context.labels(flow))
        FlowHandler.count(flow, facts, into: &counter)
        DropHandler.count(flow, facts, into: &counter)
        TCPFlagsHandler.count(flow, facts, into: &counter)
        DNSHandler.count(flow, facts, into: &counter)
        guard let signature, let slots = counter.slots else { return }
        store.fast[signature] = slots
        if let source = signature.source { store.anchors[source] = flow.source }
        if let destination = signature.destination { store.anchors[destination] = flow.destination }
    }

    /// Schedules removal of the series of pods that went away (`namespace/name`).
    public func podsDeleted(_ pods: [String], at time: Date = Date()) {
        store.withLock { $0.expiring += pods.map { ($0, time) } }
        podLevel.withLock { $0?.deleted += pods.map { ($0, time) } }
    }

    public func families(now: Date = Date()) -> [MetricFamily] {
        var lost: [String: UInt64] = [:]
        for ledger in lostEvents { lost.merge(ledger.lostBySource, uniquingKeysWith: +) }
        // Hubble's own sources always (zeros included), then others (flow log exporters) by name.
        let standard = LostEventSource.allCases.map(\.label)
        let sources = standard + lost.keys.filter { !standard.contains($0) }.sorted()
        var families = store.withLock { store in
            store.expire(now: now, expiry: expiry)
            return store.families()
        }
        families += retinaDNS.withLock { $0.families() }
        if podLevelEnabled {
            let zones = zones()
            let (podFamilies, overflowed, expired) = podLevel.withLock { metrics in
                metrics?.expire(now: now, expiry: expiry)
                return (metrics?.families(zones: zones) ?? [], metrics?.overflowed ?? [], metrics?.expired ?? [])
            }
            families += podFamilies
            // Their overflow goes into the one overflow family, beside the Hubble metrics'.
            if let slot = families.firstIndex(where: { $0.name == SeriesStore.overflowFamilyName }) {
                families[slot].samples += RetinaPodMetrics.Metric.allCases.map {
                    .init([("metric", $0.name)], overflowed[$0.rawValue])
                }
            }
            families.append(
                MetricFamily(
                    name: "controlplane_networkobservability_expired_metrics_counter",
                    help: "Pod-level series removed because nothing updated them within the ttl (--pod-level-ttl).",
                    kind: .counter,
                    samples: RetinaPodMetrics.Metric.allCases.map {
                        .init([("metric", $0.baseName)], expired[$0.rawValue])
                    }))
        }
        families.append(
            MetricFamily(
                name: "hubble_lost_events_total", help: "Events lost before they became flows, by where.",
                kind: .counter,
                samples: sources.map { .init([("source", $0)], Double(lost[$0] ?? 0)) }))
        return families
    }
}

/// Counts one flow's series into the store by their labels, and notes where they are.
struct StoreCounter: SeriesCounter {
    let store: SeriesStore
    /// The flow's context labels.
    let labels: (source: String, destination: String)
    /// The series counted so far; nil if more than a flow can have.
    var slots: SeriesSlots? = SeriesSlots()

    mutating func count(_ metric: Metric, _ v0: String, _ v1: String, _ v2: String, _ v3: String) {
        let index = store.slot(
            metric, SeriesKey(v0: v0, v1: v1, v2: v2, v3: v3, source: labels.source, destination: labels.destination))
        store.values[index] += 1
        if slots?.append(index) == false { slots = nil }
    }
}
