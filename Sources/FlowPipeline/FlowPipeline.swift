import CDatapathABI
import Enricher
import FlowDecoder
import FlowMetrics
import Flows
import Foundation
import Locking
import Observer

/// The one flow pipeline: raw datapath events → decoder → enricher → observer ring and Hubble
/// metrics, a batch at a time. osprey-agent feeds it from the event reader's thread and ticks it
/// once a second from its housekeeping service; `make bench` and the stage tests drive it the
/// same way, without a kernel.
public final class FlowPipeline: Sendable {
    public let observer: Observer
    public let metrics: HubbleMetrics
    let enricher: Enricher?
    let metadata: (any MetadataSource)?
    let translation: (any ServiceTranslation)?
    private let decoder: Lock<FlowDecoder>
    /// Reads the wall clock and CLOCK_MONOTONIC (tests step it).
    private let clocks: @Sendable () -> FlowDecoder.ClockReading
    /// Told of each step of the wall clock that flow times followed (the agent logs it).
    private let clockStepped: (@Sendable (Double) -> Void)?
    /// The last running total of lost events seen per source (see `noteLost`).
    private let lostTotals = Lock<[LostEventSource: UInt64]>([:])
    /// Flows held back: from the first flow to a Service address the node had not translated
    /// (`Flow.awaitsTranslation`) on, so that the observer still gets them in order. The reader
    /// can drain a connection's first packet before the node has confirmed its conntrack entry,
    /// or before the event that carries the translation (the SYN-ACK, the RST of a refused
    /// connection, whose entry conntrack drops at once, or the drop of a SYN a policy refused
    /// after the NAT) reaches the ring. That event mostly comes in the next poll, but a loaded
    /// node can stall between the two (a vCPU the host preempts): each batch enriches the held
    /// flows again, and they go on once all are named or once a batch drained `holdLimit` after
    /// the batch that first held them — without a drain time (`process` without `drainedAt`),
    /// after one batch.
    private let held = Lock(Held())

    /// The held flows and the drain time of the batch that began holding them. The limit counts
    /// from that drain, not from the flows' packet times: a reader that drained a SYN late (a
    /// loaded node) would otherwise have used up the wait before the first poll that could bring
    /// its translation.
    private struct Held {
        var since: Date?
        var flows: [Flow] = []
    }

    /// How long flows wait for a Service translation at most, measured from the drain time of
    /// the batch that first held them to a later batch's drain time.
    public static let holdLimit: TimeInterval = 0.1

    /// Time spent in each stage, summed over batches (the bench reports it per event).
    public struct StageTimes: Sendable {
        public var decode = 0.0, enrich = 0.0, observe = 0.0, metrics = 0.0
        public init() {}
    }

    public init(
        nodeName: String, clusterName: String, kernelDropReasons: [UInt32: String] = [:],
        metadata: (any MetadataSource)?, translation: (any ServiceTranslation)? = nil, observer: Observer,
        metrics: HubbleMetrics, clocks: @escaping @Sendable () -> FlowDecoder.ClockReading = FlowDecoder.readClocks,
        clockStepped: (@Sendable (Double) -> Void)? = nil, kernelLocation: (@Sendable (UInt64) -> String?)? = nil
    ) {
        self.metadata = metadata
        self.translation = translation
        enricher = metadata.map {
            Enricher(metadata: $0, nodeName: nodeName, clusterName: clusterName, translation: translation)
        }
        self.observer = observer
        self.metrics = metrics
        decoder = Lock(
            FlowDecoder(
                nodeName: nodeName, kernelDropReasons: kernelDropReasons, clocks: clocks(),
                kernelLocation: kernelLocation))
        self.clocks = clocks
        self.clockStepped = clockStepped
    }

    /// How far before the reader's poll a progress mark is put: an event stamped just before the
    /// poll may still be being written into the ring (a BPF program takes its timestamp a few
    /// microseconds before it submits).
    public static let progressMargin: UInt64 = 2_000_000

