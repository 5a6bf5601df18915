import Flows
import Foundation
import Locking

/// The agent's memory of flows: a ring of the last N (N = 2^k − 1, as Hubble's
/// `hubble-event-buffer-capacity`), how many were ever seen, and what was lost where.
///
/// Thread-safe; appends take a batch under one lock.
public final class Observer: LostEventLedger {
    public static let defaultCapacity = 4095
    public let capacity: Int
    private let state: Lock<State>

    struct State {
        var ring: [Flow?]
        var next = 0
        var count = 0
        /// How many flows were ever appended: flow number `n` (from 0) sits at `ring[n % capacity]`
        /// while it is among the last `count`. Subscribers' cursors count the same way.
        var seen: UInt64 = 0
        /// Flows pushed out of the ring by newer ones.
        var overwritten: UInt64 = 0
        var lost: [LostEventSource: UInt64] = [:]
        var subscribers: [UInt64: Subscriber] = [:]
        var sinks: [UInt64: any FlowSink] = [:]
        var nextSubscriber: UInt64 = 0
        /// Namespace → when a flow last involved it (for GetNamespaces).
        var namespaces: [String: Date] = [:]
        /// (time, seen) about once a second over the last minute (for flows_rate).
        var rateSamples: [(time: Date, seen: UInt64)] = []
        /// Every flow with an earlier time has been appended (see `advance`).
        var progress = Date.distantPast
        /// The recent progress marks, oldest first, each with its number (counting from 1) and
        /// how many flows had been appended when it was made: a subscriber gets a mark after the
        /// flows before it.
        var marks: [(number: UInt64, sequence: UInt64, time: Date)] = []
        /// How many marks were made.
        var markCount: UInt64 = 0
    }

    /// How many recent marks are kept (some seconds' worth at the reader's pace; a subscriber
    /// further behind skips to newer ones, which say more).
    static let keptMarks = 256

    /// When the observer started (uptime in ServerStatus).
    public let started = Date()

    public enum CapacityError: Error, CustomStringConvertible {
        case invalid(Int)
        public var description: String {
            guard case .invalid(let value) = self else { return "" }
            return "Flow buffer capacity \(value) is not 2^k−1 between 1 and 65535 (e.g. 4095)."
        }
    }

    public init(capacity: Int = Observer.defaultCapacity) throws(CapacityError) {
        guard capacity >= 1, capacity <= 65535, (capacity + 1) & capacity == 0 else { throw .invalid(capacity) }
        self.capacity = capacity
        state = Lock(State(ring: Array(repeating: nil, count: capacity)))
    }

