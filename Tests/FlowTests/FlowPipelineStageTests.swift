import CDatapathABI
import ClusterInventory
import FlowDecoder
import FlowPipeline
import FlowTestKit
import Foundation
import Locking
import PrometheusExposition
import Testing

@testable import Enricher
@testable import FlowMetrics
@testable import Flows
@testable import Observer

@Suite("Enricher, observer and Hubble metrics")
struct FlowPipelineStageTests {
    static func flow(
        from source: String, to destination: String, at time: Date = Date(), point: ObservationPoint = .fromEndpoint,
        flags: TCPFlags = .syn, verdict: Verdict = .forwarded
    ) -> Flow {
        Flow(
            time: time, verdict: verdict, ipVersion: 1, sourceIP: source, destinationIP: destination,
            l4: .tcp(sourcePort: 40000, destinationPort: 80, flags: flags), nodeName: "osp-node-1",
            trafficDirection: point == .fromEndpoint ? .egress : .ingress, isReply: false, observationPoint: point)
    }

    static func pod(_ name: String, ip: String, app: String, created: Date) -> Pod {
        Pod(
            uid: UUID().uuidString, namespace: "shop", name: name, node: "osp-node-1", ips: [ip], labels: ["app": app],
            workload: Workload(kind: "Deployment", name: app), createdAt: created, netns: nil, hostInterface: nil)
    }