    /// One batch of raw events; `interfaceNames` names their interfaces. With
    /// `drainedAt` (CLOCK_MONOTONIC nanoseconds taken before the ring was read: every event
    /// stamped earlier is in this batch or an earlier one), queries whose answer is overdue
    /// become flows, then the observer's progress moves to that time (less `progressMargin`, and
    /// never past a held flow). Only the event reader's thread passes it: flows reach the
    /// observer in one sequence. A flow that awaits a Service translation waits, with those after
    /// it, for the next batch (an empty one too: the reader hands one on at every poll).
    /// Such a poll first follows a step of the wall clock: its flows and mark take the new time,
    /// and a mark after a step back may be earlier than the one before.
    public func process(
        _ events: UnsafeBufferPointer<osp_event>, interfaceNames: InterfaceNames, drainedAt: UInt64? = nil
    ) {
        var times = StageTimes()
        // The batch is at most a poll old: it is told in the clock as the node keeps it now.
        guard let drainedAt else {
            process(events, interfaceNames: interfaceNames, times: &times)
            return
        }
        let (step, drained) = decoder.withLock { [clocks] in
            ($0.followWallClock(clocks()), $0.wallTime(monotonicNs: drainedAt))
        }
        process(events, interfaceNames: interfaceNames, times: &times, drainedAt: drained)
        let mark = drainedAt &- Self.progressMargin
        var (lapsed, progress) = decoder.withLock {
            ($0.unansweredQueries(nowNs: mark), $0.wallTime(monotonicNs: mark))
        }
        deliver(&lapsed, times: &times, from: Date(), drainedAt: drained)
        // Not past a held flow: every flow stamped before the mark has reached the observer.
        if let earliest = held.withLock({ $0.flows.lazy.map(\.time).min() }) {
            progress = min(progress, earliest.addingTimeInterval(-1e-6))
        }
        observer.advance(to: progress, afterClockStep: step.map { $0 < 0 } ?? false)
        if let step { clockStepped?(step) }
    }

    /// The same, adding each stage's time to `times`; `drainedAt`, the wall time the batch was
    /// drained at, bounds how long flows wait for a translation (`holdLimit`).
    public func process(
        _ events: UnsafeBufferPointer<osp_event>, interfaceNames: InterfaceNames, times: inout StageTimes,
        drainedAt: Date? = nil
    ) {
        guard !events.isEmpty else {
            releaseHeld(times: &times, drainedAt: drainedAt)
            return
        }
        let start = Date()
        var flows: [Flow] = []
        flows.reserveCapacity(events.count)
        var retransmissions = 0
        // Each event is decoded where it lies: `for event in events` (or `events[i]`) would copy
        // its 416 bytes first. The batch's address goes into the lock as a number, since the
        // decoder, which keeps no pointer, cannot say so to the compiler's isolation checks.
        let base = UInt(bitPattern: events.baseAddress)
        let count = events.count
        decoder.withLock { decoder in
            guard let first = UnsafePointer<osp_event>(bitPattern: base) else { return }
            for event in first..<first + count {
                flows.append(decoder.decode(event, interfaceName: interfaceNames.name(of: event)))
                if event.pointee.kind == UInt8(OSP_EVENT_RETRANSMIT.rawValue) { retransmissions += 1 }
            }
        }
        if let translation {
            // Translations the packets carried, before any flow of the batch is enriched: a
            // connection's first packet is reported before the reply, or the drop, that carries
            // its NAT — or, a drop without one, that it was never translated.
            var observed: [ObservedTranslation] = []
            for index in events.indices {
                if events[index].nat.present != 0 {
                    if let translation = Self.translation(events[index].nat) { observed.append(translation) }
                } else if events[index].kind == UInt8(OSP_EVENT_DROP.rawValue),
                    let untranslated = ObservedTranslation.untranslated(dropped: flows[index])
                {
                    observed.append(untranslated)
                }
            }
            if !observed.isEmpty { translation.learn(observed) }
        }
        let decoded = Date()
        times.decode += decoded.timeIntervalSince(start)
        // The flows held at the last batch go first, enriched again now that this batch's
        // translations are known.
        deliver(
            &flows, times: &times, from: decoded, retransmissions: retransmissions,
            after: takeHeld(drainedAt: drainedAt), drainedAt: drainedAt)
    }

    /// Hands the held flows on (enriched once more) without waiting for another batch: the
    /// agent calls it after the event reader's last poll.
    public func releaseHeld() {
        var times = StageTimes()
        releaseHeld(times: &times, drainedAt: nil, force: true)
    }

    private func releaseHeld(times: inout StageTimes, drainedAt: Date?, force: Bool = false) {
        let earlier = takeHeld(drainedAt: drainedAt, force: force)
        guard !earlier.isEmpty else { return }
        var none: [Flow] = []
        deliver(&none, times: &times, from: Date(), after: earlier)
    }

