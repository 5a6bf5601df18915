import Flows
import Foundation

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

/// What a live subscriber receives: flows, and a record of what it missed when it fell behind.
public enum ObserverEvent: Sendable {
    case flow(Flow)
    case lost(LostEvents)

    public var flow: Flow? {
        if case .flow(let flow) = self { flow } else { nil }
    }
}

/// One live subscriber: a bounded queue the pipeline fills without ever waiting. When the queue
/// is full, flows are counted instead of queued, and the subscriber gets one `.lost` record as
/// soon as there is room again.
final class Subscriber: @unchecked Sendable {
    // Touched only under the Observer's lock.
    let continuation: AsyncStream<ObserverEvent>.Continuation
    var missed: UInt64 = 0
    var firstMissed = Date.distantPast
    var lastMissed = Date.distantPast

    init(_ continuation: AsyncStream<ObserverEvent>.Continuation) { self.continuation = continuation }

    /// Offers a flow; returns how many flows this call added to the missed count (0 or 1).
    func offer(_ flow: Flow) -> UInt64 {
        if missed > 0 {
            let record = LostEvents(source: .hubbleRingBuffer, count: missed, first: firstMissed, last: lastMissed)
            guard case .enqueued = continuation.yield(.lost(record)) else { return miss(flow.time) }
            missed = 0
        }
        guard case .enqueued = continuation.yield(.flow(flow)) else { return miss(flow.time) }
        return 0
    }

    private func miss(_ time: Date) -> UInt64 {
        if missed == 0 { firstMissed = time }
        lastMissed = time
        missed += 1
        return 1
    }
}
