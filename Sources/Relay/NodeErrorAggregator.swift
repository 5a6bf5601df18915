import HubbleAPI

/// Coalesces NODE_ERROR status events as Hubble Relay does: an error is held for a window
/// (10 s), and errors with the same message that arrive meanwhile join it (their node names are
/// appended), so a cluster-wide failure reads as one event instead of one per node. A different
/// message releases the one held. Other responses are not its business.
struct NodeErrorAggregator {
    let window: Duration
    private var pending: Observer_GetFlowsResponse?
    private var due: ContinuousClock.Instant?

    init(window: Duration) { self.window = window }

    /// Takes a NODE_ERROR event; returns what must be sent now (an older error it displaced).
    mutating func add(_ event: Observer_GetFlowsResponse, now: ContinuousClock.Instant) -> Observer_GetFlowsResponse? {
        if var held = pending, held.nodeStatus.message == event.nodeStatus.message {
            held.nodeStatus.nodeNames += event.nodeStatus.nodeNames
            pending = held
            return nil
        }
        let released = pending
        pending = event
        due = now + window
        return released
    }

    /// The held error once its window has passed.
    mutating func expired(now: ContinuousClock.Instant) -> Observer_GetFlowsResponse? {
        guard let due, now >= due else { return nil }
        return flush()
    }

    /// The held error, whatever the time (the stream is ending).
    mutating func flush() -> Observer_GetFlowsResponse? {
        defer {
            pending = nil
            due = nil
        }
        return pending
    }

    static func isNodeError(_ response: Observer_GetFlowsResponse) -> Bool {
        if case .nodeStatus(let status)? = response.responseTypes { return status.stateChange == .nodeError }
        return false
    }
}
