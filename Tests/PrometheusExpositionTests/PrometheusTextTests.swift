import Testing

@testable import PrometheusExposition

@Suite("The Prometheus text format")
struct PrometheusTextTests {
    @Test("text format: HELP, TYPE, common labels first, escaping, empty families left out")
    func exposition() {
        let text = PrometheusText.render(
            [
                MetricFamily(
                    name: "networkobservability_drop_count", help: "Drops.", kind: .gauge,
                    samples: [.init([("direction", "ingress"), ("reason", "NO_SOCKET")], 3)]),
                MetricFamily(name: "empty", help: "None.", kind: .gauge, samples: []),
                MetricFamily(name: "x", help: "Quote.", kind: .counter, samples: [.init([("v", "a\"b\\c\n")], 1.5)]),
            ], commonLabels: [("cluster", "c1"), ("instance", "node-1")])
        #expect(
            text == """
                # HELP networkobservability_drop_count Drops.
                # TYPE networkobservability_drop_count gauge
                networkobservability_drop_count{cluster="c1",instance="node-1",direction="ingress",reason="NO_SOCKET"} 3
                # HELP x Quote.
                # TYPE x counter
                x{cluster="c1",instance="node-1",v="a\\"b\\\\c\\n"} 1.5

                """)
    }

    @Test("a histogram: cumulative buckets with their bounds, +Inf, _sum and _count")
    func histogram() {
        let family = MetricFamily.histogram(
            name: "latency", help: "Milliseconds.", bounds: [0.5, 1.5, 2.5], counts: [1, 0, 2, 1], sum: 9)
        #expect(
            PrometheusText.render([family], commonLabels: [("instance", "n1")]) == """
                # HELP latency Milliseconds.
                # TYPE latency histogram
                latency_bucket{instance="n1",le="0.5"} 1
                latency_bucket{instance="n1",le="1.5"} 1
                latency_bucket{instance="n1",le="2.5"} 3
                latency_bucket{instance="n1",le="+Inf"} 4
                latency_sum{instance="n1"} 9
                latency_count{instance="n1"} 4

                """)
    }
}
