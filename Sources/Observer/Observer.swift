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
    }

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
        state.withLock { state in
            for namespace in namespaces { state.namespaces[namespace] = now }
            if state.rateSamples.last.map({ now.timeIntervalSince($0.time) >= 1 }) ?? true {
                state.rateSamples.append((now, state.seen))
                if state.rateSamples.count > 62 { state.rateSamples.removeFirst(state.rateSamples.count - 62) }
            }
            for index in flows.indices {
                if state.ring[state.next] != nil { state.overwritten &+= 1 }
                state.ring[state.next] = flows[index]
                state.next = state.next + 1 == capacity ? 0 : state.next + 1
                if state.count < capacity { state.count += 1 }
            }
            state.seen &+= UInt64(flows.count)
            var missed: UInt64 = 0
            for subscriber in state.subscribers.values {
                for flow in flows { missed += subscriber.offer(flow) }
            }
            if missed > 0 { state.lost[.hubbleRingBuffer, default: 0] &+= missed }
            for sink in state.sinks.values { sink.receive(flows) }
        }
    }

    /// Records that every flow with a time before `time` has been appended (the event reader
    /// says so after each poll of the kernel's ring), and tells the subscribers that asked for
    /// progress, after the flows they were handed before. A relay merging several nodes' streams
    /// can then release a flow as soon as every node has got past its time, instead of holding
    /// it for a fixed sort window. Times that do not move forward are ignored.
    public func advance(to time: Date) {
        state.withLock { state in
            guard time > state.progress else { return }
            state.progress = time
            for subscriber in state.subscribers.values where subscriber.progress {
                subscriber.continuation.yield(.progress(time))
            }
        }
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
        buffer: Int = 1024, progress: Bool = false
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
    /// pipeline: beyond `buffer` unread events, flows are dropped for it alone and replaced by
    /// a `.lost` record (counted as `hubble_ring_buffer` losses). Ends when the stream is
    /// dropped or cancelled. With `progress`, progress marks come in the stream too (a mark that
    /// does not fit is left out: a later one says more).
    public func subscribe(buffer: Int = 1024, progress: Bool = false) -> ObserverSubscription {
        subscribe(buffer: buffer, progress: progress) { _ in }
    }

    /// Registers a subscriber, running `alongside` under the same lock.
    private func subscribe(buffer: Int, progress: Bool, alongside: (State) -> Void) -> ObserverSubscription {
        let (stream, continuation) = AsyncStream<ObserverEvent>.makeStream(bufferingPolicy: .bufferingOldest(buffer))
        let subscriber = Subscriber(continuation, progress: progress)
        let id = state.withLock { state -> UInt64 in
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = subscriber
            alongside(state)
            return state.nextSubscriber
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return ObserverSubscription(stream: stream, subscriber: subscriber)
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
