import CDatapathABI
import ClusterInventory
import FlowDecoder
import FlowMetrics
import FlowPipeline
import FlowTestKit
import Foundation
import Locking
import Observer
import Testing

@testable import Enricher
@testable import Flows
@testable import HubbleWire

/// What a flow says about Services and addresses without pods: the backend the node's NAT
/// chose (never the ClusterIP as `world`), and Cilium's reserved identities.
@Suite("Service backends and reserved identities")
struct ServiceIdentityTests {
    /// A NAT table as a test states it: (client, client port, VIP, VIP port) → backend.
    final class FakeTranslation: ServiceTranslation {
        let table: [String: TranslationAnswer]
        let asked = Lock(0)
        /// The asks of flows held for their translation (`again`).
        let askedAgain = Lock(0)
        init(_ backends: [String: ServiceBackend]) { table = backends.mapValues(TranslationAnswer.backend) }
        init(answers: [String: TranslationAnswer]) { table = answers }

        func answer(
            client: String, clientPort: UInt16, service: String, servicePort: UInt16, protocolNumber: UInt8,
            again: Bool
        )
            -> TranslationAnswer
        {
            asked.withLock { $0 += 1 }
            if again { askedAgain.withLock { $0 += 1 } }
            return table["\(protocolNumber) \(client):\(clientPort) \(service):\(servicePort)"] ?? .unknown
        }
    }

    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    static func pod(_ name: String, _ ips: [String], app: String, node: String, namespace: String = "shop") -> Pod {
        Pod(
            uid: "uid-\(name)", namespace: namespace, name: name, node: node, ips: ips,
            labels: ["app": app], workload: Workload(kind: "Deployment", name: app), createdAt: start, netns: nil,
            hostInterface: nil)
    }

    /// A two-node cluster: frontend ×2 behind 10.96.0.11 / fd00:10:96::b, coredns behind kube-dns,
    /// the API server behind default/kubernetes on node 2's address.
    static func enricher(_ translation: (any ServiceTranslation)?, node: String = "osp-node-1") throws -> Enricher {
        Enricher(metadata: metadata(), nodeName: node, clusterName: "osp", translation: translation)
    }

