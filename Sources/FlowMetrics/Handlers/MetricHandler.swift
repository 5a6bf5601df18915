import Flows

/// One kind of Hubble metric (Hubble's metric handlers: `flow`, `drop`, `tcp`, `dns`): the
/// series a flow counts into. Handlers only name series; `HubbleMetrics` keeps them.
protocol MetricHandler {
    static func count<Counter: SeriesCounter>(_ flow: borrowing Flow, _ facts: FlowFacts, into counter: inout Counter)
}

/// Where handlers count: one call per series.
protocol SeriesCounter {
    mutating func count(_ metric: Metric, _ v0: String, _ v1: String, _ v2: String, _ v3: String)
}

extension SeriesCounter {
    mutating func count(_ metric: Metric, _ v0: String, _ v1: String) { count(metric, v0, v1, "", "") }
}

/// What several handlers read of a flow, worked out once.
struct FlowFacts {
    let isL7: Bool
    /// `protocol` label: DNS for DNS flows, else the L4 protocol.
    let proto: String

    init(_ flow: borrowing Flow) {
        isL7 = flow.hasDNS
        proto = isL7 ? "DNS" : flow.l4.protocolName
    }
}
