import Datapath
import PrometheusExposition
import Testing

@testable import NodeMetrics

/// The node's forward and drop counters under Cilium's names, for dashboards built for Cilium.
@Suite("Metric flavours")
struct FlavourTests {
    static func snapshot() -> DatapathSnapshot {
        var snapshot = DatapathSnapshot()
        snapshot.forward[.ingress] = Counter(packets: 10, bytes: 1500)
        snapshot.forward[.egress] = Counter(packets: 4, bytes: 400)
        // Two kernel reasons Hubble calls "Policy denied", one it calls "Socket lookup failed".
        snapshot.drops[DropKey(reason: "NETFILTER_DROP", direction: .ingress)] = Counter(packets: 3, bytes: 180)
        snapshot.drops[DropKey(reason: "TC_INGRESS", direction: .ingress)] = Counter(packets: 2, bytes: 120)
        snapshot.drops[DropKey(reason: "NO_SOCKET", direction: .egress)] = Counter(packets: 1, bytes: 60)
        return snapshot
    }

    static func samples(_ families: [MetricFamily], _ name: String) -> [[String: String]: Double] {
        var result: [[String: String]: Double] = [:]
        for sample in families.first(where: { $0.name == name })?.samples ?? [] {
            result[Dictionary(uniqueKeysWithValues: sample.labels)] = sample.value
        }
        return result
    }

    @Test("cilium: forward and drop counters with INGRESS/EGRESS and Cilium's reason text, summed per reason")
    func cilium() {
        let families = NodeMetricsCollector.ciliumFamilies(Self.snapshot())
        #expect(families.allSatisfy { $0.kind == .counter && $0.name.hasSuffix("_total") })
        #expect(
            Self.samples(families, "cilium_forward_count_total") == [
                ["direction": "INGRESS"]: 10, ["direction": "EGRESS"]: 4,
            ])
        #expect(Self.samples(families, "cilium_forward_bytes_total")[["direction": "INGRESS"]] == 1500)
        #expect(
            Self.samples(families, "cilium_drop_count_total") == [
                ["direction": "INGRESS", "reason": "Policy denied"]: 5,
                ["direction": "EGRESS", "reason": "Socket lookup failed"]: 1,
            ])
        #expect(
            Self.samples(families, "cilium_drop_bytes_total")[["direction": "INGRESS", "reason": "Policy denied"]]
                == 300)
    }

    @Test("retina keeps Retina's names and the kernel's reasons; the flag takes retina, cilium or both")
    func retinaAndParsing() {
        let retina = NodeMetricsCollector.retinaFamilies(Self.snapshot())
        #expect(
            Set(retina.map(\.name)) == [
                "networkobservability_forward_count", "networkobservability_forward_bytes",
                "networkobservability_drop_count", "networkobservability_drop_bytes",
            ])
        #expect(
            Self.samples(retina, "networkobservability_drop_count")[[
                "direction": "ingress", "reason": "NETFILTER_DROP",
            ]] == 3)
        #expect(MetricsFlavour.parse("both") == [.retina, .cilium])
        #expect(MetricsFlavour.parse("cilium") == [.cilium])
        #expect(MetricsFlavour.parse("prometheus") == nil)
    }
}
