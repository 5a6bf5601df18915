import Flows
import HubbleWire

/// `hubble_drop_total{protocol, reason}`: dropped flows by Hubble's drop reason (its proto name).
enum DropHandler: MetricHandler {
    static func count<Counter: SeriesCounter>(_ flow: borrowing Flow, _ facts: FlowFacts, into counter: inout Counter) {
        guard flow.verdict == .dropped else { return }
        counter.count(.drops, flow.l4.protocolName, ProtoNames.dropReason(flow.dropReason))
    }
}
