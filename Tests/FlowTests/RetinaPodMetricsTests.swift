import FlowTestKit
import Foundation
import Testing

@testable import FlowMetrics
@testable import Flows

/// Retina's advanced pod-level metrics: every label set of the context options, each packet
/// counted once where it is best seen, expiry and the series limit.
@Suite("Retina's advanced pod-level metrics")
struct RetinaPodMetricsTests {
    typealias Series = [[String: String]: Double]

    static func series(_ metrics: HubbleMetrics, _ name: String, now: Date = Date()) -> Series {
        let family = metrics.families(now: now).first { $0.name == name }
        return Dictionary(
            uniqueKeysWithValues: (family?.samples ?? []).map {
                (Dictionary(uniqueKeysWithValues: $0.labels), $0.value)
            })
    }

    /// The label names of a family, in order (the first sample's).
    static func names(_ metrics: HubbleMetrics, _ name: String) -> [String] {
        metrics.families().first { $0.name == name }?.samples.first?.labels.map(\.0) ?? []
    }

    /// The fixtures' pods, placed: loadgen and coredns on node 1, frontend on node 2.
    static func placed(_ flow: Flow) -> Flow {
        var flow = flow
        for keyPath in [\Flow.source, \Flow.destination] {
            var endpoint = flow[keyPath: keyPath]
            switch endpoint.podName {
            case Fixtures.loadgen.podName, Fixtures.coredns.podName: endpoint.nodeName = "osp-node-1"
            case Fixtures.frontend.podName: endpoint.nodeName = "osp-node-2"
            case Fixtures.untrusted.podName, Fixtures.ledger.podName: endpoint.nodeName = "osp-node-2"
            default: break
            }
            flow[keyPath: keyPath] = endpoint
        }
        return flow
    }

    static var syn: Flow {
        var flow = placed(Fixtures.syn)
        flow.bytes = 60
        return flow
    }

    static var synAck: Flow {
        var flow = placed(Fixtures.synAck)
        flow.bytes = 60
        return flow
    }

    static let loadgenLabels = [
        "ip": "10.244.1.4", "namespace": "shop", "podname": "loadgen-7d9f-abcde", "workload_kind": "Deployment",
        "workload_name": "loadgen",
    ]