    static func metadata() -> InventoryMetadata {
        let pods = [
            pod("loadgen-1", ["10.244.1.4", "fd00:10:244:1::4"], app: "loadgen", node: "osp-node-1"),
            pod("frontend-a", ["10.244.1.5", "fd00:10:244:1::5"], app: "frontend", node: "osp-node-1"),
            pod("frontend-b", ["10.244.2.5", "fd00:10:244:2::5"], app: "frontend", node: "osp-node-2"),
            pod("coredns-1", ["10.244.2.2"], app: "kube-dns", node: "osp-node-2", namespace: "kube-system"),
        ]
        let http = [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: 8080)]
        let services = [
            Service(
                namespace: "shop", name: "frontend", clusterIP: "10.96.0.11",
                clusterIPs: ["10.96.0.11", "fd00:10:96::b"],
                ports: http, selector: ["app": "frontend"],
                endpoints: ["10.244.1.5", "10.244.2.5", "fd00:10:244:1::5", "fd00:10:244:2::5"]),
            Service(
                namespace: "kube-system", name: "kube-dns", clusterIP: "10.96.0.10",
                ports: [ServicePort(name: "dns", protocol: "UDP", port: 53, targetPort: 53)],
                selector: ["app": "kube-dns"], endpoints: ["10.244.2.2"]),
            Service(
                namespace: "default", name: "kubernetes", clusterIP: "10.96.0.1",
                ports: [ServicePort(name: "https", protocol: "TCP", port: 443, targetPort: 6443)], selector: [:],
                endpoints: ["10.240.0.12"]),
        ]
        let nodes = [
            Node(
                name: "osp-node-1", internalIPs: ["10.240.0.11"], podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"],
                uplink: "eth0", netns: nil),
            Node(
                name: "osp-node-2", internalIPs: ["10.240.0.12"], podCIDRs: ["10.244.2.0/24", "fd00:10:244:2::/64"],
                uplink: "eth0", netns: nil),
        ]
        return TestCluster.metadata(nodes: nodes, pods: pods, services: services)
    }

    static func flow(
        _ source: String, _ sourcePort: UInt16, _ destination: String, _ destinationPort: UInt16,
        udp: Bool = false, reply: Bool = false, point: ObservationPoint = .fromEndpoint
    ) -> Flow {
        Flow(
            time: start.addingTimeInterval(5), verdict: .forwarded, ipVersion: source.contains(":") ? 2 : 1,
            sourceIP: source, destinationIP: destination,
            l4: udp
                ? .udp(sourcePort: sourcePort, destinationPort: destinationPort)
                : .tcp(sourcePort: sourcePort, destinationPort: destinationPort, flags: reply ? [.syn, .ack] : .syn),
            nodeName: "osp-node-1", trafficDirection: point == .fromEndpoint ? .egress : .ingress, isReply: reply,
            observationPoint: point)
    }

    @Test(
        "a request to a ClusterIP names the backend the NAT chose, keeps the Service and its address",
        arguments: [
            ("10.244.1.4", "10.96.0.11", "10.244.2.5", "frontend-b", "10.96.0.11:80"),  // cross-node backend
            ("10.244.1.4", "10.96.0.11", "10.244.1.5", "frontend-a", "10.96.0.11:80"),  // same-node backend
            ("fd00:10:244:1::4", "fd00:10:96::b", "fd00:10:244:2::5", "frontend-b", "[fd00:10:96::b]:80"),
        ])
    func request(client: String, vip: String, backendIP: String, backendPod: String, serviceAddress: String) throws {
        let nat = FakeTranslation(["6 \(client):40000 \(vip):80": ServiceBackend(ip: backendIP, port: 8080)])
        let enricher = try Self.enricher(nat)
        var request = Self.flow(client, 40000, vip, 80)
        enricher.enrich(&request)
        #expect(request.destinationIP == backendIP)
        #expect(request.l4.ports.destination == 8080)
        #expect(request.destination.podName == backendPod)
        #expect(request.destination.namespace == "shop")
        #expect(request.destinationService == ServiceRef(namespace: "shop", name: "frontend"))
        #expect(request.serviceAddress == serviceAddress)
        let message = FlowMessage.make(request)
        #expect(message.ip.destination == backendIP)
        #expect(message.destination.podName == backendPod)
        #expect(message.destination.identity >= 256)
        #expect(FlowExtensions.fields(of: message)[FlowExtensions.serviceAddress] == serviceAddress)

        // The reply reaches the client from the ClusterIP (the NAT undone): source = backend.
        var reply = Self.flow(vip, 80, client, 40000, reply: true, point: .toEndpoint)
        enricher.enrich(&reply)
        #expect(reply.sourceIP == backendIP)
        #expect(reply.l4.ports.source == 8080)
        #expect(reply.source.podName == backendPod)
        #expect(reply.sourceService == ServiceRef(namespace: "shop", name: "frontend"))
        #expect(reply.serviceAddress == serviceAddress)
        #expect(reply.destination.podName == "loadgen-1")
    }

    /// Answers only from what the packets carried (an empty connection table).
    final class LearningTranslation: ServiceTranslation {
        let learned = Lock<[ObservedTranslation]>([])

        func learn(_ translations: [ObservedTranslation]) { learned.withLock { $0 += translations } }

        func answer(
            client: String, clientPort: UInt16, service: String, servicePort: UInt16, protocolNumber: UInt8,
            again: Bool
        )
            -> TranslationAnswer
        {
            let connection = ServiceConnection(
                protocolNumber: protocolNumber, client: client, clientPort: clientPort, service: service,
                servicePort: servicePort)
            guard let observed = learned.withLock({ $0.last { $0.connection == connection } }) else { return .unknown }
            return observed.backend.map(TranslationAnswer.backend) ?? .untranslated
        }
    }

    /// loadgen-1 (10.244.1.4:41000) refused at the frontend ClusterIP (10.96.0.11:80) by
    /// frontend-b (10.244.2.5:8080): its SYN at `at`, the RST `after` nanoseconds later. The RST
    /// enters the client from the ClusterIP (the NAT undone), carrying the entry.
    static func refused(at: UInt64, after: UInt64) -> (syn: osp_event, rst: osp_event) {
        let client: [UInt8] = [10, 244, 1, 4]
        let vip: [UInt8] = [10, 96, 0, 11]
        let syn = RawEvent.packet(client, 41000, vip, 80, protocol: 6, flags: RawEvent.syn, at: at)
        let rst = RawEvent.withNAT(
            RawEvent.packet(
                vip, 80, client, 41000, protocol: 6, flags: RawEvent.rst | RawEvent.ack, reply: 1,
                observation: OSP_OBS_TO_ENDPOINT, at: at + after),
            client: client, clientPort: 41000, service: vip, servicePort: 80, backend: [10, 244, 2, 5],
            backendPort: 8080)
        return (syn, rst)
    }

    /// A pipeline on osp-node-1 with `translation`, into `observer`.
    static func pipeline(_ translation: any ServiceTranslation, into observer: Observer) -> FlowPipeline {
        FlowPipeline(
            nodeName: "osp-node-1", clusterName: "osp", kernelDropReasons: [11: "NETFILTER_DROP"],
            metadata: metadata(), translation: translation, observer: observer, metrics: HubbleMetrics())
    }

    @Test("a refused connection: the pipeline learns the NAT its RST carried before enriching the batch")
    func refusedConnection() throws {
        let translation = LearningTranslation()
        let observer = try Observer(capacity: 15)
        let pipeline = Self.pipeline(translation, into: observer)
        let (syn, rst) = Self.refused(at: 1_000, after: 1_000)
        [syn, rst].withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [7: "osp-veth"]) }
        let flows = observer.history()
        #expect(flows.count == 2)
        #expect(flows.first?.destination.podName == "frontend-b" && flows.first?.destinationIP == "10.244.2.5")
        #expect(flows.last?.source.podName == "frontend-b" && flows.last?.l4.ports.source == 8080)
        #expect(flows.allSatisfy { $0.serviceAddress == "10.96.0.11:80" })
        #expect(translation.learned.withLock { $0.count } == 1)
    }

    @Test("a refused connection drained in two polls: the SYN waits for the RST's NAT, and progress waits for the SYN")
    func refusedAcrossPolls() throws {
        let observer = try Observer(capacity: 15)
        let pipeline = Self.pipeline(LearningTranslation(), into: observer)
        let at: UInt64 = 10_000_000_000
        let (syn, rst) = Self.refused(at: at, after: 50_000)
        // Another pod's packet right after the SYN, drained in the same poll.
        let other = RawEvent.packet(
            [10, 244, 1, 5], 8080, [10, 244, 1, 4], 40999, protocol: 6, flags: RawEvent.ack, at: at + 1)
        [syn, other].withUnsafeBufferPointer {
            pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 10_000_000)
        }
        #expect(observer.history().isEmpty, "the SYN and the flow after it wait for the next poll")
        let synTime = FlowDecoder(nodeName: "osp-node-1", kernelDropReasons: [:]).wallTime(monotonicNs: at)
        #expect(observer.progress < synTime, "no mark passes a held flow")

        [rst].withUnsafeBufferPointer {
            pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 20_000_000)
        }
        let flows = observer.history()
        #expect(flows.count == 3)
        #expect(flows.map(\.time) == flows.map(\.time).sorted(), "in the order they were stamped")
        #expect(flows.first?.destination.podName == "frontend-b" && flows.first?.destinationIP == "10.244.2.5")
        #expect(flows.first?.serviceAddress == "10.96.0.11:80")
        #expect(flows.first?.destinationService?.name == "frontend")
        #expect(flows.last?.source.podName == "frontend-b")
        #expect(observer.progress > synTime)
    }

    @Test(
        "a SYN a network policy dropped after the NAT: the drop, drained a poll later, carries the backend the SYN then names"
    )
    func droppedAfterTranslation() throws {
        let observer = try Observer(capacity: 15)
        let pipeline = Self.pipeline(LearningTranslation(), into: observer)
        let at: UInt64 = 10_000_000_000
        let client: [UInt8] = [10, 244, 1, 4]
        let vip: [UInt8] = [10, 96, 0, 11]
        let backend: [UInt8] = [10, 244, 2, 5]
        let syn = RawEvent.packet(client, 41000, vip, 80, protocol: 6, flags: RawEvent.syn, at: at)
        // The node's netfilter translated the SYN, then dropped it: the drop event has the
        // packet as it was freed (to the backend) and the translation its conntrack entry held.
        let drop = RawEvent.withNAT(
            RawEvent.packet(client, 41000, backend, 8080, protocol: 6, flags: RawEvent.syn, at: at + 20_000, drop: 11),
            client: client, clientPort: 41000, service: vip, servicePort: 80, backend: backend, backendPort: 8080)
        [syn].withUnsafeBufferPointer {
            pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 10_000)
        }
        #expect(observer.history().isEmpty, "the SYN waits a poll for its translation")
        [drop].withUnsafeBufferPointer {
            pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 10_000_000)
        }
        let flows = observer.history()
        #expect(flows.count == 2)
        let departure = try #require(flows.first)
        #expect(departure.verdict == .forwarded)
        #expect(departure.destination.podName == "frontend-b" && departure.destinationIP == "10.244.2.5")
        #expect(departure.l4.ports.destination == 8080)
        #expect(departure.serviceAddress == "10.96.0.11:80")
        #expect(departure.destinationService?.name == "frontend")
        let dropped = try #require(flows.last)
        #expect(dropped.verdict == .dropped)
        #expect(dropped.destination.podName == "frontend-b", "the drop names the pod the SYN now names")
        #expect(FlowMessage.make(dropped).dropReasonDesc == .policyDenied, "dropped after the NAT: a policy")
    }

    /// loadgen-1's SYN to the frontend ClusterIP and netfilter's drop of it, still addressed to
    /// the ClusterIP (kube-proxy rejecting a Service without endpoints): the drop carries no
    /// translation.
    static func rejected(at: UInt64) -> (syn: osp_event, drop: osp_event) {
        let client: [UInt8] = [10, 244, 1, 4]
        let vip: [UInt8] = [10, 96, 0, 11]
        return (
            RawEvent.packet(client, 42000, vip, 80, protocol: 6, flags: RawEvent.syn, at: at),
            RawEvent.packet(client, 42000, vip, 80, protocol: 6, flags: RawEvent.syn, at: at + 20_000, drop: 11)
        )
    }

    @Test(
        "a Service without endpoints: netfilter drops the SYN still addressed to it; the drop says so and releases the SYN at once",
        arguments: [false, true])
    func serviceWithoutEndpoints(acrossPolls: Bool) throws {
        let observer = try Observer(capacity: 15)
        let translation = LearningTranslation()
        let pipeline = Self.pipeline(translation, into: observer)
        let at: UInt64 = 10_000_000_000
        let (syn, drop) = Self.rejected(at: at)
        if acrossPolls {
            [syn].withUnsafeBufferPointer {
                pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 10_000)
            }
            #expect(observer.history().isEmpty, "the SYN waits a poll for its translation")
            // The next poll, 10 ms on: the drop says the SYN will never be translated.
            [drop].withUnsafeBufferPointer {
                pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 10_000_000)
            }
        } else {
            [syn, drop].withUnsafeBufferPointer {
                pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 10_000_000)
            }
        }
        let flows = observer.history()
        #expect(flows.count == 2, "delivered with the drop's poll, not at the hold limit")
        let departure = try #require(flows.first)
        #expect(departure.verdict == .forwarded)
        #expect(departure.destinationIP == "10.96.0.11" && departure.destination.podName.isEmpty)
        #expect(departure.destinationService?.name == "frontend")
        let dropped = try #require(flows.last)
        #expect(dropped.verdict == .dropped)
        #expect(dropped.kernelDropReason == "NETFILTER_DROP")
        #expect(dropped.destinationService?.name == "frontend" && dropped.destination.podName.isEmpty)
        let message = FlowMessage.make(dropped)
        #expect(message.dropReasonDesc == .serviceBackendNotFound)
        #expect(message.dropReason == 158)
        #expect(translation.learned.withLock { $0 }.map(\.backend) == [nil])
    }

    @Test(
        "without Service naming (--no-service-translation): a drop still addressed to the Service came before the NAT, so the Service had no backend; a drop to the backend is the policy's"
    )
    func serviceWithoutEndpointsUnnamed() throws {
        let observer = try Observer(capacity: 15)
        let pipeline = FlowPipeline(
            nodeName: "osp-node-1", clusterName: "osp", kernelDropReasons: [11: "NETFILTER_DROP"],
            metadata: Self.metadata(), translation: nil, observer: observer, metrics: HubbleMetrics())
        let at: UInt64 = 10_000_000_000
        let (syn, drop) = Self.rejected(at: at)
        let afterNAT = RawEvent.packet(
            [10, 244, 1, 4], 41000, [10, 244, 2, 5], 8080, protocol: 6, flags: RawEvent.syn, at: at + 40_000, drop: 11)
        [syn, drop, afterNAT].withUnsafeBufferPointer {
            pipeline.process($0, interfaceNames: [7: "osp-veth"], drainedAt: at + 10_000_000)
        }
        let flows = observer.history()
        #expect(flows.count == 3)
        #expect(flows.first?.destinationService?.name == "frontend" && flows.first?.verdict == .forwarded)
        let rejected = FlowMessage.make(try #require(flows.dropFirst().first))
        #expect(rejected.destinationService.name == "frontend" && rejected.destination.podName.isEmpty)
        #expect(rejected.dropReasonDesc == .serviceBackendNotFound)
        let denied = FlowMessage.make(try #require(flows.last))
        #expect(denied.destination.podName == "frontend-b" && denied.dropReasonDesc == .policyDenied)
    }

    @Test(
        "the node's table holds the connection untranslated (its NAT ran, no backend): final, the flow goes on at once")
    func untranslatedInTheTable() throws {
        let observer = try Observer(capacity: 15)
        let nat = FakeTranslation(answers: ["6 10.244.1.4:43000 10.96.0.11:80": .untranslated])
        let pipeline = Self.pipeline(nat, into: observer)
        let at: UInt64 = 10_000_000_000
        let syn = RawEvent.packet(
            [10, 244, 1, 4], 43000, [10, 96, 0, 11], 80, protocol: 6, flags: RawEvent.syn, at: at)
        [syn].withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: at + 10_000) }
        let flows = observer.history()
        #expect(flows.count == 1)
        #expect(flows.first?.destinationService?.name == "frontend" && flows.first?.awaitsTranslation == false)
        #expect(nat.asked.withLock { $0 } == 1, "asked once, not again at every poll")
    }

    @Test(
        "a connection the node never translated: its flows wait for a translation up to the hold limit, then go on naming the Service's backends"
    )
    func neverTranslated() throws {
        let observer = try Observer(capacity: 15)
        let nat = FakeTranslation([:])
        let pipeline = Self.pipeline(nat, into: observer)
        let client: [UInt8] = [10, 244, 1, 4]
        let at: UInt64 = 10_000_000_000
        let syn = RawEvent.packet(client, 41000, [10, 96, 0, 11], 80, protocol: 6, flags: RawEvent.syn, at: at)
        // A loaded node's reader drains the SYN 90 ms after its packet: the wait counts from here.
        let firstDrain = at + 90_000_000
        [syn].withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: firstDrain) }
        #expect(observer.history().isEmpty)
        #expect(nat.asked.withLock { $0 } == 1 && nat.askedAgain.withLock { $0 } == 0)
        let empty: [osp_event] = []
        // The next poll, 30 ms on (120 ms after the packet, past the limit if it counted from
        // there): it still waits, and asks again (a table that remembers "not translated" looks
        // once more).
        empty.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: firstDrain + 30_000_000) }
        #expect(observer.history().isEmpty, "within the hold limit of the first drain")
        #expect(nat.asked.withLock { $0 } == 2 && nat.askedAgain.withLock { $0 } == 1)
        // Drained past the hold limit from the first drain: it goes on untranslated.
        let late = firstDrain + UInt64(FlowPipeline.holdLimit * 1e9) + 10_000_000
        empty.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: late) }
        #expect(nat.asked.withLock { $0 } == 3 && nat.askedAgain.withLock { $0 } == 2)
        let flows = observer.history()
        #expect(flows.count == 1)
        #expect(flows.first?.destinationIP == "10.96.0.11" && flows.first?.destinationService?.name == "frontend")
        #expect(flows.first?.awaitsTranslation == false)

        // Held at the reader's last poll: the agent hands it on as it stops.
        let again = RawEvent.packet(client, 41001, [10, 96, 0, 11], 80, protocol: 6, flags: RawEvent.syn, at: at + 1)
        [again].withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: late + 10_000_000) }
        #expect(observer.history().count == 1)
        pipeline.releaseHeld()
        #expect(observer.history().count == 2)
        #expect(observer.history().last?.l4.ports.source == 41001)
    }

    @Test("DNS over UDP to kube-dns names the coredns pod, both ways")
    func dns() throws {
        let nat = FakeTranslation(["17 10.244.1.4:5353 10.96.0.10:53": ServiceBackend(ip: "10.244.2.2", port: 53)])
        let enricher = try Self.enricher(nat)
        var query = Self.flow("10.244.1.4", 5353, "10.96.0.10", 53, udp: true)
        var answer = Self.flow("10.96.0.10", 53, "10.244.1.4", 5353, udp: true, reply: true, point: .toEndpoint)
        var batch = [query, answer]
        enricher.enrich(&batch)
        (query, answer) = (batch[0], batch[1])
        #expect(query.destination.podName == "coredns-1" && query.destination.namespace == "kube-system")
        #expect(query.destinationService?.name == "kube-dns")
        #expect(answer.source.podName == "coredns-1")
        #expect(answer.sourceService?.name == "kube-dns")
    }

    @Test("untranslated (a policy dropped the first packet): the Service's backends, never world")
    func untranslated() throws {
        let enricher = try Self.enricher(FakeTranslation([:]))
        var request = Self.flow("10.244.1.4", 40001, "10.96.0.11", 80)
        enricher.enrich(&request)
        #expect(request.destinationIP == "10.96.0.11")
        #expect(request.serviceAddress == nil)
        #expect(request.destinationService?.name == "frontend")
        #expect(request.destination.namespace == "shop" && request.destination.podName.isEmpty)
        #expect(request.destination.workloads.map(\.name) == ["frontend"])
        // The same identity as the frontend pods themselves.
        var direct = Self.flow("10.244.1.4", 40002, "10.244.1.5", 8080)
        enricher.enrich(&direct)
        #expect(request.destination.identity == direct.destination.identity)
        #expect(FlowMessage.make(request).destination.labels.contains("k8s:app=frontend"))
    }

    @Test("nodes are host here and remote-node elsewhere, the API server kube-apiserver, the rest world")
    func reservedIdentities() throws {
        func identities(
            _ source: String, _ destination: String, on node: String = "osp-node-1"
        ) throws -> (
            UInt32, [String], UInt32, [String]
        ) {
            var flow = Self.flow(source, 40000, destination, 80)
            try Self.enricher(nil, node: node).enrich(&flow)
            let message = FlowMessage.make(flow)
            return (
                message.source.identity, message.source.labels, message.destination.identity, message.destination.labels
            )
        }
        // The node's own address and its pod network gateway: host on node 1.
        #expect(try identities("10.240.0.11", "10.244.1.4").0 == 1)
        #expect(try identities("10.244.1.1", "10.244.1.4").1 == ["reserved:host"])
        #expect(try identities("fd00:10:244:1::1", "fd00:10:244:1::4").0 == 1)
        // Node 1's address seen from node 2: remote-node.
        let remote = try identities("10.240.0.11", "10.244.2.5", on: "osp-node-2")
        #expect(remote.0 == 6 && remote.1 == ["reserved:remote-node"])
        // The API server (on node 2's address) from node 1.
        let api = try identities("10.244.1.4", "10.240.0.12")
        #expect(api.2 == 7 && api.3 == ["reserved:kube-apiserver"])
        // Outside the cluster.
        let world = try identities("10.244.1.4", "192.0.2.53")
        #expect(world.2 == 2 && world.3 == ["reserved:world"])
        // A pod has the same identity whichever node reports it.
        #expect(
            try identities("10.244.1.4", "10.244.2.5").2 == identities("10.244.1.4", "10.244.2.5", on: "osp-node-2").2)
    }
}

