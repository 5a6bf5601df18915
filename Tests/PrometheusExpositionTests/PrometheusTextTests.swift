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
}
