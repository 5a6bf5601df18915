import Flows
import Foundation
import Locking

/// What a live subscriber receives: flows, a record of what it missed when it fell behind, and
/// (when it asked for them) progress marks.
public enum ObserverEvent: Sendable {
    case flow(Flow)
    case lost(LostEvents)
    /// Every flow with an earlier time has been delivered before this mark: the node's clock has
    /// got this far (see `Observer.advance`).
    case progress(Date)

    public var flow: Flow? {
        if case .flow(let flow) = self { flow } else { nil }
    }
}

/// A consumer the observer hands each appended batch to, in order, without waiting (flow logs):
/// `receive` runs under the observer's lock, so it only queues, and counts what it cannot take.
public protocol FlowSink: AnyObject, Sendable {
    func receive(_ flows: [Flow])
}

/// One live subscriber: a bounded queue the pipeline fills without ever waiting. When the queue
/// is full, flows are counted instead of queued; the reader learns how many (a `.lost` record)
/// the next time it asks for an event, before the flows that were still queued.
final class Subscriber: Sendable {
    let continuation: AsyncStream<ObserverEvent>.Continuation
    /// Whether it receives progress marks.
    let progress: Bool
    private let missed = Lock<LostEvents?>(nil)

    init(_ continuation: AsyncStream<ObserverEvent>.Continuation, progress: Bool) {
        self.continuation = continuation
        self.progress = progress
    }

    /// Offers a flow; returns how many flows this call added to the missed count (0 or 1).
    func offer(_ flow: Flow) -> UInt64 {
        guard case .dropped = continuation.yield(.flow(flow)) else { return 0 }
        missed.withLock { missed in
            if missed == nil {
                missed = LostEvents(source: .hubbleRingBuffer, count: 0, first: flow.time, last: flow.time)
            }
            missed!.count += 1
            missed!.last = flow.time
        }
        return 1
    }

    /// What was missed since the last call, if anything.
    func takeMissed() -> LostEvents? {
        missed.withLock { missed in
            defer { missed = nil }
            return missed
        }
    }
}

/// The events of one live subscription (see `Observer.subscribe`). Ends when dropped or when
/// its task is cancelled.
public struct ObserverSubscription: AsyncSequence, Sendable {
    let stream: AsyncStream<ObserverEvent>
    let subscriber: Subscriber

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<ObserverEvent>.AsyncIterator
        let subscriber: Subscriber

        public mutating func next() async -> ObserverEvent? {
            if let lost = subscriber.takeMissed() { return .lost(lost) }
            return await base.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), subscriber: subscriber)
    }

    /// Ends the subscription: iteration finishes and the observer forgets the subscriber now
    /// (for a reader whose client has gone, and who would otherwise wait for the next flow).
    public func cancel() { subscriber.continuation.finish() }
}
