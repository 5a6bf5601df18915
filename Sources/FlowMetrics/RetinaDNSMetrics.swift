import Flows
import PrometheusExposition

/// Retina's basic DNS metrics, `networkobservability_dns_request_count` and
/// `networkobservability_dns_response_count`, with the labels Retina's Standard DNS dashboard
/// groups by (Retina's own code dropped them in 2024, which leaves that dashboard empty):
/// requests by `query_type` and `query`, responses also by `return_code`, `response` (the
/// answer's addresses, comma-joined) and `num_response` (the answer count).
///
/// Each DNS message is counted once per node, on the querying pod's side: a query where a pod
/// on this node sends it (from-endpoint), a response where such a pod receives it
/// (to-endpoint). CoreDNS's own queries upstream count the same way. Not thread-safe by itself:
/// `HubbleMetrics` keeps it under its lock.
struct RetinaDNSMetrics {
    /// Distinct label sets kept per metric; beyond, new ones are counted under `query="other"`
    /// (and `response="other"`), and the overflow is counted, so a storm of random names cannot
    /// blow up Prometheus.
    static let seriesLimit = 2000

    struct Request: Hashable {
        var queryType: String
        var query: String
    }

    struct Response: Hashable {
        var returnCode: String
        var queryType: String
        var query: String
        var response: String
        var answers: Int
    }

    private var requests: [Request: UInt64] = [:]
    private var responses: [Response: UInt64] = [:]
    private(set) var overflowed: UInt64 = 0

    /// `return_code` values: the dashboard filters successes with `return_code="NoError"` and
    /// renames `nxdomain` and `servfail` with label_replace.
    static func returnCode(_ rcode: Int) -> String {
        switch rcode {
        case 0: "NoError"
        case 1: "formerr"
        case 2: "servfail"
        case 3: "nxdomain"
        case 4: "notimp"
        case 5: "refused"
        default: "rcode\(rcode)"
        }
    }

    mutating func count(_ flow: borrowing Flow) {
        guard let dns = flow.dns, !dns.unanswered else { return }
        let queryType = dns.qtypes.first ?? "Unknown"
        if !dns.isResponse {
            guard flow.reportsDeparture else { return }
            Self.add(
                &requests, Request(queryType: queryType, query: dns.query),
                other: Request(queryType: queryType, query: "other"), overflowed: &overflowed)
        } else {
            guard flow.observationPoint == .toEndpoint else { return }
            let code = Self.returnCode(dns.rcode)
            let answers = max(dns.rrtypes.count, dns.ips.count)
            Self.add(
                &responses,
                Response(
                    returnCode: code, queryType: queryType, query: dns.query,
                    response: dns.ips.joined(separator: ","), answers: answers),
                other: Response(
                    returnCode: code, queryType: queryType, query: "other", response: "other", answers: answers),
                overflowed: &overflowed)
        }
    }

    private static func add<Key: Hashable>(
        _ series: inout [Key: UInt64], _ labels: Key, other: Key, overflowed: inout UInt64
    ) {
        if series[labels] != nil || series.count < seriesLimit {
            series[labels, default: 0] += 1
        } else {
            overflowed += 1
            series[other, default: 0] += 1
        }
    }

    static func order(_ key: Response) -> (String, String, String, String, Int) {
        (key.returnCode, key.queryType, key.query, key.response, key.answers)
    }

    func families() -> [MetricFamily] {
        [
            MetricFamily(
                name: "networkobservability_dns_request_count",
                help: "DNS queries sent by pods on this node, by query type and name.", kind: .counter,
                samples: requests.sorted { ($0.key.queryType, $0.key.query) < ($1.key.queryType, $1.key.query) }
                    .map { .init([("query_type", $0.key.queryType), ("query", $0.key.query)], Double($0.value)) }),
            MetricFamily(
                name: "networkobservability_dns_response_count",
                help:
                    "DNS responses received by pods on this node, by return code, query type, name, answer and answer count.",
                kind: .counter,
                samples: responses.sorted { Self.order($0.key) < Self.order($1.key) }.map {
                    .init(
                        [
                            ("return_code", $0.key.returnCode), ("query_type", $0.key.queryType),
                            ("query", $0.key.query), ("response", $0.key.response),
                            ("num_response", String($0.key.answers)),
                        ], Double($0.value))
                }),
            MetricFamily(
                name: "osprey_agent_dns_series_overflow_total",
                help: "DNS messages counted under query=\"other\" because a DNS metric had \(Self.seriesLimit) series.",
                kind: .counter, samples: [.init([], Double(overflowed))]),
        ]
    }
}
