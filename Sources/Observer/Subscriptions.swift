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

/// One live subscriber: a cursor into the observer's ring, like a Hubble ring reader. The
/// pipeline never waits for it and never copies a flow for it: appending a batch moves a lagging
/// subscriber's cursor past what it can no longer read (counted, and told to it as a `.lost`
/// record before what it reads next) and wakes it if it waits. All mutable state is guarded by
/// the observer's lock.
final class Subscriber: @unchecked Sendable {
    let id: UInt64
    /// Whether it receives progress marks.
    let progress: Bool
    /// How far behind the newest flow it may fall before the oldest unread are lost.
    let limit: UInt64
    /// The sequence number (see `Observer.State.seen`) of the next flow it reads.
    var cursor: UInt64
    /// The number of the newest mark it was given (or that was already made when it
    /// subscribed).
    var lastMark: UInt64
    var missed: LostEvents?
    var waiter: CheckedContinuation<Void, Never>?
    var finished = false

    init(id: UInt64, progress: Bool, limit: UInt64, cursor: UInt64, lastMark: UInt64) {
        self.id = id
        self.progress = progress
        self.limit = limit
        self.cursor = cursor
        self.lastMark = lastMark
    }

    func miss(_ count: UInt64, first: Date, last: Date) {
        if missed == nil { missed = LostEvents(source: .hubbleRingBuffer, count: 0, first: first, last: last) }
        missed!.count += count
        missed!.last = last
    }
}

/// Ends its subscription when the last copy of the subscription (or its iterator) goes.
final class SubscriptionHandle: Sendable {
    let observer: Observer
    let subscriber: Subscriber

    init(observer: Observer, subscriber: Subscriber) {
        self.observer = observer
        self.subscriber = subscriber
    }

    deinit { observer.finish(subscriber) }
}

/// The events of one live subscription (see `Observer.subscribe`). Ends when dropped, when
/// `cancel` is called or when its task is cancelled.
public struct ObserverSubscription: AsyncSequence, Sendable {
    let handle: SubscriptionHandle
    var subscriber: Subscriber { handle.subscriber }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let handle: SubscriptionHandle
        /// Events taken from the observer in one go (under one lock), handed out one by one.
        var taken: [ObserverEvent] = []
        var index = 0

        public mutating func next() async -> ObserverEvent? {
            guard await ready() else { return nil }
            defer { index += 1 }
            return taken[index]
        }

        /// Every event that is ready (at least one, at most what one take holds), waiting for
        /// the first; nil when the subscription has ended. For writers that send a batch at once.
        public mutating func nextBatch() async -> ArraySlice<ObserverEvent>? {
            guard await ready() else { return nil }
            defer { index = taken.count }
            return taken[index...]
        }

        /// Takes more events once every taken one is handed out, waiting while there are none;
        /// false when the subscription has ended.
        private mutating func ready() async -> Bool {
            while index >= taken.count {
                guard let events = handle.observer.take(handle.subscriber) else { return false }
                (taken, index) = (events, 0)
                if events.isEmpty { await handle.observer.wait(handle.subscriber) }
            }
            return true
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }

    /// Ends the subscription: iteration finishes and the observer forgets the subscriber now
    /// (for a reader whose client has gone, and who would otherwise wait for the next flow).
    public func cancel() { handle.observer.finish(handle.subscriber) }
}
