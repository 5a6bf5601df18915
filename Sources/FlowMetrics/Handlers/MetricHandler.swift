import Flows

/// One kind of Hubble metric (Hubble's metric handlers: `flow`, `drop`, `tcp`, `dns`): the
/// series a flow counts into. Handlers only name series; `HubbleMetrics` keeps them.
protocol MetricHandler {
    static func count<Counter: SeriesCounter>(_ flow: borrowing Flow, _ facts: FlowFacts, into counter: inout Counter)
}

/// Where handlers count: one call per series. `codes` packs label values that follow from the
/// flow's enums alone (the fast path's key, hashed instead of the strings); nil when a value is
/// free text (a DNS query name).
protocol SeriesCounter {
    mutating func count(_ metric: Metric, codes: UInt64?, _ v0: String, _ v1: String, _ v2: String, _ v3: String)
}

extension SeriesCounter {
    mutating func count(_ metric: Metric, codes: UInt64?, _ v0: String, _ v1: String) {
        count(metric, codes: codes, v0, v1, "", "")
    }
}

/// What several handlers read of a flow, worked out once.
struct FlowFacts {
    let isL7: Bool
    /// `protocol` label: DNS for DNS flows, else the L4 protocol.
    let proto: String
    /// The L4 protocol as a small number (1 TCP … 5 other), for packing into codes.
    let l4Code: UInt64

    init(_ flow: borrowing Flow) {
        isL7 = flow.dns != nil
        proto = isL7 ? "DNS" : flow.l4.protocolName
        l4Code =
            switch flow.l4 {
            case .tcp: 1
            case .udp: 2
            case .icmpv4: 3
            case .icmpv6: 4
            case .other: 5
            }
    }
}