    public func append(_ flows: [Flow]) {
        guard !flows.isEmpty else { return }
        let now = Date()
        // The batch's namespaces: clusters have few, so a short list compared by equality (cheap
        // for the shared strings the enricher hands out) beats hashing every flow's.
        var namespaces: [String] = []
        func note(_ namespace: String) {
            if !namespace.isEmpty, !namespaces.contains(namespace) { namespaces.append(namespace) }
        }
        flows.withUnsafeBufferPointer { flows in
            for index in flows.indices {
                note(flows[index].source.namespace)
                note(flows[index].destination.namespace)
            }
        }
        let waiters = state.withLock { state in
            for namespace in namespaces { state.namespaces[namespace] = now }
            if state.rateSamples.last.map({ now.timeIntervalSince($0.time) >= 1 }) ?? true {
                state.rateSamples.append((now, state.seen))
                if state.rateSamples.count > 62 { state.rateSamples.removeFirst(state.rateSamples.count - 62) }
            }
            var missed: UInt64 = 0
            for subscriber in state.subscribers.values {
                missed += Self.lap(subscriber, by: flows, ring: state.ring, seen: state.seen)
            }
            if missed > 0 { state.lost[.hubbleRingBuffer, default: 0] &+= missed }
            for index in flows.indices {
                if state.ring[state.next] != nil { state.overwritten &+= 1 }
                state.ring[state.next] = flows[index]
                state.next = state.next + 1 == capacity ? 0 : state.next + 1
                if state.count < capacity { state.count += 1 }
            }
            state.seen &+= UInt64(flows.count)
            for sink in state.sinks.values { sink.receive(flows) }
            return Self.takeWaiters(state.subscribers) { _ in true }
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Moves `subscriber`'s cursor past the flows it could no longer read once `flows` are
    /// appended (it may lag at most its limit), recording them as missed; returns how many.
    private static func lap(_ subscriber: Subscriber, by flows: [Flow], ring: [Flow?], seen: UInt64) -> UInt64 {
        let unread = seen - subscriber.cursor + UInt64(flows.count)
        guard unread > subscriber.limit else { return 0 }
        let skipped = unread - subscriber.limit
        // Both ends are still readable: in the ring (the cursor never lags more than the ring
        // holds) or in the batch.
        func time(_ sequence: UInt64) -> Date {
            sequence >= seen
                ? flows[Int(sequence - seen)].time : ring[Int(sequence % UInt64(ring.count))]?.time ?? .distantPast
        }
        subscriber.miss(skipped, first: time(subscriber.cursor), last: time(subscriber.cursor + skipped - 1))
        subscriber.cursor += skipped
        return skipped
    }

    /// The waiting subscribers that `wanted` accepts, no longer waiting (resume them after the lock).
    private static func takeWaiters(
        _ subscribers: [UInt64: Subscriber], _ wanted: (Subscriber) -> Bool
    ) -> [CheckedContinuation<Void, Never>] {
        var waiters: [CheckedContinuation<Void, Never>] = []
        for subscriber in subscribers.values where subscriber.waiter != nil && wanted(subscriber) {
            waiters.append(subscriber.waiter!)
            subscriber.waiter = nil
        }
        return waiters
    }

    /// Records that every flow with a time before `time` has been appended (the event reader
    /// says so after each poll of the kernel's ring), and tells the subscribers that asked for
    /// progress, after the flows they were handed before. A relay merging several nodes' streams
    /// can then release a flow as soon as every node has got past its time, instead of holding
    /// it for a fixed sort window. Times that do not move forward are ignored, except
    /// `afterClockStep`: the node's wall clock was set back, and flows from now on carry times
    /// from the clock as it is now, so marks start again from this one.
    public func advance(to time: Date, afterClockStep: Bool = false) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard time > state.progress || (afterClockStep && time != state.progress) else { return [] }
            state.progress = time
            state.markCount += 1
            state.marks.append((state.markCount, state.seen, time))
            if state.marks.count >= 2 * Self.keptMarks { state.marks.removeFirst(Self.keptMarks) }
            return Self.takeWaiters(state.subscribers) { $0.progress }
        }
        for waiter in waiters { waiter.resume() }
    }

    /// How far `advance` has got.
    public var progress: Date { state.withLock { $0.progress } }

    /// Hands every batch appended from now on to `sink`, under the observer's lock (so sinks
    /// see flows in order), until `detach`. The sink must only queue them: it counts what it
    /// cannot take itself.
    public func attach(_ sink: any FlowSink) -> UInt64 {
        state.withLock { state in
            state.nextSubscriber += 1
            state.sinks[state.nextSubscriber] = sink
            return state.nextSubscriber
        }
    }

    public func detach(_ id: UInt64) { _ = state.withLock { $0.sinks.removeValue(forKey: id) } }

    /// Every flow in the ring, oldest first, and — atomically with it, so that nothing is missed
    /// or repeated — a live stream of every flow appended afterwards (see `subscribe`).
    public func historyAndSubscribe(
        buffer: Int? = nil, progress: Bool = false
    ) -> (history: [Flow], live: ObserverSubscription) {
        var history: [Flow] = []
        let live = subscribe(buffer: buffer, progress: progress) { state in
            history = Self.ordered(state, capacity: self.capacity)
        }
        return (history, live)
    }

    /// Every flow in the ring, oldest first.
    public func history() -> [Flow] { state.withLock { Self.ordered($0, capacity: capacity) } }

    private static func ordered(_ state: State, capacity: Int) -> [Flow] {
        var result: [Flow] = []
        result.reserveCapacity(state.count)
        var index = (state.next - state.count + capacity) % capacity
        for _ in 0..<state.count {
            if let flow = state.ring[index] { result.append(flow) }
            index = (index + 1) % capacity
        }
        return result
    }

    /// Namespaces that had flows since `since`, sorted.
    public func namespaces(since: Date) -> [String] {
        state.withLock { state in state.namespaces.filter { $0.value >= since }.keys.sorted() }
    }

    /// Flows per second over about the last minute.
    public var flowsRate: Double {
        state.withLock { state in
            let now = Date()
            guard let oldest = state.rateSamples.first(where: { now.timeIntervalSince($0.time) <= 61 }) else {
                return 0
            }
            let elapsed = now.timeIntervalSince(oldest.time)
            return elapsed > 0 ? Double(state.seen &- oldest.seen) / elapsed : 0
        }
    }

