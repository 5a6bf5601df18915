import Foundation

/// Where events were lost (flow.LostEventSource; lower-case names are the metric label values).
public enum LostEventSource: Int, Sendable, CaseIterable {
    case perfEventRingBuffer = 1, observerEventsQueue = 2, hubbleRingBuffer = 3

    public var label: String {
        switch self {
        case .perfEventRingBuffer: "perf_event_ring_buffer"
        case .observerEventsQueue: "observer_events_queue"
        case .hubbleRingBuffer: "hubble_ring_buffer"
        }
    }
}

/// Events lost by one consumer or stage: how many, from where, and when (flow.LostEvent).
public struct LostEvents: Sendable, Equatable {
    public var source: LostEventSource
    public var count: UInt64
    public var first: Date
    public var last: Date

    public init(source: LostEventSource, count: UInt64, first: Date, last: Date) {
        self.source = source
        self.count = count
        self.first = first
        self.last = last
    }
}

/// Anything that counts events lost on their way to becoming flows or to their consumers, by
/// where (the observer ring does, and each flow log exporter); Hubble's metrics report them as
/// `hubble_lost_events_total{source}`.
public protocol LostEventLedger: Sendable {
    /// Events lost so far, by the metric's `source` label.
    var lostBySource: [String: UInt64] { get }
}
