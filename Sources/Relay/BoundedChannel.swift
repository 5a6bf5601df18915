import Synchronization

/// A first-in first-out queue between tasks that holds at most `capacity` elements: a sender
/// that finds it full waits until the receiver takes one. This is how the relay passes a slow
/// client's back-pressure to the agents instead of buffering without limit.
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
        var senders: [Waiter] = []
        var receiver: CheckedContinuation<Element?, Never>?
        var finished = false
        var nextID: UInt64 = 0

        var count: Int { buffer.count - head }

        mutating func popFirst() -> Element? {
            guard head < buffer.count else { return nil }
            let element = buffer[head]
            head += 1
            if head > 64, head * 2 > buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return element
        }
    }

    private enum SendOutcome {
        case done(Bool)
        case deliver(CheckedContinuation<Element?, Never>)
        case wait(UInt64)
    }

    private enum ReceiveOutcome {
        case element(Element?, CheckedContinuation<Void, any Error>?)
        case wait
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Queues `element`, waiting while the channel is full. Returns false once finished.
    @discardableResult
    func send(_ element: Element) async throws -> Bool {
        let outcome: SendOutcome = state.withLock { state in
            if state.finished { return .done(false) }
            if let receiver = state.receiver {
                state.receiver = nil
                return .deliver(receiver)
            }
            if state.count < capacity {
                state.buffer.append(element)
                return .done(true)
            }
            state.nextID += 1
            return .wait(state.nextID)
        }
        switch outcome {
        case .done(let accepted): return accepted
        case .deliver(let receiver):
            receiver.resume(returning: element)
            return true
        case .wait(let id):
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let cancelled: Bool = state.withLock { state in
                        if Task.isCancelled || state.finished { return true }
                        state.senders.append(Waiter(id: id, element: element, continuation: continuation))
                        return false
                    }
                    if cancelled { continuation.resume(throwing: CancellationError()) }
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
    }

    /// Queues `element` unless the channel is full; never waits.
    @discardableResult
    func trySend(_ element: Element) -> Bool {
        let (accepted, receiver): (Bool, CheckedContinuation<Element?, Never>?) = state.withLock { state in
            if state.finished { return (false, nil) }
            if let receiver = state.receiver {
                state.receiver = nil
                return (true, receiver)
            }
            guard state.count < capacity else { return (false, nil) }
            state.buffer.append(element)
            return (true, nil)
        }
        receiver?.resume(returning: element)
        return accepted
    }

    /// The next element; nil once finished and empty, or when the receiving task is cancelled.
    func receive() async -> Element? {
        let outcome: ReceiveOutcome = state.withLock { state in
            if let element = state.popFirst() {
                // Room again: the longest-waiting sender's element joins the queue.
                if !state.senders.isEmpty {
                    let waiter = state.senders.removeFirst()
                    state.buffer.append(waiter.element)
                    return .element(element, waiter.continuation)
                }
                return .element(element, nil)
            }
            if !state.senders.isEmpty {
                let waiter = state.senders.removeFirst()
                return .element(waiter.element, waiter.continuation)
            }
            return state.finished ? .element(nil, nil) : .wait
        }
        switch outcome {
        case .element(let element, let sender):
            sender?.resume()
            return element
        case .wait:
            return await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
                    let immediate: Element?? = state.withLock { state in
                        if Task.isCancelled || state.finished { return .some(nil) }
                        if let element = state.popFirst() { return .some(element) }
                        state.receiver = continuation
                        return .none
                    }
                    if let immediate { continuation.resume(returning: immediate) }
                }
            } onCancel: {
                let receiver = state.withLock { state in
                    defer { state.receiver = nil }
                    return state.receiver
                }
                receiver?.resume(returning: nil)
            }
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
