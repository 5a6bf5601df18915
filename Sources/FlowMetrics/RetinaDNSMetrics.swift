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

    private var requests: [[String]: UInt64] = [:]
    private var responses: [[String]: UInt64] = [:]
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
            guard flow.observationPoint == .fromEndpoint else { return }
            Self.add(&requests, [queryType, dns.query], other: [queryType, "other"], overflowed: &overflowed)
        } else {
            guard flow.observationPoint == .toEndpoint else { return }
            let code = Self.returnCode(dns.rcode)
            let answers = String(max(dns.rrtypes.count, dns.ips.count))
            Self.add(
                &responses, [code, queryType, dns.query, dns.ips.joined(separator: ","), answers],
                other: [code, queryType, "other", "other", answers], overflowed: &overflowed)
        }
    }

    private static func add(
        _ series: inout [[String]: UInt64], _ labels: [String], other: [String], overflowed: inout UInt64
    ) {
        if series[labels] != nil || series.count < seriesLimit {
            series[labels, default: 0] += 1
        } else {
            overflowed += 1
            series[other, default: 0] += 1
        }
    }

    func families() -> [MetricFamily] {
        [
            MetricFamily(
                name: "networkobservability_dns_request_count",
                help: "DNS queries sent by pods on this node, by query type and name.", kind: .counter,
                samples: requests.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map {
                    .init([("query_type", $0.key[0]), ("query", $0.key[1])], Double($0.value))
                }),
            MetricFamily(
                name: "networkobservability_dns_response_count",
                help:
                    "DNS responses received by pods on this node, by return code, query type, name, answer and answer count.",
                kind: .counter,
                samples: responses.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map {
                    .init(
                        [
                            ("return_code", $0.key[0]), ("query_type", $0.key[1]), ("query", $0.key[2]),
                            ("response", $0.key[3]), ("num_response", $0.key[4]),
                        ], Double($0.value))
                }),
            MetricFamily(
                name: "osprey_agent_dns_series_overflow_total",
                help: "DNS messages counted under query=\"other\" because a DNS metric had \(Self.seriesLimit) series.",
                kind: .counter, samples: [.init([], Double(overflowed))]),
        ]
    }
}
