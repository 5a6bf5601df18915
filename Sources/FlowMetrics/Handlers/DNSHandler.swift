import Flows

/// `hubble_dns_queries_total` and `hubble_dns_responses_total{rcode, qtypes, ips_returned,
/// query}`, counted on the client's side (queries leaving it — or, between two pods of a node,
/// entering the server for it —, answers reaching it), and Osprey's
/// `osprey_dns_queries_unanswered_total{qtypes, query}`.
enum DNSHandler: MetricHandler {
    static func count<Counter: SeriesCounter>(_ flow: borrowing Flow, _ facts: FlowFacts, into counter: inout Counter) {
        guard let dns = flow.dns else { return }
        let qtypes = dns.qtypes.joined(separator: ",")
        if dns.unanswered {
            counter.count(.unanswered, qtypes, dns.query)
        } else if !dns.isResponse, flow.reportsDeparture {
            counter.count(.dnsQueries, "", qtypes, "0", dns.query)
        } else if dns.isResponse, flow.observationPoint == .toEndpoint {
            counter.count(.dnsResponses, dns.rcodeName, qtypes, String(dns.ips.count), dns.query)
        }
    }
}