    /// Takes the held flows, enriching those still awaiting a translation once more (the others
    /// are final). While some still await one and the batch was drained less than `holdLimit`
    /// after the batch that began holding them, they stay held and none is taken (`force`: all
    /// are taken).
    private func takeHeld(drainedAt: Date?, force: Bool = false) -> [Flow] {
        let taken = held.withLock { held in
            defer { held = Held() }
            return held
        }
        var flows = taken.flows
        guard let enricher, !flows.isEmpty else { return flows }
        var dropped: [Int] = []
        for index in flows.indices where flows[index].awaitsTranslation {
            if !enricher.enrich(&flows[index]) { dropped.append(index) }
        }
        for index in dropped.reversed() { flows.remove(at: index) }
        if flows.contains(where: \.awaitsTranslation), !force, let drainedAt {
            // Held by a batch without a drain time: the wait counts from this one.
            let since = taken.since ?? drainedAt
            if drainedAt.timeIntervalSince(since) < Self.holdLimit {
                held.withLock { $0 = Held(since: since, flows: flows) }
                return []
            }
        }
        for index in flows.indices { flows[index].awaitsTranslation = false }
        return flows
    }

    /// Housekeeping, about once a second and never on the event reader's thread: names past
    /// their TTL are forgotten, metadata picks up changes, and the metric series of pods that
    /// went away start to expire. (Unanswered queries become flows on the reader's thread, in
    /// `process`, so that they keep their place in time among the others.)
    public func tick(now: UInt64 = FlowDecoder.monotonicNow()) {
        decoder.withLock { $0.forgetStale(nowNs: now) }
        if let gone = metadata?.refresh(), !gone.isEmpty { metrics.podsDeleted(gone) }
    }

    /// Records a source's running total of lost events (the kernel's ring counts its own); the
    /// observer is told the increase since the previous call.
    public func noteLost(_ source: LostEventSource, total: UInt64) {
        let delta = lostTotals.withLock { totals -> UInt64 in
            defer { totals[source] = total }
            return total &- (totals[source] ?? 0)
        }
        if delta > 0 { observer.recordLost(source, count: delta) }
    }

    /// Enriches the flows, then hands them, after the already enriched `earlier` ones, to the
    /// observer and the metrics — or holds them: all of them while flows are held, else from the
    /// first that awaits a Service translation on, `drainedAt` (the batch's drain time) starting
    /// their wait. Retransmissions (`retransmissions` of them) are no Hubble flows: only the
    /// pod-level metrics take them.
    private func deliver(
        _ flows: inout [Flow], times: inout StageTimes, from start: Date, retransmissions: Int = 0,
        after earlier: [Flow] = [], drainedAt: Date? = nil
    ) {
        guard !flows.isEmpty || !earlier.isEmpty else { return }
        enricher?.enrich(&flows)
        if retransmissions > 0 {
            metrics.processRetransmissions(flows.filter(\.isRetransmission))
            flows.removeAll(where: \.isRetransmission)
        }
        if !earlier.isEmpty { flows = earlier + flows }
        held.withLock { held in
            if !held.flows.isEmpty {
                held.flows += flows
                flows = []
            } else if let first = flows[earlier.count...].firstIndex(where: \.awaitsTranslation) {
                held = Held(since: drainedAt, flows: Array(flows[first...]))
                flows.removeSubrange(first...)
            }
        }
        guard !flows.isEmpty else { return }
        let enriched = Date()
        observer.append(flows)
        let observed = Date()
        metrics.process(flows)
        let counted = Date()
        times.enrich += enriched.timeIntervalSince(start)
        times.observe += observed.timeIntervalSince(enriched)
        times.metrics += counted.timeIntervalSince(observed)
    }

    /// A NAT the datapath copied from a packet's conntrack entry, in the enricher's terms.
    static func translation(_ nat: osp_nat) -> ObservedTranslation? {
        var nat = nat
        let size = nat.original.family == 6 ? 16 : 4
        let client = withUnsafeBytes(of: &nat.original.saddr) { Array($0.prefix(size)) }
        let service = withUnsafeBytes(of: &nat.original.daddr) { Array($0.prefix(size)) }
        let backend = withUnsafeBytes(of: &nat.backend) { Array($0.prefix(size)) }
        guard let client = IPText.text(client), let service = IPText.text(service),
            let backend = IPText.text(backend)
        else { return nil }
        return ObservedTranslation(
            connection: ServiceConnection(
                protocolNumber: nat.original.protocol, client: client, clientPort: nat.original.sport,
                service: service, servicePort: nat.original.dport),
            backend: ServiceBackend(ip: backend, port: nat.backend_port))
    }
}
