import Locking

/// A first-in first-out queue between tasks that holds at most `capacity` units: a sender that
/// finds it full waits until the receiver has taken enough. This is how the relay passes a slow
/// client's back-pressure to the agents instead of buffering without limit. An element weighs
/// what `weight` says (by default 1, so the capacity counts elements); one heavier than the
/// whole capacity still passes when the queue is empty.
///
/// Many senders, one receiver. Cancelling a waiting sender makes its `send` throw.
final class BoundedChannel<Element: Sendable>: Sendable {
    private struct Waiter {
        let id: UInt64
        let element: Element
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var buffer: [Element] = []
        var head = 0
        /// What the queued elements weigh together.
        var load = 0
        var senders: [Waiter] = []
        var receiver: CheckedContinuation<Element?, Never>?
        var finished = false
        var nextID: UInt64 = 0

        mutating func popFirst(_ weight: (Element) -> Int) -> Element? {
            guard head < buffer.count else { return nil }
            let element = buffer[head]
            head += 1
            load -= weight(element)
            if head > 64, head * 2 > buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return element
        }
    }

    private enum SendAttempt {
        case accepted(CheckedContinuation<Element?, Never>?)
        case full
        case finished
    }

    let capacity: Int
    private let weight: @Sendable (Element) -> Int
    private let state = Lock(State())

    init(capacity: Int, weight: @escaping @Sendable (Element) -> Int = { _ in 1 }) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.weight = weight
    }

    /// Under the lock: hands `element` to a waiting receiver or queues it, if there is room.
    private func attemptSend(_ element: Element, _ state: inout State) -> SendAttempt {
        if state.finished { return .finished }
        if let receiver = state.receiver {
            state.receiver = nil
            return .accepted(receiver)
        }
        guard state.load < capacity else { return .full }
        state.buffer.append(element)
        state.load += weight(element)
        return .accepted(nil)
    }

    /// Under the lock: the next element, and the senders to wake whose elements took its place.
    private func attemptReceive(_ state: inout State) -> (Element, [CheckedContinuation<Void, any Error>])? {
        guard let element = state.popFirst(weight) else {
            guard !state.senders.isEmpty else { return nil }
            let waiter = state.senders.removeFirst()
            return (waiter.element, [waiter.continuation])
        }
        var woken: [CheckedContinuation<Void, any Error>] = []
        while state.load < capacity, !state.senders.isEmpty {
            let waiter = state.senders.removeFirst()
            state.buffer.append(waiter.element)
            state.load += weight(waiter.element)
            woken.append(waiter.continuation)
        }
        return (element, woken)
    }

    /// Queues `element`, waiting while the channel is full. Returns false once finished.
    @discardableResult
    func send(_ element: Element) async throws -> Bool {
        switch state.withLock({ attemptSend(element, &$0) }) {
        case .finished: return false
        case .accepted(let receiver):
            receiver?.resume(returning: element)
            return true
        case .full:
            break
        }
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        // Everything is decided again under one lock: the receiver may have emptied the queue
        // (and started waiting) since the first look.
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let next: SendAttempt = state.withLock { state in
                    if Task.isCancelled { return .finished }
                    let attempt = attemptSend(element, &state)
                    if case .full = attempt {
                        state.senders.append(Waiter(id: id, element: element, continuation: continuation))
                    }
                    return attempt
                }
                switch next {
                case .accepted(let receiver):
                    receiver?.resume(returning: element)
                    continuation.resume()
                case .finished:
                    continuation.resume(throwing: CancellationError())
                case .full:
                    break  // a receiver resumes it once there is room
                }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.senders.firstIndex(where: { $0.id == id }) else { return nil }
                return state.senders.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
        return true
    }

    /// Queues `element` unless the channel is full; never waits.
    @discardableResult
    func trySend(_ element: Element) -> Bool {
        switch state.withLock({ attemptSend(element, &$0) }) {
        case .accepted(let receiver):
            receiver?.resume(returning: element)
            return true
        case .full, .finished:
            return false
        }
    }

    /// The next element if one is queued (or a sender waits with one); never waits.
    func tryReceive() -> Element? {
        guard let (element, senders) = state.withLock({ attemptReceive(&$0) }) else { return nil }
        for sender in senders { sender.resume() }
        return element
    }

    /// The next element; nil once finished and empty, or when the receiving task is cancelled.
    func receive() async -> Element? {
        let first: (Element, [CheckedContinuation<Void, any Error>])?? = state.withLock { state in
            if let received = attemptReceive(&state) { return .some(received) }
            return state.finished ? .some(nil) : nil
        }
        if let first {
            guard let (element, senders) = first else { return nil }
            for sender in senders { sender.resume() }
            return element
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
                let now: (Element, [CheckedContinuation<Void, any Error>])?? = state.withLock { state in
                    if let received = attemptReceive(&state) { return .some(received) }
                    if Task.isCancelled || state.finished { return .some(nil) }
                    state.receiver = continuation
                    return nil
                }
                if let now {
                    for sender in now?.1 ?? [] { sender.resume() }
                    continuation.resume(returning: now?.0)
                }
            }
        } onCancel: {
            let receiver = state.withLock { state in
                defer { state.receiver = nil }
                return state.receiver
            }
            receiver?.resume(returning: nil)
        }
    }

    /// No more elements: waiting senders fail, the receiver gets what is queued, then nil.
    func finish() {
        let (senders, receiver) = state.withLock { state in
            state.finished = true
            defer {
                state.senders = []
                state.receiver = nil
            }
            return (state.senders, state.receiver)
        }
        for sender in senders { sender.continuation.resume(throwing: CancellationError()) }
        receiver?.resume(returning: nil)
    }
}
