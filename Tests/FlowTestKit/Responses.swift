import HubbleAPI

extension Observer_GetFlowsResponse {
    /// A flow, not a node status or lost-events record.
    public var isFlow: Bool {
        if case .flow? = responseTypes { true } else { false }
    }
}