    @Test("local context: a series per pod on this node, direction by side, Retina's default labels in order")
    func localContext() {
        let metrics = HubbleMetrics(podLevel: PodLevelOptions())
        // loadgen sends a SYN (its veth, egress) and receives the SYN-ACK (its veth, ingress).
        metrics.process([Self.syn, Self.synAck])
        #expect(
            Self.names(metrics, "networkobservability_adv_forward_count") == [
                "direction", "ip", "namespace", "podname", "workload_kind", "workload_name",
            ])
        #expect(
            Self.series(metrics, "networkobservability_adv_forward_count") == [
                Self.loadgenLabels.merging(["direction": "egress"]) { $1 }: 1,
                Self.loadgenLabels.merging(["direction": "ingress"]) { $1 }: 1,
            ])
        #expect(
            Self.series(metrics, "networkobservability_adv_forward_bytes").values.sorted() == [60, 60])
        // No direction on flags; SYN-ACK is its own flag, not SYN and ACK.
        #expect(
            Self.series(metrics, "networkobservability_adv_tcpflags_count") == [
                Self.loadgenLabels.merging(["flag": "SYN"]) { $1 }: 1,
                Self.loadgenLabels.merging(["flag": "SYNACK"]) { $1 }: 1,
            ])
        #expect(metrics.families().first { $0.name == "networkobservability_adv_forward_count" }?.kind == .gauge)
    }

    @Test("remote context: source_* and destination_* once per flow in the cluster, is_reply, unknown outside pods")
    func remoteContext() {
        let options = PodLevelOptions(
            context: .remote, sourceLabels: [.podname, .ip], destinationLabels: [.podname, .port], isReply: true)
        let metrics = HubbleMetrics(podLevel: options)
        var arriving = Self.syn  // the same SYN entering frontend's veth: counted at loadgen's already
        arriving.observationPoint = .toEndpoint
        arriving.trafficDirection = .ingress
        var fromOutside = Self.syn  // a client outside the cluster: counted where it arrives
        fromOutside.source = Endpoint()
        fromOutside.sourceIP = "192.0.2.7"
        fromOutside.observationPoint = .toEndpoint
        fromOutside.trafficDirection = .ingress
        // The SYN-ACK leaving frontend's veth: its connection is frontend's ingress one (the
        // flow's traffic_direction), the packet goes out: Retina's remote direction is EGRESS.
        var reply = Self.synAck
        reply.observationPoint = .fromEndpoint
        reply.trafficDirection = .ingress
        metrics.process([Self.syn, arriving, fromOutside, reply])
        #expect(
            Self.names(metrics, "networkobservability_adv_forward_count") == [
                "direction", "source_ip", "source_podname", "destination_podname", "destination_port", "is_reply",
            ])
        #expect(
            Self.series(metrics, "networkobservability_adv_forward_count") == [
                [
                    "direction": "EGRESS", "source_ip": "10.244.1.4", "source_podname": "loadgen-7d9f-abcde",
                    "destination_podname": "frontend-5c8b-fghij", "destination_port": "80", "is_reply": "false",
                ]: 1,
                [
                    "direction": "INGRESS", "source_ip": "192.0.2.7", "source_podname": "unknown",
                    "destination_podname": "frontend-5c8b-fghij", "destination_port": "80", "is_reply": "false",
                ]: 1,
                [
                    "direction": "EGRESS", "source_ip": "10.244.2.2", "source_podname": "frontend-5c8b-fghij",
                    "destination_podname": "loadgen-7d9f-abcde", "destination_port": "40000", "is_reply": "true",
                ]: 1,
            ])
        // is_reply is a forward label only.
        #expect(!Self.names(metrics, "networkobservability_adv_tcpflags_count").contains("is_reply"))
    }

    @Test("drops: reason then direction; local context gives each end on this node its side")
    func drops() {
        let local = HubbleMetrics(podLevel: PodLevelOptions(sourceLabels: [.podname]))
        let drop = Self.placed(Fixtures.drop)  // untrusted → ledger, both on node 2, seen by the tracepoint
        local.process([drop])
        #expect(Self.names(local, "networkobservability_adv_drop_count") == ["reason", "direction", "podname"])
        #expect(
            Self.series(local, "networkobservability_adv_drop_count") == [
                ["reason": "NETFILTER_DROP", "direction": "egress", "podname": "untrusted-9a8b-pqrst"]: 1,
                ["reason": "NETFILTER_DROP", "direction": "ingress", "podname": "ledger-4e5f-uvwxy"]: 1,
            ])
        var elsewhere = drop  // the sender is on another node: only the receiver is ours
        elsewhere.source.nodeName = "osp-node-1"
        let only = HubbleMetrics(podLevel: PodLevelOptions(sourceLabels: [.podname]))
        only.process([elsewhere])
        #expect(
            Self.series(only, "networkobservability_adv_drop_count") == [
                ["reason": "NETFILTER_DROP", "direction": "ingress", "podname": "ledger-4e5f-uvwxy"]: 1
            ])
        let remote = HubbleMetrics(
            podLevel: PodLevelOptions(context: .remote, sourceLabels: [.namespace], destinationLabels: [.namespace]))
        remote.process([drop])
        #expect(
            Self.series(remote, "networkobservability_adv_drop_count") == [
                [
                    "reason": "NETFILTER_DROP", "direction": "EGRESS", "source_namespace": "shop",
                    "destination_namespace": "billing",
                ]: 1
            ])
    }

    @Test("DNS: queries at the querying pod as it sends them, responses as it receives them, Retina's values")
    func dns() {
        let metrics = HubbleMetrics(podLevel: PodLevelOptions(sourceLabels: [.podname]))
        var queryArriving = Self.placed(Fixtures.dnsRequest)
        queryArriving.observationPoint = .toEndpoint
        var answer = Self.placed(Fixtures.dnsResponse)
        answer.dns?.rcode = 0
        answer.dns?.ips = ["10.96.0.11", "10.96.0.12"]
        answer.dns?.rrtypes = ["A", "A"]
        metrics.process([Self.placed(Fixtures.dnsRequest), queryArriving, answer, Self.placed(Fixtures.dnsResponse)])
        #expect(
            Self.series(metrics, "networkobservability_adv_dns_request_count") == [
                ["query_type": "A", "query": "catalog.shop.svc.cluster.local.", "podname": "loadgen-7d9f-abcde"]: 1
            ])
        #expect(
            Self.series(metrics, "networkobservability_adv_dns_response_count") == [
                [
                    "return_code": "NOERROR", "query_type": "A", "query": "catalog.shop.svc.cluster.local.",
                    "response": "10.96.0.11,10.96.0.12", "num_response": "2", "podname": "loadgen-7d9f-abcde",
                ]: 1,
                [
                    "return_code": "NXDOMAIN", "query_type": "A", "query": "catalog.shop.svc.cluster.local.",
                    "response": "", "num_response": "0", "podname": "loadgen-7d9f-abcde",
                ]: 1,
            ])
        #expect(metrics.families().first { $0.name == "networkobservability_adv_dns_request_count" }?.kind == .counter)
    }

    @Test(
        "between two pods of this node reported only where packets enter them (monitor aggregation): a flow standing for its departure counts the sender's egress too, once in the cluster in remote context; a query entering the server is the querier's request"
    )
    func onlyWhereItEnters() {
        var arriving = Self.syn  // loadgen's SYN entering frontend's veth, both on node 1
        arriving.destination.nodeName = "osp-node-1"
        arriving.observationPoint = .toEndpoint
        arriving.departureUnreported = true
        var reported = arriving  // the same, when loadgen's own veth reported it leaving
        reported.departureUnreported = false
        let local = HubbleMetrics(podLevel: PodLevelOptions(sourceLabels: [.podname]))
        local.process([arriving])
        let both: Series = [
            ["direction": "egress", "podname": "loadgen-7d9f-abcde"]: 1,
            ["direction": "ingress", "podname": "frontend-5c8b-fghij"]: 1,
        ]
        #expect(Self.series(local, "networkobservability_adv_forward_count") == both)
        let split = HubbleMetrics(podLevel: PodLevelOptions(sourceLabels: [.podname]))
        split.process([Self.syn, reported])
        #expect(Self.series(split, "networkobservability_adv_forward_count") == both, "the same as reported twice")
        let remote = HubbleMetrics(
            podLevel: PodLevelOptions(context: .remote, sourceLabels: [.podname], destinationLabels: [.podname]))
        remote.process([arriving, reported])
        #expect(
            Self.series(remote, "networkobservability_adv_forward_count") == [
                [
                    "direction": "EGRESS", "source_podname": "loadgen-7d9f-abcde",
                    "destination_podname": "frontend-5c8b-fghij",
                ]: 1
            ], "counted where it stands for its departure, not again where it only enters")

        var query = Self.placed(Fixtures.dnsRequest)  // loadgen's query entering coredns's veth
        query.observationPoint = .toEndpoint
        query.departureUnreported = true
        let dns = HubbleMetrics(podLevel: PodLevelOptions(sourceLabels: [.podname]))
        dns.process([query])
        #expect(
            Self.series(dns, "networkobservability_adv_dns_request_count") == [
                ["query_type": "A", "query": "catalog.shop.svc.cluster.local.", "podname": "loadgen-7d9f-abcde"]: 1
            ])
        #expect(
            Self.series(dns, "hubble_dns_queries_total").filter { $0.key["source"] == "shop/loadgen-7d9f-abcde" }
                .values.reduce(0, +) == 1, "Hubble's DNS queries too")
    }

    @Test("service, port and zone labels; the API server is `kubernetes-apiserver`, ICMP has no port")
    func otherLabels() {
        let options = PodLevelOptions(
            context: .remote, sourceLabels: [.zone, .port, .service, .namespace],
            destinationLabels: [.zone, .service, .podname])
        let metrics = HubbleMetrics(podLevel: options, zones: { ["osp-node-1": "zone-a", "osp-node-2": "zone-b"] })
        var toService = Self.syn
        toService.destinationService = ServiceRef(namespace: "shop", name: "frontend")
        var toAPIServer = Self.placed(Fixtures.icmp)
        toAPIServer.destination = .kubeAPIServer
        metrics.process([toService, toAPIServer])
        #expect(
            Self.names(metrics, "networkobservability_adv_forward_count") == [
                "direction", "source_namespace", "source_service", "source_port", "source_zone",
                "destination_podname", "destination_service", "destination_zone",
            ])
        #expect(
            Self.series(metrics, "networkobservability_adv_forward_count") == [
                [
                    "direction": "EGRESS", "source_namespace": "shop", "source_service": "unknown",
                    "source_port": "40000", "source_zone": "zone-a", "destination_podname": "frontend-5c8b-fghij",
                    "destination_service": "frontend", "destination_zone": "zone-b",
                ]: 1,
                [
                    "direction": "EGRESS", "source_namespace": "shop", "source_service": "unknown",
                    "source_port": "unknown", "source_zone": "zone-a", "destination_podname": "kubernetes-apiserver",
                    "destination_service": "unknown", "destination_zone": "unknown",
                ]: 1,
            ])
    }

    @Test("a pod whose endpoint was rebuilt (same labels) stays one series")
    func rebuiltEndpoint() {
        let metrics = HubbleMetrics(podLevel: PodLevelOptions())
        var again = Self.syn
        var loadgen = again.source
        loadgen.labels = loadgen.labels  // a new box with the same contents
        again.source = loadgen
        #expect(again.sourceBoxIdentity != Self.syn.sourceBoxIdentity)
        metrics.process([Self.syn, again])
        #expect(
            Self.series(metrics, "networkobservability_adv_forward_count") == [
                Self.loadgenLabels.merging(["direction": "egress"]) { $1 }: 2
            ])
    }

    @Test("a series nobody updates within the ttl goes and is counted; a deleted pod's go after the expiry")
    func expiry() {
        let metrics = HubbleMetrics(expiry: 60, podLevel: PodLevelOptions(sourceLabels: [.podname], ttl: 30))
        metrics.process([Self.syn])
        let now = Date()
        #expect(Self.series(metrics, "networkobservability_adv_forward_count", now: now).count == 1)
        let expired = Self.series(metrics, "controlplane_networkobservability_expired_metrics_counter", now: now + 31)
        #expect(Self.series(metrics, "networkobservability_adv_forward_count", now: now + 31).isEmpty)
        #expect(expired[["metric": "forward_count"]] == 1)
        #expect(expired[["metric": "adv_tcpflags_count"]] == 1)

        let deleting = HubbleMetrics(expiry: 60, podLevel: PodLevelOptions(sourceLabels: [.podname]))
        deleting.process([Self.syn])
        deleting.podsDeleted(["shop/loadgen-7d9f-abcde"], at: now)
        #expect(Self.series(deleting, "networkobservability_adv_forward_count", now: now + 30).count == 1)
        #expect(Self.series(deleting, "networkobservability_adv_forward_count", now: now + 61).isEmpty)
    }

    @Test("at the series limit, new series are counted as overflow by metric")
    func limit() {
        let metrics = HubbleMetrics(
            seriesLimit: 2, podLevel: PodLevelOptions(context: .remote, sourceLabels: [.ip], destinationLabels: []))
        var flows: [Flow] = []
        for index in 1...5 {
            var flow = Self.syn
            flow.sourceIP = "10.244.1.\(index)"
            flows.append(flow)
        }
        metrics.process(flows)
        #expect(Self.series(metrics, "networkobservability_adv_forward_count").count == 2)
        let overflow = Self.series(metrics, "osprey_agent_metrics_series_overflow_total")
        #expect(overflow[["metric": "networkobservability_adv_forward_count"]] == 3)
        #expect(overflow[["metric": "networkobservability_adv_forward_bytes"]] == 180)
    }

    @Test("options: Retina's tokens in any case and order; an unknown one is one sentence naming it")
    func options() throws {
        let labels = try PodLevelOptions.labels("Workload, IP,podname", flag: "--pod-level-source-labels")
        #expect(PodLevelOptions(sourceLabels: labels).sourceLabels == [.ip, .podname, .workload])
        #expect(throws: PodLevelError.self) { try PodLevelOptions.labels("ip,pod", flag: "--pod-level-source-labels") }
        do {
            _ = try PodLevelOptions.labels("ip,pod", flag: "--pod-level-source-labels")
        } catch {
            #expect(
                error.description
                    == "--pod-level-source-labels has an unknown label `pod`; use ip, namespace, podname, workload, service, port, zone."
            )
        }
        #expect(try PodLevelOptions.isReply("is_reply", flag: "--x"))
        #expect(throws: PodLevelError.self) { try PodLevelOptions.isReply("direction", flag: "--x") }
    }

    @Test("off by default: no adv_ metric without --pod-level-metrics")
    func offByDefault() {
        let metrics = HubbleMetrics()
        metrics.process([Self.syn])
        #expect(!metrics.families().contains { $0.name.hasPrefix("networkobservability_adv_") })
    }
}