/// Every drop says why in Hubble's words: no DROPPED flow carries reason 0 ("Success").
@Suite("Drop reasons in Hubble's vocabulary")
struct DropReasonVocabularyTests {
    /// Linux 6.18's drop reasons (enum skb_drop_reason), as the datapath names them.
    static let kernelReasons = """
        NOT_SPECIFIED NO_SOCKET SOCKET_CLOSE SOCKET_FILTER SOCKET_RCVBUFF UNIX_DISCONNECT UNIX_SKIP_OOB PKT_TOO_SMALL \
        TCP_CSUM UDP_CSUM NETFILTER_DROP OTHERHOST IP_CSUM IP_INHDR IP_RPFILTER UNICAST_IN_L2_MULTICAST XFRM_POLICY \
        IP_NOPROTO PROTO_MEM TCP_AUTH_HDR TCP_MD5NOTFOUND SOCKET_BACKLOG TCP_FLAGS TCP_ABORT_ON_DATA TCP_ZEROWINDOW \
        TCP_OLD_DATA TCP_OVERWINDOW TCP_OFOMERGE TCP_RFC7323_PAWS TCP_LISTEN_OVERFLOW TCP_OLD_SEQUENCE \
        TCP_INVALID_SEQUENCE TCP_RESET TCP_INVALID_SYN TCP_CLOSE TCP_FASTOPEN TCP_OLD_ACK IP_OUTNOROUTES \
        BPF_CGROUP_EGRESS IPV6DISABLED NEIGH_CREATEFAIL NEIGH_FAILED NEIGH_QUEUEFULL NEIGH_DEAD TC_EGRESS \
        SECURITY_HOOK QDISC_DROP CPU_BACKLOG XDP TC_INGRESS UNHANDLED_PROTO SKB_CSUM DEV_HDR FULL_RING NOMEM \
        HDR_TRUNC ICMP_CSUM INVALID_PROTO IP_INADDRERRORS IP_INNOROUTES IP_LOCAL_SOURCE IP_INVALID_SOURCE \
        PKT_TOO_BIG DUP_FRAG TCP_MINTTL IPV6_BAD_EXTHDR IPV6_NDISC_NS_OTHERHOST QUEUE_PURGE VXLAN_INVALID_HDR \
        MAC_INVALID_SOURCE BRIDGE_INGRESS_STP_STATE RECURSION_LIMIT REASON_999
        """.split(separator: " ").map(String.init)

    @Test("every kernel reason maps to a Hubble reason hubble can print, never 0")
    func neverZero() {
        for kernel in Self.kernelReasons {
            let code = DropReasons.hubbleReason(forKernel: kernel)
            #expect(code != 0, "\(kernel)")
            #expect(HubbleVocabulary.dropReasonTexts[code] != nil, "\(kernel) → \(code)")
            #expect(ProtoNames.dropReason(code) != "DROP_REASON_UNKNOWN", "\(kernel) → \(code)")
        }
        #expect(DropReasons.hubbleReason(forKernel: "NETFILTER_DROP") == 133)
        #expect(DropReasons.hubbleReason(forKernel: "NO_SOCKET") == 178)
        #expect(DropReasons.hubbleReason(forKernel: "NOT_SPECIFIED") == DropReasons.fallback)
        #expect(ProtoNames.dropReason(133) == "POLICY_DENIED" && ProtoNames.dropReason(178) == "SOCKET_LOOKUP_FAILED")
        // Every reason Osprey maps to is one the proto declares (its name is the proto's).
        for code in DropReasons.codes { #expect(ProtoNames.dropReason(code) != "DROP_REASON_UNKNOWN", "\(code)") }
    }
}