    @Test("pods, workloads, labels and service VIPs from the inventory; a reused IP goes to the pod that had it then")
    func enrichment() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let old = Self.pod("cart-1", ip: "10.244.1.9", app: "cart", created: start)
        let client = Self.pod("loadgen-1", ip: "10.244.1.4", app: "loadgen", created: start)
        let service = Service(
            namespace: "shop", name: "frontend", clusterIP: "10.96.0.11",
            ports: [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: 80)], selector: [:], endpoints: [])
        let metadata = InventoryMetadata(
            inventory: Inventory(
                cluster: "osp", topology: "bridge", nodes: [], pods: [old, client], services: [service]))
        let enricher = Enricher(metadata: metadata, nodeName: "osp-node-1", clusterName: "osp")

        var toService = Self.flow(from: "10.244.1.4", to: "10.96.0.11", at: start.addingTimeInterval(10))
        enricher.enrich(&toService)
        #expect(toService.source.podName == "loadgen-1" && toService.source.namespace == "shop")
        #expect(toService.source.labels == ["k8s:app=loadgen", "k8s:io.kubernetes.pod.namespace=shop"])
        #expect(toService.source.workloads.first?.name == "loadgen")
        #expect(toService.source.clusterName == "osp")
        #expect(toService.destinationService == ServiceRef(namespace: "shop", name: "frontend"))
        #expect(toService.destination.podName.isEmpty)
        // Seen once, cart-1's address is remembered (the source's cache)…
        var early = Self.flow(from: "10.244.1.4", to: "10.244.1.9", at: start.addingTimeInterval(20))
        enricher.enrich(&early)
        #expect(early.destination.podName == "cart-1")

        // cart-1 goes away; a new pod gets its address a minute later.
        let new = Self.pod("payments-1", ip: "10.244.1.9", app: "payments", created: start.addingTimeInterval(60))
        metadata.replace(
            with: Inventory(cluster: "osp", topology: "bridge", nodes: [], pods: [client, new], services: [service]))
        // …and forgotten when the inventory changes: each flow of a batch gets its time's holder.
        var batch = [
            Self.flow(from: "10.244.1.4", to: "10.244.1.9", at: start.addingTimeInterval(30)),
            Self.flow(from: "10.244.1.4", to: "10.244.1.9", at: start.addingTimeInterval(90)),
        ]
        enricher.enrich(&batch)
        #expect(batch[0].destination.podName == "cart-1")
        #expect(batch[1].destination.podName == "payments-1")
        #expect(batch.allSatisfy { $0.source.podName == "loadgen-1" })
        #expect(metadata.refresh() == ["shop/cart-1"])
        #expect(metadata.refresh().isEmpty, "a deleted pod is reported once")
    }

    @Test(
        "a DNS message is an L7 flow once: at the querier's veth; at the server's a trace of its packet, unless the querier is no pod"
    )
    func oneRecordPerDNSMessage() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let client = Self.pod("loadgen-1", ip: "10.244.1.4", app: "loadgen", created: start)
        let server = Self.pod("coredns-1", ip: "10.244.1.2", app: "kube-dns", created: start)
        let enricher = Enricher(
            metadata: InventoryMetadata(
                inventory: Inventory(
                    cluster: "osp", topology: "bridge", nodes: [], pods: [client, server], services: [])),
            nodeName: "osp-node-1", clusterName: "osp")
        func message(
            from source: String, to destination: String, _ point: ObservationPoint, response: Bool = false,
            unanswered: Bool = false
        ) -> Flow {
            var flow = Flow(
                time: start.addingTimeInterval(1), verdict: .forwarded, ipVersion: 1, sourceIP: source,
                destinationIP: destination,
                l4: .udp(sourcePort: response ? 53 : 40000, destinationPort: response ? 40000 : 53),
                nodeName: "osp-node-1", trafficDirection: response ? .ingress : .egress, isReply: response,
                observationPoint: point)
            var dns = DNSInfo(query: "frontend.shop.svc.cluster.local.", isResponse: response, rcode: 0, qtypes: ["A"])
            dns.unanswered = unanswered
            flow.dns = dns
            flow.latencyNanoseconds = response ? 250_000 : 0
            return flow
        }
        // A pod asks a pod on this node: four reports of two messages, in the order they come.
        var batch = [
            message(from: "10.244.1.4", to: "10.244.1.2", .fromEndpoint),
            message(from: "10.244.1.4", to: "10.244.1.2", .toEndpoint),
            message(from: "10.244.1.2", to: "10.244.1.4", .fromEndpoint, response: true),
            message(from: "10.244.1.2", to: "10.244.1.4", .toEndpoint, response: true),
        ]
        enricher.enrich(&batch)
        #expect(batch.map(\.isL7) == [true, false, false, true])
        #expect(
            batch.map(\.summary) == [
                "DNS Query frontend.shop.svc.cluster.local. A", "UDP", "UDP",
                "DNS Answer  TTL: 0 (Query frontend.shop.svc.cluster.local. A)",
            ])
        // The server's side keeps its packets' trace: observation point, reply, and its
        // connection's direction (into coredns), with no DNS latency.
        #expect(batch.map(\.observationPoint) == [.fromEndpoint, .toEndpoint, .fromEndpoint, .toEndpoint])
        #expect(batch.map(\.trafficDirection) == [.egress, .ingress, .ingress, .ingress])
        #expect(batch.map(\.isReply) == [false, false, true, true])
        #expect(batch.map(\.latencyNanoseconds) == [0, 0, 0, 250_000])
        #expect(batch.allSatisfy { $0.source.podName != "" && $0.destination.podName != "" })

        // A query that goes unanswered: reported once, by the querier's side.
        var silence = [
            message(from: "10.244.1.4", to: "10.244.1.2", .fromEndpoint, unanswered: true),
            message(from: "10.244.1.4", to: "10.244.1.2", .toEndpoint, unanswered: true),
        ]
        enricher.enrich(&silence)
        #expect(silence.count == 1)
        #expect(silence.first?.observationPoint == .fromEndpoint)
        #expect(silence.first?.summary == "DNS Query frontend.shop.svc.cluster.local. A (no response)")
        var alone = message(from: "10.244.1.4", to: "10.244.1.2", .toEndpoint, unanswered: true)
        #expect(!enricher.enrich(&alone), "one flow: enrich says to drop it")

        // The node itself asks (no pod, no agent's querier side): the server's side keeps the
        // record, and its silence.
        var fromNode = [
            message(from: "10.240.0.11", to: "10.244.1.2", .toEndpoint),
            message(from: "10.244.1.2", to: "10.240.0.11", .fromEndpoint, response: true),
            message(from: "10.240.0.11", to: "10.244.1.2", .toEndpoint, unanswered: true),
        ]
        enricher.enrich(&fromNode)
        #expect(fromNode.map(\.isL7) == [true, true, true])
        #expect(fromNode.map(\.trafficDirection) == [.egress, .ingress, .egress], "Retina's rule for DNS flows")

        // Monitor aggregation: each pod's interface reports only what enters it, so the query is
        // reported only where it enters the server, standing for its departure: the record, and
        // its silence, are there.
        func entering(unanswered: Bool = false) -> Flow {
            var flow = message(from: "10.244.1.4", to: "10.244.1.2", .toEndpoint, unanswered: unanswered)
            flow.departureUnreported = true
            return flow
        }
        var aggregated = [
            entering(), message(from: "10.244.1.2", to: "10.244.1.4", .toEndpoint, response: true),
            entering(unanswered: true),
        ]
        enricher.enrich(&aggregated)
        #expect(aggregated.map(\.isL7) == [true, true, true])
        #expect(aggregated.map(\.trafficDirection) == [.egress, .ingress, .egress])
    }

    @Test("the standalone inventory file is re-read when it changes; pods that left it are reported once")
    func inventoryFile() throws {
        let (path, _, start) = try Self.cartInventoryFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let metadata = InventoryMetadata(path: path)
        #expect(metadata.pod(ip: "10.244.1.9", at: start)?.name == "cart-1")
        try Inventory(cluster: "osp", topology: "bridge", nodes: [], pods: [], services: []).write(to: path)
        // The file's modification time may not have moved within the same second: force it.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: path)
        var gone: [String] = []
        let deadline = Date().addingTimeInterval(5)
        while gone.isEmpty, Date() < deadline {
            gone = metadata.refresh()
            if gone.isEmpty { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(gone == ["shop/cart-1"])
    }

    @Test("an inventory file that goes or turns bad: said once, identities kept, said again when it is back")
    func inventoryFileProblems() throws {
        let (path, inventory, start) = try Self.cartInventoryFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let said = Lock<[String?]>([])
        let metadata = InventoryMetadata(path: path) { problem in said.withLock { $0.append(problem) } }
        #expect(said.withLock { $0 }.isEmpty, "nothing to say while the file reads")

        try FileManager.default.removeItem(atPath: path)
        metadata.reloadIfChanged(force: true)
        metadata.reloadIfChanged(force: true)
        let gone = said.withLock { $0 }
        #expect(gone.count == 1, "said once, however often it is looked for")
        #expect(gone.first??.contains("Cannot read the inventory \(path)") == true)
        #expect(metadata.pod(ip: "10.244.1.9", at: start)?.name == "cart-1", "what was read is kept")

        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: path))
        metadata.reloadIfChanged(force: true)
        #expect(said.withLock { $0.last }??.contains("is not valid JSON") == true, "a new problem is said")
        #expect(metadata.pod(ip: "10.244.1.9", at: start)?.name == "cart-1")

        try inventory.write(to: path)
        metadata.reloadIfChanged(force: true)
        #expect(said.withLock { $0 }.count == 3 && said.withLock { $0.last } == .some(nil), "back: said once more")
    }

    /// A fresh temporary inventory file holding one pod, `shop/cart-1` at 10.244.1.9, created at
    /// `start`; the caller removes the file.
    static func cartInventoryFile() throws -> (path: String, inventory: Inventory, start: Date) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("osp-inventory-\(UUID()).json").path
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let cart = Self.pod("cart-1", ip: "10.244.1.9", app: "cart", created: start)
        let inventory = Inventory(cluster: "osp", topology: "bridge", nodes: [], pods: [cart], services: [])
        try inventory.write(to: path)
        return (path, inventory, start)
    }

    @Test("an inventory that names no cluster: endpoints carry the agent's cluster name, every time")
    func clusterNameFromAgent() throws {
        let client = Self.pod("loadgen-1", ip: "10.244.1.4", app: "loadgen", created: Date())
        let metadata = InventoryMetadata(
            inventory: Inventory(cluster: "", topology: "bridge", nodes: [], pods: [client], services: []))
        let enricher = Enricher(metadata: metadata, nodeName: "osp-node-1", clusterName: "prod")
        // The second batch is answered from the source's cache: the name must not depend on it.
        for _ in 0..<2 {
            var batch = [Self.flow(from: "10.244.1.4", to: "10.0.0.1"), Self.flow(from: "10.0.0.1", to: "10.244.1.4")]
            enricher.enrich(&batch)
            #expect(batch[0].source.podName == "loadgen-1" && batch[0].source.clusterName == "prod")
            #expect(batch[1].destination.podName == "loadgen-1" && batch[1].destination.clusterName == "prod")
            #expect(batch[0].destination.podName.isEmpty && batch[0].destination.clusterName.isEmpty)
        }
    }

    @Test("the ring keeps the newest N = 2^k−1 flows; other capacities are refused", arguments: [1, 3, 4095, 65535])
    func ring(capacity: Int) throws {
        let observer = try Observer(capacity: capacity)
        let flows = (0..<(capacity + 5)).map {
            Self.flow(from: "10.0.0.\($0 % 250)", to: "10.0.1.1", at: Date(timeIntervalSince1970: Double($0)))
        }
        observer.append(flows)
        #expect(observer.numFlows == capacity)
        #expect(observer.seenFlows == UInt64(capacity + 5))
        #expect(observer.overwrittenFlows == 5, "the ring counts what newer flows pushed out")
        let last = observer.last(2)
        #expect(
            last.map(\.time.timeIntervalSince1970)
                == [Double(capacity + 3), Double(capacity + 4)].suffix(min(2, capacity)))
    }

    @Test("capacities that are not 2^k−1 up to 65535 are rejected", arguments: [0, 2, 4096, 65536, 131071])
    func badCapacity(capacity: Int) {
        #expect(throws: Observer.CapacityError.self) { try Observer(capacity: capacity) }
    }

    @Test(
        "an interface is named in the namespace the event happened in: a pod's eth0, the node's bridge, never another's"
    )
    func interfaceNamesByNamespace() throws {
        let observer = try Observer(capacity: 15)
        let pipeline = FlowPipeline(
            nodeName: "osp-node-1", clusterName: "osp", metadata: nil, observer: observer, metrics: HubbleMetrics())
        let now = FlowDecoder.monotonicNow()
        // Index 2 is the uplink in the node's namespace and the pod's own eth0 in its.
        let names = InterfaceNames(
            nodeNamespace: 4_026_531_840, node: [2: "ens5", 3: "cbr0", 7: "osp0a1"],
            namespaces: [4_026_532_001: [1: "lo", 2: "eth0"]])
        func event(ifindex: UInt32, netns: UInt32, drop: UInt32?, at offset: UInt64) -> osp_event {
            var event = RawEvent.packet(
                [10, 244, 1, 4], 40000, [10, 244, 1, 5], 8080, protocol: 6, flags: 0x02, at: now + offset, drop: drop,
                ifindex: ifindex)
            event.netns = netns
            return event
        }
        let events = [
            event(ifindex: 7, netns: 0, drop: nil, at: 1_000),  // a pod veth's program
            event(ifindex: 2, netns: 4_026_532_001, drop: 2, at: 2_000),  // no socket, in the pod
            event(ifindex: 3, netns: 4_026_531_840, drop: 11, at: 3_000),  // nftables, on the bridge
            event(ifindex: 2, netns: 4_026_532_999, drop: 2, at: 4_000),  // a namespace not (yet) known
        ]
        events.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: names) }
        let flows = observer.last(15)
        try #require(flows.count == 4)
        #expect(flows[0].interface?.name == "osp0a1")
        #expect(flows[1].interface?.index == 2 && flows[1].interface?.name == "eth0")
        #expect(flows[2].interface?.name == "cbr0")
        #expect(flows[3].interface?.index == 2 && flows[3].interface?.name == "", "the index alone, not ens5")
    }

    @Test("a retransmission is no Hubble flow: only Retina's adv_tcpretrans_count counts it, on the sender's side")
    func retransmissions() throws {
        let start = Date()
        let client = Self.pod("loadgen-1", ip: "10.244.1.4", app: "loadgen", created: start.addingTimeInterval(-60))
        let metadata = InventoryMetadata(
            inventory: Inventory(cluster: "osp", topology: "bridge", nodes: [], pods: [client], services: []))
        let observer = try Observer(capacity: 15)
        let metrics = HubbleMetrics(podLevel: PodLevelOptions(context: .local, sourceLabels: [.podname]))
        let pipeline = FlowPipeline(
            nodeName: "osp-node-1", clusterName: "osp", metadata: metadata, observer: observer, metrics: metrics)
        let now = FlowDecoder.monotonicNow()
        let events = [
            RawEvent.packet([10, 244, 1, 4], 40000, [10, 244, 2, 3], 80, protocol: 6, flags: 0x10, at: now),
            RawEvent.retransmission([10, 244, 1, 4], 40000, [10, 244, 2, 3], 80, at: now + 1000),
            RawEvent.retransmission([10, 244, 1, 4], 40000, [10, 244, 2, 3], 80, at: now + 2000),
        ]
        events.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [7: "osp0"]) }
        #expect(observer.last(15).count == 1, "only the packet is a flow")
        let families = metrics.families()
        let retransmitted = families.first { $0.name == "networkobservability_adv_tcpretrans_count" }?.samples ?? []
        #expect(
            retransmitted.map { Dictionary(uniqueKeysWithValues: $0.labels) } == [
                ["direction": "egress", "podname": "loadgen-1"]
            ])
        #expect(retransmitted.first?.value == 2)
        let processed = families.first { $0.name == "hubble_flows_processed_total" }?.samples ?? []
        #expect(processed.map(\.value).reduce(0, +) == 1)
    }

    @Test("a metric's series stop at its limit: what would make more is counted as overflow, nothing is lost")
    func seriesLimit() {
        let metrics = HubbleMetrics(expiry: 60, seriesLimit: 3)
        let flows = (0..<5).map { index -> Flow in
            var flow = Self.flow(from: "10.244.1.\(10 + index)", to: "10.244.2.3")
            flow.source.namespace = "shop"
            flow.source.podName = "pod-\(index)"
            return flow
        }
        // Twice each: the second round goes through the fast path, which must agree.
        metrics.process(flows)
        metrics.process(flows)
        func family(_ name: String, _ now: Date = Date()) -> MetricFamily? {
            metrics.families(now: now).first { $0.name == name }
        }
        let processed = family("hubble_flows_processed_total")?.samples ?? []
        #expect(processed.count == 3)
        #expect(processed.allSatisfy { $0.value == 2 })
        let overflow = family("osprey_agent_metrics_series_overflow_total")?.samples ?? []
        #expect(overflow.first { $0.labels.contains { $0 == ("metric", "hubble_flows_processed_total") } }?.value == 4)
        #expect(processed.map(\.value).reduce(0, +) + 4 == 10, "every flow is counted somewhere")
        #expect(overflow.count == 6, "every metric has its overflow series, zero when nothing overflowed")
        // Pods that go away make room again; the overflow count stays.
        let deleted = Date()
        metrics.podsDeleted(["shop/pod-0", "shop/pod-1"], at: deleted)
        _ = metrics.families(now: deleted.addingTimeInterval(61))
        metrics.process([flows[4]])
        let after = family("hubble_flows_processed_total", deleted.addingTimeInterval(62))?.samples ?? []
        #expect(after.contains { $0.labels.contains { $0 == ("source", "shop/pod-4") } && $0.value == 1 })
        #expect(
            family("osprey_agent_metrics_series_overflow_total", deleted.addingTimeInterval(62))?.samples.first {
                $0.labels.contains { $0 == ("metric", "hubble_flows_processed_total") }
            }?.value == 4)
    }

    @Test(
        "flows of one pod that differ only in a field a metric reads count into their own series, also when found again"
    )
    func seriesBySignature() {
        let metrics = HubbleMetrics(expiry: 60)
        var pod = Self.flow(from: "10.244.1.4", to: "10.244.2.3")
        pod.source.namespace = "shop"
        pod.source.podName = "loadgen-1"
        // Copies of one flow share its endpoints, as the enricher's flows of one pod do.
        func flow(flags: TCPFlags = .syn, ipVersion: Int = 1, dropReason: Int? = nil) -> Flow {
            var flow = pod
            flow.l4 = .tcp(sourcePort: 40000, destinationPort: 80, flags: flags)
            flow.ipVersion = ipVersion
            if let dropReason {
                flow.verdict = .dropped
                flow.dropReason = dropReason
            }
            return flow
        }
        var udp = pod
        udp.l4 = .udp(sourcePort: 40000, destinationPort: 53)
        let flows = [
            flow(), flow(flags: [.syn, .ack]), flow(flags: [.fin, .ack]), flow(flags: .rst), flow(ipVersion: 2),
            flow(dropReason: 133), flow(dropReason: 130), flow(flags: []), udp,
        ]
        // The first round names the series; the second finds them by the flows' signatures.
        metrics.process(flows)
        metrics.process(flows)
        func values(_ name: String, _ keys: [String]) -> [String: Double] {
            let family = metrics.families().first { $0.name == name }
            return Dictionary(
                uniqueKeysWithValues: (family?.samples ?? []).map { sample in
                    let labels = Dictionary(uniqueKeysWithValues: sample.labels)
                    return (keys.map { labels[$0] ?? "?" }.joined(separator: " "), sample.value)
                })
        }
        #expect(
            values("hubble_tcp_flags_total", ["flag", "family", "source"]) == [
                "SYN IPv4 shop/loadgen-1": 2, "SYN-ACK IPv4 shop/loadgen-1": 2, "FIN IPv4 shop/loadgen-1": 2,
                "RST IPv4 shop/loadgen-1": 2, "SYN IPv6 shop/loadgen-1": 2,
            ])
        #expect(
            values("hubble_drop_total", ["reason", "source"]) == [
                "POLICY_DENIED shop/loadgen-1": 2, "INVALID_SOURCE_MAC shop/loadgen-1": 2,
            ])
        #expect(
            values("hubble_flows_processed_total", ["protocol", "type", "subtype", "verdict"]) == [
                "TCP Trace from-endpoint FORWARDED": 12, "UDP Trace from-endpoint FORWARDED": 2,
                "TCP Drop  DROPPED": 4,
            ])
    }

    @Test(
        "metric labels: source on egress, destination on ingress; DNS on the client's side; deleted pods' series expire"
    )
    func metrics() {
        let metrics = HubbleMetrics(expiry: 60)
        var egress = Self.flow(from: "10.244.1.4", to: "10.244.2.3")
        egress.source.namespace = "shop"
        egress.source.podName = "loadgen-1"
        var ingress = Self.flow(from: "10.244.1.4", to: "10.244.2.3", point: .toEndpoint, flags: [.syn, .ack])
        ingress.destination.namespace = "billing"
        ingress.destination.podName = "ledger-1"
        var drop = Self.flow(from: "10.244.2.4", to: "10.244.1.3", verdict: .dropped)
        drop.dropReason = 133
        drop.source.namespace = "shop"
        drop.source.podName = "untrusted-1"
        metrics.process([egress, ingress, drop])
        let families = Dictionary(uniqueKeysWithValues: metrics.families().map { ($0.name, $0) })
        func labels(_ name: String) -> [[String: String]] {
            families[name]?.samples.map { Dictionary(uniqueKeysWithValues: $0.labels) } ?? []
        }
        let processed = labels("hubble_flows_processed_total")
        #expect(
            processed.contains([
                "protocol": "TCP", "type": "Trace", "subtype": "from-endpoint", "verdict": "FORWARDED",
                "source": "shop/loadgen-1", "destination": "",
            ]))
        #expect(
            processed.contains([
                "protocol": "TCP", "type": "Trace", "subtype": "to-endpoint", "verdict": "FORWARDED", "source": "",
                "destination": "billing/ledger-1",
            ]))
        #expect(
            labels("hubble_drop_total") == [
                ["protocol": "TCP", "reason": "POLICY_DENIED", "source": "shop/untrusted-1", "destination": ""]
            ])
        #expect(
            labels("hubble_tcp_flags_total").contains([
                "flag": "SYN-ACK", "family": "IPv4", "source": "", "destination": "billing/ledger-1",
            ]))
        #expect(
            labels("hubble_lost_events_total").map { $0["source"] ?? "" } == [
                "perf_event_ring_buffer", "observer_events_queue", "hubble_ring_buffer",
            ])

        let deleted = Date()
        metrics.podsDeleted(["shop/loadgen-1"], at: deleted)
        #expect(
            metrics.families(now: deleted.addingTimeInterval(30)).first { $0.name == "hubble_flows_processed_total" }?
                .samples.count == 3)
        let later = metrics.families(now: deleted.addingTimeInterval(61)).first {
            $0.name == "hubble_flows_processed_total"
        }
        #expect(later?.samples.count == 2, "the deleted pod's series went away after a minute")

        // Counting goes on in the right series (the same endpoints are recognised without their
        // label strings; another endpoint with the same flow shape gets its own series).
        var other = egress
        other.source.podName = "other-1"
        metrics.process([egress, ingress, drop, egress, ingress, drop, other])
        let counts = Dictionary(
            uniqueKeysWithValues: (metrics.families(now: deleted.addingTimeInterval(62)).first {
                $0.name == "hubble_flows_processed_total"
            }?.samples ?? []).map { sample in
                let labels = Dictionary(uniqueKeysWithValues: sample.labels)
                return ("\(labels["source"] ?? "")>\(labels["destination"] ?? "")", sample.value)
            })
        #expect(
            counts == [
                "shop/loadgen-1>": 2, ">billing/ledger-1": 3, "shop/untrusted-1>": 3, "shop/other-1>": 1,
            ])
    }

    @Test(
        "followers read the ring at their own pace, an event or a batch at a time: each flow received once and in order, or counted lost"
    )
    func followersAccount() async throws {
        let observer = try Observer(capacity: 255)
        let total = 20_000
        let subscriptions = (0..<8).map { _ in observer.subscribe() }
        #expect(observer.subscriberCount == 8)
        let results = await withTaskGroup(of: (received: Int, lost: Int, ordered: Bool).self) { group in
            for (index, subscription) in subscriptions.enumerated() {
                group.addTask {
                    var (received, lost, last, ordered) = (0, 0, -1.0, true)
                    var events = subscription.makeAsyncIterator()
                    // Half of them take what is ready in one batch (as GetFlows writes it).
                    func next() async -> ArraySlice<ObserverEvent>? {
                        index < 4 ? await events.next().map { [$0][...] } : await events.nextBatch()
                    }
                    reading: while let ready = await next() {
                        for event in ready {
                            switch event {
                            case .flow(let flow):
                                ordered = ordered && flow.time.timeIntervalSince1970 > last
                                last = flow.time.timeIntervalSince1970
                                received += 1
                                // Half of each kind are slow readers.
                                if index % 2 == 1, received % 50 == 0 { try? await Task.sleep(for: .milliseconds(1)) }
                            case .lost(let record):
                                ordered = ordered && record.first.timeIntervalSince1970 > last
                                last = record.last.timeIntervalSince1970
                                lost += Int(record.count)
                            case .progress: break
                            }
                            if received + lost == total { break reading }
                        }
                    }
                    return (received, lost, ordered)
                }
            }
            group.addTask {
                for batch in 0..<(total / 50) {
                    observer.append(
                        (0..<50).map {
                            Self.flow(
                                from: "10.0.0.1", to: "10.0.0.2",
                                at: Date(timeIntervalSince1970: Double(batch * 50 + $0)))
                        })
                    if batch % 10 == 0 { try? await Task.sleep(for: .microseconds(200)) }
                }
                return (0, 0, true)
            }
            var results: [(received: Int, lost: Int, ordered: Bool)] = []
            for await result in group where result.received + result.lost > 0 { results.append(result) }
            return results
        }
        #expect(results.count == 8)
        #expect(results.allSatisfy { $0.received + $0.lost == total }, "every flow received or counted")
        #expect(results.allSatisfy { $0.ordered }, "in order, none twice; a loss record covers only flows not read")
        #expect(results.reduce(0) { $0 + $1.lost } == Int(observer.lost[.hubbleRingBuffer] ?? 0))
        #expect(results.contains { $0.lost > 0 }, "slow readers with a 255-flow ring do lose some")
        subscriptions.forEach { $0.cancel() }
        #expect(observer.subscriberCount == 0)
    }

    @Test("a stalled subscriber loses flows (and is told how many) while another receives every one")
    func subscribers() async throws {
        let observer = try Observer(capacity: 4095)
        let prompt = observer.subscribe(buffer: 1000)
        let stalled = observer.subscribe(buffer: 4)
        #expect(observer.subscriberCount == 2)
        let flows = (0..<100).map {
            Self.flow(from: "10.0.0.1", to: "10.0.0.2", at: Date(timeIntervalSince1970: Double($0)))
        }
        observer.append(flows)

        var received = 0
        for await event in prompt {
            if event.flow != nil { received += 1 }
            if received == 100 { break }
        }
        #expect(received == 100, "the prompt subscriber got every flow")
        var stalledIterator = stalled.makeAsyncIterator()
        #expect(observer.lost[.hubbleRingBuffer] == 96)
        // First what it missed (the oldest, as a Hubble ring reader that was lapped), then the
        // newest it could still read, then new flows again.
        let lost = await stalledIterator.next()
        guard case .lost(let record) = lost else {
            Issue.record("expected a lost-events record, got \(String(describing: lost))")
            return
        }
        #expect(record.count == 96 && record.source == .hubbleRingBuffer)
        #expect(record.first == Date(timeIntervalSince1970: 0) && record.last == Date(timeIntervalSince1970: 95))
        var newest: [ObserverEvent] = []
        for _ in 0..<4 { if let event = await stalledIterator.next() { newest.append(event) } }
        #expect(
            newest.compactMap(\.flow?.time) == (96..<100).map { Date(timeIntervalSince1970: Double($0)) },
            "the stalled one reads the newest four")
        observer.append([Self.flow(from: "10.0.0.1", to: "10.0.0.2", at: Date(timeIntervalSince1970: 500))])
        #expect(await stalledIterator.next()?.flow?.time == Date(timeIntervalSince1970: 500))
        let metrics = HubbleMetrics(lostEvents: [observer])
        let lostSeries = metrics.families().first { $0.name == "hubble_lost_events_total" }?.samples
        #expect(lostSeries?.first { $0.labels.contains { $0 == ("source", "hubble_ring_buffer") } }?.value == 96)
    }
}