    /// A live stream of every flow appended from now on. The subscriber never slows the
    /// pipeline: it reads the ring at its own pace, and when it falls more than `buffer` flows
    /// (at most the ring's capacity, the default) behind the newest, the oldest it has not read
    /// are lost for it alone, replaced by a `.lost` record (counted as `hubble_ring_buffer`
    /// losses), as with Hubble's ring readers. Ends when the subscription is dropped or
    /// cancelled or its task is cancelled. With `progress`, progress marks come in the stream too,
    /// each after the flows appended before it (one far behind skips to newer marks).
    public func subscribe(buffer: Int? = nil, progress: Bool = false) -> ObserverSubscription {
        subscribe(buffer: buffer, progress: progress) { _ in }
    }

    /// Registers a subscriber, running `alongside` under the same lock.
    private func subscribe(buffer: Int?, progress: Bool, alongside: (State) -> Void) -> ObserverSubscription {
        let limit = UInt64(max(1, min(buffer ?? capacity, capacity)))
        let subscriber = state.withLock { state in
            state.nextSubscriber += 1
            let subscriber = Subscriber(
                id: state.nextSubscriber, progress: progress, limit: limit, cursor: state.seen,
                lastMark: state.markCount)
            state.subscribers[subscriber.id] = subscriber
            alongside(state)
            return subscriber
        }
        return ObserverSubscription(handle: SubscriptionHandle(observer: self, subscriber: subscriber))
    }

    /// What `subscriber` has to read, up to `limit` events, in order: what it missed, flows, and
    /// the marks that follow them; empty when there is nothing yet, nil once it has finished.
    func take(_ subscriber: Subscriber, limit: Int = 256) -> [ObserverEvent]? {
        state.withLock { state in
            guard !subscriber.finished else { return nil }
            var events: [ObserverEvent] = []
            if let missed = subscriber.missed {
                events.append(.lost(missed))
                subscriber.missed = nil
            }
            func flows(until end: UInt64) {
                while subscriber.cursor < end && events.count < limit {
                    if let flow = state.ring[Int(subscriber.cursor % UInt64(capacity))] { events.append(.flow(flow)) }
                    subscriber.cursor += 1
                }
            }
            if subscriber.progress {
                for mark in state.marks where mark.number > subscriber.lastMark {
                    flows(until: mark.sequence)
                    guard subscriber.cursor >= mark.sequence else { break }
                    events.append(.progress(mark.time))
                    subscriber.lastMark = mark.number
                }
            }
            flows(until: state.seen)
            return events
        }
    }

    /// Waits until `subscriber` has something to read or has finished (or its task is cancelled,
    /// which finishes it).
    func wait(_ subscriber: Subscriber) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state in
                    let ready =
                        subscriber.finished || subscriber.missed != nil || subscriber.cursor < state.seen
                        || (subscriber.progress && state.markCount > subscriber.lastMark)
                    if !ready { subscriber.waiter = waiter }
                    return ready
                }
                if ready { waiter.resume() }
            }
        } onCancel: {
            finish(subscriber)
        }
    }

    /// Ends a subscription: the observer forgets it, and a read waiting on it returns nil.
    func finish(_ subscriber: Subscriber) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            subscriber.finished = true
            state.subscribers.removeValue(forKey: subscriber.id)
            defer { subscriber.waiter = nil }
            return subscriber.waiter
        }
        waiter?.resume()
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    public var attachedSinks: Int { state.withLock { $0.sinks.count } }

    public func recordLost(_ source: LostEventSource, count: UInt64) {
        guard count > 0 else { return }
        state.withLock { $0.lost[source, default: 0] &+= count }
    }

    /// The newest `limit` flows that pass `filter`, oldest first.
    public func last(_ limit: Int, where filter: (Flow) -> Bool = { _ in true }) -> [Flow] {
        state.withLock { state in
            var result: [Flow] = []
            var index = state.next
            for _ in 0..<state.count {
                index = (index - 1 + capacity) % capacity
                if let flow = state.ring[index], filter(flow) {
                    result.append(flow)
                    if result.count == limit { break }
                }
            }
            return result.reversed()
        }
    }

    public var numFlows: Int { state.withLock { $0.count } }
    public var seenFlows: UInt64 { state.withLock { $0.seen } }
    public var overwrittenFlows: UInt64 { state.withLock { $0.overwritten } }
    public var lost: [LostEventSource: UInt64] { state.withLock { $0.lost } }

    /// Every source the observer knows, zeros included (the metric's series exist from the start).
    public var lostBySource: [String: UInt64] {
        let lost = self.lost
        return Dictionary(uniqueKeysWithValues: LostEventSource.allCases.map { ($0.label, lost[$0] ?? 0) })
    }
}
