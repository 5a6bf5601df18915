import FlowTestKit
import Foundation
import Testing

@testable import FlowMetrics
@testable import Flows

/// Retina's basic DNS metrics with the labels its Standard DNS dashboard groups by: each message
/// counted once, on the querying pod's side; bounded.
@Suite("Retina's basic DNS metrics")
struct RetinaDNSMetricsTests {
    static func series(_ metrics: HubbleMetrics, _ name: String) -> [[String: String]: Double] {
        let family = metrics.families().first { $0.name == name }
        return Dictionary(
            uniqueKeysWithValues: (family?.samples ?? []).map {
                (Dictionary(uniqueKeysWithValues: $0.labels), $0.value)
            })
    }

    @Test("a query counts where the pod sends it, the answer where it receives it; labels as the dashboard asks")
    func countedOnce() {
        let metrics = HubbleMetrics()
        let query = Fixtures.dnsRequest
        var queryArriving = query  // the same query entering CoreDNS's pod: not counted again
        queryArriving.observationPoint = .toEndpoint
        var answer = Fixtures.dnsResponse
        answer.dns?.rcode = 0
        answer.dns?.ips = ["10.96.0.11"]
        answer.dns?.rrtypes = ["A"]
        var answerLeaving = answer  // the answer leaving CoreDNS's pod: not counted again
        answerLeaving.observationPoint = .fromEndpoint
        var unanswered = query
        unanswered.dns?.unanswered = true
        metrics.process([query, queryArriving, answer, answerLeaving, unanswered, Fixtures.dnsResponse])

        #expect(
            Self.series(metrics, "networkobservability_dns_request_count") == [
                ["query_type": "A", "query": "catalog.shop.svc.cluster.local."]: 1
            ])
        #expect(
            Self.series(metrics, "networkobservability_dns_response_count") == [
                [
                    "return_code": "NoError", "query_type": "A", "query": "catalog.shop.svc.cluster.local.",
                    "response": "10.96.0.11", "num_response": "1",
                ]: 1,
                [
                    "return_code": "nxdomain", "query_type": "A", "query": "catalog.shop.svc.cluster.local.",
                    "response": "", "num_response": "0",
                ]: 1,
            ])
    }

    @Test(
        "between two pods of one node reported only where packets enter them (monitor aggregation): the query entering the server is the one counted"
    )
    func onlyWhereItEnters() {
        let metrics = HubbleMetrics()
        var queryArriving = Fixtures.dnsRequest
        queryArriving.observationPoint = .toEndpoint
        queryArriving.departureUnreported = true
        metrics.process([queryArriving, Fixtures.dnsResponse])
        #expect(
            Self.series(metrics, "networkobservability_dns_request_count") == [
                ["query_type": "A", "query": "catalog.shop.svc.cluster.local."]: 1
            ])
        #expect(Self.series(metrics, "networkobservability_dns_response_count").values.reduce(0, +) == 1)
    }

    @Test("at the series limit, new names count under query=\"other\" and the overflow is counted")
    func bounded() {
        let metrics = HubbleMetrics()
        var flows: [Flow] = []
        for index in 0..<(RetinaDNSMetrics.seriesLimit + 5) {
            var query = Fixtures.dnsRequest
            query.dns?.query = "random-\(index).example."
            flows.append(query)
        }
        metrics.process(flows)
        let requests = Self.series(metrics, "networkobservability_dns_request_count")
        #expect(requests.count == RetinaDNSMetrics.seriesLimit + 1)
        #expect(requests[["query_type": "A", "query": "other"]] == 5)
        #expect(Self.series(metrics, "osprey_agent_dns_series_overflow_total") == [[:]: 5])
    }
}
