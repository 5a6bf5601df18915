import Flows

/// `hubble_flows_processed_total{protocol, type, subtype, verdict}`: every flow.
enum FlowHandler: MetricHandler {
    static func count<Counter: SeriesCounter>(_ flow: borrowing Flow, _ facts: FlowFacts, into counter: inout Counter) {
        if flow.verdict == .dropped {
            counter.count(.flows, facts.proto, "Drop", "", flow.verdict.description)
        } else {
            counter.count(
                .flows, facts.proto, facts.isL7 ? "L7" : "Trace",
                facts.isL7 ? "DNS" : flow.observationPoint.name, flow.verdict.description)
        }
    }
}
