import ClusterInventory
import FlowDecoder
import Foundation
import Lab
import TestSupport
import Testing

/// What an operator reads must be true: traffic to a Service names the backend the node chose,
/// a healthy cluster shows no drops, and a pod has one identity everywhere. Not part of the
/// serialized exact-count suite: nothing here counts packets, and the 60 s of healthy traffic
/// would otherwise add to the suite's length.
@Suite("Fidelity on labs: Services, drops, identities")
struct FidelityLabTests {
    typealias Flows = AgentIntegration.FlowLabTests

    /// Cluster addresses (pods, Services, nodes) that must never be shown as `world`.
    static let clusterPrefixes = ["10.244.", "fd00:10:244:", "10.96.", "fd00:10:96:", "10.240.0.", "fd00:240:"]

    static func flows(viaRelay config: LabConfig) throws -> [[String: Any]] {
        Flows.flows(
            inJSONLines: try OspreyBinary.cli.run([
                "observe", "--server", "unix://\(config.relaySocketPath)", "--last", "4095", "-o", "jsonpb",
            ]).stdout)
    }

    /// The name of interface `index` in network namespace `netns`, as `ip link` shows it.
    static func interfaceName(_ index: Int, in netns: String) throws -> String {
        let links = try LabFixture.exec(netns, ["ip", "-j", "link", "show"]).stdout
        let parsed = (try JSONSerialization.jsonObject(with: Data(links.utf8))) as? [[String: Any]] ?? []
        return parsed.first { ($0["ifindex"] as? Int) == index }?["ifname"] as? String ?? "(none)"
    }

    /// For a failure message: every flow of each node with `port` at either end, read again
    /// after `wait` seconds (a late event shows there) — time, observation point, verdict,
    /// summary and the destination it names — and what each node's agent lost and asked
    /// netfilter's connection table. Every node: a packet lost on the way shows as the last
    /// node that reported it.
    static func history(port: String, in nodes: [PlannedNode], wait: Double = 3) -> String {
        let string = Flows.string
        Thread.sleep(forTimeInterval: wait)
        let nodes = nodes.map { node in
            let flows = ((try? Flows.flows(node.netns)) ?? []).filter {
                string($0, "l4", "TCP", "source_port") == port || string($0, "l4", "TCP", "destination_port") == port
            }
            let lines = flows.map {
                [
                    string($0, "time") ?? "-", string($0, "trace_observation_point") ?? "-",
                    string($0, "verdict") ?? "-", string($0, "Summary") ?? "-", "→",
                    string($0, "destination", "pod_name") ?? "-", string($0, "IP", "destination") ?? "-",
                ].joined(separator: " ")
            }
            let health = (try? LabFixture.scrape(node.netns)).map {
                [
                    "events lost \($0.value("hubble_lost_events_total"))",
                    "table lookups \($0.value("osprey_agent_service_translation_lookups_total"))",
                    "failed \($0.value("osprey_agent_service_translation_errors_total"))",
                ].joined(separator: ", ")
            }
            return "\(node.name): [\(lines.joined(separator: "; "))]; \(health ?? "no metrics")"
        }
        return "port \(port)'s flows \(wait) s later, by node: \(nodes.joined(separator: " | "))"
    }

    static func dropReasons(_ metrics: ScrapedMetrics, _ name: String) -> [String: Double] {
        var reasons: [String: Double] = [:]
        for sample in metrics.series(name) where sample.value > 0 {
            reasons[sample.labels["reason"] ?? "", default: 0] += sample.value
        }
        return reasons
    }

    @Test(
        "Service backends same- and cross-node, IPv4 and IPv6, TCP and DNS; only real drops; one identity per pod",
        arguments: Topology.allCases)
    func fidelity(topology: Topology) async throws {
        var config = try LabConfig(
            name: LabFixture.uniqueName(topology == .bridge ? "s" : "t"), nodeCount: 2, topology: topology,
            agentPath: OspreyBinary.agent.path)
        config.relayPath = OspreyBinary.relay.path
        config.relayPort = nil
        try await LabFixture.withLab(config) { plan, _ in
            let string = Flows.string
            let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
            let frontends = plan.pods(of: "frontend", in: "shop")
            let frontend = try #require(plan.services.first { $0.spec.name == "frontend" })
            #expect(Set(frontends.map(\.node.name)).count == 2, "one replica on each node")

            // Requests to the Service's ClusterIP until both replicas answered: one on loadgen's
            // node, one across.
            var answered: Set<String> = []
            for _ in 0..<60 where answered.count < 2 {
                let reply = try LabFixture.curl(from: loadgen.netns, "http://\(frontend.clusterIP)/")
                if let pod = reply.body.split(separator: " ").first?.split(separator: "/").last {
                    answered.insert(String(pod))
                }
            }
            #expect(answered == Set(frontends.map(\.name)))
            // Three requests over IPv6. Twice on 2026-12-01, with the machine fully loaded, the one
            // IPv6 request's SYN named no frontend pod: the reader had drained the SYN before the
            // node confirmed its conntrack entry, and the SYN-ACK that carries the translation came
            // in the next poll. The SYN now waits a poll for it: every one must name its pod.
            for _ in 0..<3 {
                let v6 = try LabFixture.curl(from: loadgen.netns, "http://[\(frontend.clusterIPv6)]/")
                #expect(v6.status == 0, "the IPv6 ClusterIP answers")
            }

            var flows: [String: [[String: Any]]] = [:]
            // Until every scenario asserted below shows in the flows (each client runs about once a
            // second): every frontend answering, DNS both ways, the refused connection's RST, and
            // both kinds of drop. Then the details are asserted exactly.
            let checkoutNode = try #require(plan.pods(of: "checkout", in: "shop").first).node.netns
            eventually(within: 30, poll: 0.5) {
                for node in plan.nodes { flows[node.netns] = (try? Flows.flows(node.netns)) ?? [] }
                let client = flows[loadgen.node.netns] ?? []
                let toClient = client.compactMap { string($0, "source", "pod_name") }
                let dns = Set(
                    client.filter {
                        (string($0, "source", "pod_name") == loadgen.name
                            && string($0, "traffic_direction") == "EGRESS")
                            || (string($0, "destination", "pod_name") == loadgen.name
                                && string($0, "traffic_direction") == "INGRESS")
                    }.compactMap { string($0, "l7", "type") })
                let resets = (flows[checkoutNode] ?? []).contains {
                    string($0, "trace_observation_point") == "TO_ENDPOINT"
                        && (string($0, "Summary") ?? "").contains("RST")
                }
                let dropReasons = Set(
                    flows.values.joined().filter { string($0, "verdict") == "DROPPED" }.compactMap {
                        string($0, "extensions", "value", "kernel_drop_reason")
                    })
                return frontends.allSatisfy { toClient.contains($0.name) }
                    && dns.isSuperset(of: ["REQUEST", "RESPONSE"])
                    && resets && dropReasons.isSuperset(of: ["NETFILTER_DROP", "NO_SOCKET"])
            }
            let clientFlows = flows[loadgen.node.netns] ?? []
            for pod in frontends {
                let syn = clientFlows.filter {
                    string($0, "source", "pod_name") == loadgen.name
                        && string($0, "destination", "pod_name") == pod.name
                        && string($0, "Summary") == "TCP Flags: SYN"
                        && string($0, "trace_observation_point") == "FROM_ENDPOINT"
                        && string($0, "IP", "destination") == pod.ipv4
                }
                let request = try #require(
                    syn.first, "loadgen's SYN to the ClusterIP names \(pod.name) on \(pod.node.name)")
                #expect(string(request, "destination_service", "name") == "frontend")
                #expect(string(request, "destination", "namespace") == "shop")
                #expect(
                    string(request, "extensions", "value", "service_address") == "\(frontend.clusterIP):80",
                    "the ClusterIP the client used is kept")
                let synAck = clientFlows.filter {
                    string($0, "source", "pod_name") == pod.name
                        && string($0, "destination", "pod_name") == loadgen.name
                        && string($0, "Summary") == "TCP Flags: SYN, ACK"
                        && string($0, "trace_observation_point") == "TO_ENDPOINT"
                }
                let reply = try #require(synAck.first, "the reply names \(pod.name) as its source")
                #expect(string(reply, "source_service", "name") == "frontend")
                #expect(string(reply, "IP", "source") == pod.ipv4)
                #expect(string(reply, "is_reply") == "1")
            }
            let v6Request = clientFlows.filter {
                string($0, "source", "pod_name") == loadgen.name && string($0, "Summary") == "TCP Flags: SYN"
                    && frontends.map(\.ipv6).contains(string($0, "IP", "destination") ?? "")
            }
            // What loadgen's IPv6 TCP flows said, for a failure to show.
            let seen6 = clientFlows.filter {
                string($0, "source", "pod_name") == loadgen.name
                    && (string($0, "IP", "destination") ?? "").contains(":")
                    && (string($0, "Summary") ?? "").hasPrefix("TCP")
            }.map { "\(string($0, "IP", "destination") ?? "-") \(string($0, "Summary") ?? "-")" }
            let request6 = try #require(v6Request.first, "the IPv6 request names a frontend pod; seen: \(seen6)")
            let v6SYNs = clientFlows.filter {
                string($0, "source", "pod_name") == loadgen.name && string($0, "Summary") == "TCP Flags: SYN"
                    && (string($0, "IP", "destination") ?? "").contains(":")
            }
            #expect(v6SYNs.count == v6Request.count, "every IPv6 SYN names a frontend pod; seen: \(seen6)")
            #expect(string(request6, "destination_service", "name") == "frontend")
            #expect(string(request6, "extensions", "value", "service_address") == "[\(frontend.clusterIPv6)]:80")
            #expect(frontends.map(\.name).contains(string(request6, "destination", "pod_name") ?? ""))
            let health = try LabFixture.scrape(loadgen.node.netns)
            // Most translations come with the packets (the reply carries them in the same batch):
            // the table is asked only for the rest, and never fails.
            #expect(health.series("osprey_agent_service_translation_lookups_total").count == 1)
            #expect(health.value("osprey_agent_service_translation_errors_total") == 0)
            // DNS (UDP) through the kube-dns ClusterIP: the coredns pod, both ways.
            let coredns = try #require(plan.pods(of: "coredns", in: "kube-system").first)
            // (Only the querier's side carries a DNS message's L7 record; coredns's own veth
            // reports the packet as a trace, FlowLabTests.)
            let queries = clientFlows.filter {
                string($0, "source", "pod_name") == loadgen.name && string($0, "l7", "type") == "REQUEST"
                    && string($0, "traffic_direction") == "EGRESS"
            }
            #expect(!queries.isEmpty)
            #expect(queries.allSatisfy { string($0, "destination", "pod_name") == coredns.name })
            #expect(queries.allSatisfy { string($0, "destination_service", "name") == "kube-dns" })
            let answers = clientFlows.filter {
                string($0, "destination", "pod_name") == loadgen.name && string($0, "l7", "type") == "RESPONSE"
                    && string($0, "traffic_direction") == "INGRESS"
            }
            #expect(!answers.isEmpty && answers.allSatisfy { string($0, "source", "pod_name") == coredns.name })
            #expect(answers.allSatisfy { string($0, "source_service", "name") == "kube-dns" })

            // A connection refused with a RST: conntrack forgets it at once, so the backend comes
            // from the entry the RST carried into the client's pod.
            let checkout = try #require(plan.pods(of: "checkout", in: "shop").first)
            let ledger = try #require(plan.pods(of: "ledger", in: "billing").first)
            let ledgerService = try #require(plan.services.first { $0.spec.name == "ledger" })
            let refused = (flows[checkout.node.netns] ?? []).filter {
                string($0, "source", "pod_name") == checkout.name
                    || string($0, "destination", "pod_name") == checkout.name
            }
            let resets = refused.filter {
                string($0, "trace_observation_point") == "TO_ENDPOINT" && (string($0, "Summary") ?? "").contains("RST")
            }
            #expect(!resets.isEmpty)
            #expect(resets.allSatisfy { string($0, "source", "pod_name") == ledger.name })
            #expect(resets.allSatisfy { string($0, "source_service", "name") == "ledger" })
            #expect(resets.allSatisfy { string($0, "IP", "source") == ledger.ipv4 })
            let refusedSYNs = refused.filter {
                string($0, "trace_observation_point") == "FROM_ENDPOINT" && string($0, "Summary") == "TCP Flags: SYN"
            }
            // Every one, also when the reader drained the SYN in a poll before the RST's: the
            // SYN waits a poll for the translation the RST carries.
            let named = refusedSYNs.map { string($0, "destination", "pod_name") ?? "-" }
            #expect(!refusedSYNs.isEmpty)
            let unnamed = refusedSYNs.filter {
                string($0, "destination", "pod_name") != ledger.name
                    || string($0, "extensions", "value", "service_address") != "\(ledgerService.clusterIP):8080"
            }
            let unnamedHistory = unnamed.first.map {
                Self.history(port: string($0, "l4", "TCP", "source_port") ?? "-", in: plan.nodes)
            }
            #expect(
                unnamed.isEmpty, "every refused SYN names the ledger pod; they name \(named); \(unnamedHistory ?? "")")

            // A SYN the network policy drops on the client's node after the NAT: its conntrack
            // entry is never confirmed, so the node's table cannot answer; the drop carries the
            // translation, and the SYN names the backend its drop names (each retransmission is
            // translated anew, possibly to the other replica).
            let untrusted = try #require(plan.pods(of: "untrusted", in: "shop").first)
            var denied: [[String: Any]] = []
            eventually(within: 15, poll: 0.5) {
                denied = ((try? Flows.flows(untrusted.node.netns)) ?? []).filter {
                    string($0, "source", "pod_name") == untrusted.name && string($0, "Summary") == "TCP Flags: SYN"
                }
                return denied.contains { string($0, "trace_observation_point") == "FROM_ENDPOINT" }
                    && denied.contains { string($0, "verdict") == "DROPPED" }
            }
            let deniedSYNs = denied.filter { string($0, "trace_observation_point") == "FROM_ENDPOINT" }
            #expect(!deniedSYNs.isEmpty, "untrusted's SYNs leaving its pod are reported")
            let drops = Set(
                denied.filter { string($0, "verdict") == "DROPPED" }.map {
                    "\(string($0, "l4", "TCP", "source_port") ?? "-") → \(string($0, "destination", "pod_name") ?? "-")"
                })
            for syn in deniedSYNs {
                let pod = string(syn, "destination", "pod_name") ?? "-"
                let port = string(syn, "l4", "TCP", "source_port") ?? "-"
                // A comment is built only when its expectation fails: the history waits 3 s.
                #expect(
                    frontends.map(\.name).contains(pod),
                    "untrusted's SYN names a frontend pod, not \(pod); \(Self.history(port: port, in: plan.nodes))"
                )
                #expect(string(syn, "extensions", "value", "service_address") == "\(frontend.clusterIP):80")
                #expect(string(syn, "destination_service", "name") == "frontend")
                #expect(
                    drops.contains("\(port) → \(pod)"),
                    "SYN \(port) → \(pod) has its drop; drops: \(drops); \(Self.history(port: port, in: plan.nodes))"
                )
            }

            // A datagram larger than the MTU leaves loadgen in fragments: the later ones carry no
            // UDP header. They are counted on the datagram's connection, never shown with ports
            // read from its data (0x6f6f: 28527). Port 9 is closed: one more NO_SOCKET drop.
            let across = try #require(frontends.first { $0.node.name != loadgen.node.name })
            try PodSockets.sendUDP(from: loadgen.netns, to: across.ipv4, port: 9, count: 3, payload: 4000)
            var fragmented: [[String: Any]] = []
            eventually(within: 15, poll: 0.5) {
                let all = plan.nodes.flatMap { (try? Flows.flows($0.netns)) ?? [] }
                fragmented = all.filter {
                    string($0, "IP", "source") == loadgen.ipv4 && string($0, "IP", "destination") == across.ipv4
                        && string($0, "l4", "UDP") != nil
                }
                return fragmented.contains { string($0, "trace_observation_point") == "TO_ENDPOINT" }
                    && fragmented.contains { string($0, "trace_observation_point") == "FROM_ENDPOINT" }
            }
            let ports = Set(fragmented.map { string($0, "l4", "UDP", "destination_port") ?? "none" })
            #expect(!fragmented.isEmpty && ports == ["9"], "fragmented datagrams' flows have ports \(ports)")

            // A pod reaching itself through its own Service (hairpin), as on a cluster: the node
            // masquerades it, as kube-proxy does, so the pod is answered. The SYN leaving the pod
            // names the pod itself as the backend; the SYN entering it comes from the node.
            let caller = frontends[0]
            var hairpin: [[String: Any]] = []
            for _ in 0..<30 where hairpin.isEmpty {  // each request picks one of the two replicas
                let reply = try LabFixture.curl(from: caller.netns, "http://\(frontend.clusterIP)/", timeout: 2)
                #expect(reply.status == 0, "a frontend pod reaches its own Service (curl exit \(reply.status))")
                hairpin = ((try? Flows.flows(caller.node.netns)) ?? []).filter {
                    string($0, "Summary") == "TCP Flags: SYN" && string($0, "destination", "pod_name") == caller.name
                        && string($0, "extensions", "value", "service_address") == "\(frontend.clusterIP):80"
                        && string($0, "source", "pod_name") == caller.name
                }
            }
            let leaving = try #require(hairpin.first, "a SYN of the pod to itself through the Service")
            #expect(string(leaving, "trace_observation_point") == "FROM_ENDPOINT")
            #expect(string(leaving, "IP", "destination") == caller.ipv4)
            #expect(string(leaving, "destination_service", "name") == "frontend")
            let port = string(leaving, "l4", "TCP", "source_port")
            var entering: [String: Any]?
            eventually(within: 5, poll: 0.25) {
                entering = ((try? Flows.flows(caller.node.netns)) ?? []).first {
                    string($0, "Summary") == "TCP Flags: SYN" && string($0, "trace_observation_point") == "TO_ENDPOINT"
                        && string($0, "destination", "pod_name") == caller.name
                        && string($0, "l4", "TCP", "source_port") == port
                }
                return entering != nil
            }
            #expect(
                entering.map { string($0, "source", "identity") } == "1",
                "the hairpin SYN enters the pod from the node (host): \(entering.map { string($0, "IP", "source") ?? "-" } ?? "none")"
            )

            // Whatever Osprey adds travels as a well-known type that clients built from the
            // upstream protos alone can print (hubble -o json used to stop at the first drop).
            let extended = flows.values.joined().compactMap { $0["extensions"] as? [String: Any] }
            #expect(!extended.isEmpty)
            #expect(extended.allSatisfy { ($0["@type"] as? String) == "type.googleapis.com/google.protobuf.Struct" })
            #expect(flows.values.joined().allSatisfy { $0["l7"] == nil || string($0, "Type") == "L7" })

            // No cluster address is `world`; a pod has one identity on every node and via the relay.
            let relayed = try Self.flows(viaRelay: config)
            #expect(!relayed.isEmpty)
            var identities: [String: Set<String>] = [:]
            for flow in flows.values.joined() + relayed {
                for (side, ip) in [("source", "source"), ("destination", "destination")] {
                    let address = string(flow, "IP", ip) ?? ""
                    let identity = string(flow, side, "identity") ?? ""
                    let linkLocalOrMulticast =
                        address.hasPrefix("fe80:") || address.hasPrefix("ff0")
                        || address.hasPrefix("224.")
                    if identity == "2", !linkLocalOrMulticast {
                        #expect(
                            !Self.clusterPrefixes.contains { address.hasPrefix($0) },
                            "\(address) is in the cluster, not world: \(string(flow, "Summary") ?? "")")
                    }
                    if let pod = string(flow, side, "pod_name") { identities[pod, default: []].insert(identity) }
                }
            }
            for pod in plan.pods where identities[pod.name] != nil {
                #expect(identities[pod.name]?.count == 1, "\(pod.name) has identities \(identities[pod.name] ?? [])")
            }

            // The deliberate drops, and nothing else: the policy (untrusted) and the closed port (checkout).
            let deliberate = try plan.nodes.map { try LabFixture.scrape($0.netns) }
            let kernelReasons = deliberate.reduce(into: Set<String>()) {
                $0.formUnion(Self.dropReasons($1, "networkobservability_drop_count").keys)
            }
            // Any other drop, as the flows show it (a drop without IP headers counts with no flow).
            let unexpected = plan.nodes.flatMap { node in
                ((try? Flows.flows(node.netns)) ?? []).filter {
                    string($0, "verdict") == "DROPPED"
                        && !["NETFILTER_DROP", "NO_SOCKET"].contains(
                            string($0, "extensions", "value", "kernel_drop_reason") ?? "")
                }.map {
                    "\(node.name) \(string($0, "extensions", "value", "kernel_drop_reason") ?? "-") "
                        + "\(string($0, "interface", "name") ?? "-") \(string($0, "Summary") ?? "-") "
                        + "\(string($0, "IP", "source") ?? "-") > \(string($0, "IP", "destination") ?? "-")"
                }
            }
            #expect(kernelReasons == ["NETFILTER_DROP", "NO_SOCKET"], "other drops' flows: \(unexpected)")
            let hubbleReasons = deliberate.reduce(into: Set<String>()) {
                $0.formUnion(Self.dropReasons($1, "hubble_drop_total").keys)
            }
            #expect(hubbleReasons == ["POLICY_DENIED", "SOCKET_LOOKUP_FAILED"])
            let dropped = flows.values.joined().filter { string($0, "verdict") == "DROPPED" }
            let flowReasons = Set(dropped.compactMap { string($0, "extensions", "value", "kernel_drop_reason") })
            #expect(flowReasons == ["NETFILTER_DROP", "NO_SOCKET"])
            // Where the kernel freed them, by function (the offset varies with the build): the
            // policy where nftables evaluated the drop rule (nft_do_chain on this 6.18 kernel),
            // the refused connection in TCP's receive path.
            let functions = dropped.reduce(into: [String: Set<String>]()) { functions, flow in
                let location = string(flow, "extensions", "value", "kernel_drop_location") ?? "none"
                functions[string(flow, "extensions", "value", "kernel_drop_reason") ?? "-", default: []].insert(
                    String(location.prefix { $0 != "+" }))
            }
            #expect(functions == ["NETFILTER_DROP": ["nft_do_chain"], "NO_SOCKET": ["tcp_v4_rcv"]])
            // Each drop names the device it was freed on as the namespace it was freed in names
            // it: the policy's in the node's (the bridge, or the client's veth when routed), the
            // closed port's in the server pod's (its own interface, not the node's of that index).
            for (node, nodeFlows) in flows {
                for flow in nodeFlows where string(flow, "verdict") == "DROPPED" {
                    let reason = string(flow, "extensions", "value", "kernel_drop_reason")
                    let namespace = reason == "NO_SOCKET" ? ledger.netns : node
                    let index = try #require(Int(string(flow, "interface", "index") ?? ""), "a drop's device")
                    let device = try Self.interfaceName(index, in: namespace)
                    #expect(
                        string(flow, "interface", "name") == device,
                        "\(reason ?? "-") drop: device \(index) is \(device) in \(namespace)")
                }
            }

            // Healthy traffic only (the clients that cause drops stopped): 60 s without one drop.
            let troublemakers = ["untrusted", "checkout", "reporter"].flatMap { plan.pods(of: $0, in: "shop") }
            LabController.stopProcesses(inNamespaces: troublemakers.map(\.netns))
            _ = try settled(interval: 1) {
                try plan.nodes.map { Self.dropReasons(try LabFixture.scrape($0.netns), "hubble_drop_total") }
            }
            let before = try plan.nodes.map { try LabFixture.scrape($0.netns) }
            let start = Date()
            Thread.sleep(forTimeInterval: 60)
            let after = try plan.nodes.map { try LabFixture.scrape($0.netns) }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            for (node, (old, new)) in zip(plan.nodes, zip(before, after)) {
                // What the node's flows still hold, for a failure to say whether a drop had a flow.
                let recent = try Flows.flows(node.netns).map {
                    (flow: $0, time: string($0, "time").flatMap { formatter.date(from: $0) } ?? .distantPast)
                }
                let held =
                    "\(recent.count) flows kept since \(recent.map(\.time).min().map { "\($0.timeIntervalSince(start)) s" } ?? "-"), "
                    + "events lost \(new.value("hubble_lost_events_total") - old.value("hubble_lost_events_total"))"
                for metric in ["networkobservability_drop_count", "hubble_drop_total"] {
                    #expect(
                        Self.dropReasons(new, metric) == Self.dropReasons(old, metric),
                        "\(metric) on \(node.name) must not grow on healthy traffic (\(held))")
                }
                #expect(new.value("hubble_flows_processed_total") > old.value("hubble_flows_processed_total"))
                let late = recent.filter { string($0.flow, "verdict") == "DROPPED" && $0.time >= start }.map(\.flow)
                #expect(
                    late.isEmpty,
                    "DROPPED flows on \(node.name): \(late.map { "\(string($0, "Summary") ?? "-") \(string($0, "interface", "name") ?? "-")" })"
                )
            }
        }
    }

    @Test(
        "a Service backend that never answers: the client's SYNs still name it (no reply brings the translation); then none: Service backend not found"
    )
    func unansweredBackend() async throws {
        let config = try LabConfig(
            name: LabFixture.uniqueName("u"), nodeCount: 2, topology: .bridge, agentPath: OspreyBinary.agent.path)
        try await LabFixture.withLab(config) { plan, _ in
            let string = Flows.string
            let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
            let ledger = try #require(plan.pods(of: "ledger", in: "billing").first)
            let service = try #require(plan.services.first { $0.spec.name == "ledger" })
            // The backend's own firewall drops everything loadgen sends it over TCP: no SYN-ACK
            // or RST ever carries the node's translation back, so only the node's connection
            // table knows where the SYNs went (its entry confirmed as they left the node).
            for command in [
                ["nft", "add", "table", "inet", "ospblackhole"],
                [
                    "nft", "add", "chain", "inet", "ospblackhole", "input",
                    "{ type filter hook input priority 0; policy accept; }",
                ],
                [
                    "nft", "add", "rule", "inet", "ospblackhole", "input", "ip", "saddr", loadgen.ipv4, "tcp", "dport",
                    "0-65535", "drop",
                ],
            ] {
                try #require(try LabFixture.exec(ledger.netns, command).status == 0, "\(command)")
            }
            let reply = try LabFixture.curl(from: loadgen.netns, "http://\(service.clusterIP)/", timeout: 2)
            #expect(reply.status == 28, "the request times out")
            var syns: [[String: Any]] = []
            let address = "\(service.clusterIP):80"
            eventually(within: 10, poll: 0.5) {
                syns = ((try? Flows.flows(loadgen.node.netns)) ?? []).filter {
                    string($0, "source", "pod_name") == loadgen.name && string($0, "Summary") == "TCP Flags: SYN"
                        && string($0, "trace_observation_point") == "FROM_ENDPOINT"
                        && (string($0, "extensions", "value", "service_address") == address
                            || string($0, "IP", "destination") == service.clusterIP)
                }
                return syns.count >= 2  // the SYN and its retransmission a second later
            }
            let named = syns.map {
                "\(string($0, "IP", "destination") ?? "-") \(string($0, "destination", "pod_name") ?? "-")"
            }
            #expect(syns.count >= 2, "the SYN and its retransmission: \(named)")
            #expect(
                syns.allSatisfy {
                    string($0, "destination", "pod_name") == ledger.name
                        && string($0, "IP", "destination") == ledger.ipv4
                        && string($0, "destination_service", "name") == "ledger"
                        && string($0, "extensions", "value", "service_address") == address
                }, "every SYN names the ledger pod, keeping the ClusterIP: \(named)")

            // Then no backend at all: kube-proxy's rules refuse a new connection to a Service
            // without endpoints (ICMP port unreachable), netfilter dropping its SYN while it is
            // still addressed to the ClusterIP. Hubble says what Cilium says for it.
            _ = try LabController().scale(
                name: config.name, stateRoot: config.stateRoot, deployment: "ledger", namespace: "billing", replicas: 0)
            let refused = try LabFixture.curl(from: loadgen.netns, "http://\(service.clusterIP)/", timeout: 2)
            #expect(refused.status == 7, "the client is refused at once (curl: couldn't connect)")
            var rejected: [[String: Any]] = []
            eventually(within: 10, poll: 0.5) {
                rejected = ((try? Flows.flows(loadgen.node.netns)) ?? []).filter {
                    string($0, "source", "pod_name") == loadgen.name
                        && string($0, "IP", "destination") == service.clusterIP
                        && string($0, "Summary") == "TCP Flags: SYN"
                }
                return rejected.contains { string($0, "verdict") == "DROPPED" }
            }
            let drops = rejected.filter { string($0, "verdict") == "DROPPED" }
            let summary = rejected.map {
                "\(string($0, "verdict") ?? "-") \(string($0, "drop_reason_desc") ?? "-") \(string($0, "destination_service", "name") ?? "-") \(string($0, "destination", "pod_name") ?? "-")"
            }
            #expect(!drops.isEmpty, "\(summary)")
            #expect(
                drops.allSatisfy {
                    string($0, "drop_reason_desc") == "SERVICE_BACKEND_NOT_FOUND"
                        && string($0, "extensions", "value", "kernel_drop_reason") == "NETFILTER_DROP"
                        && string($0, "destination_service", "name") == "ledger"
                        && string($0, "destination", "pod_name") == nil
                }, "\(summary)")
            let departures = rejected.filter { string($0, "trace_observation_point") == "FROM_ENDPOINT" }
            #expect(
                !departures.isEmpty
                    && departures.allSatisfy {
                        string($0, "destination_service", "name") == "ledger"
                            && string($0, "destination", "pod_name") == nil
                    }, "the SYN names the Service, no pod: \(summary)")
            let metrics = try LabFixture.scrape(loadgen.node.netns)
            #expect(Self.dropReasons(metrics, "hubble_drop_total")["SERVICE_BACKEND_NOT_FOUND", default: 0] >= 1)
            #expect(
                Self.dropReasons(metrics, "networkobservability_drop_count")["NETFILTER_DROP", default: 0] >= 1,
                "Retina's metric keeps the kernel's reason")
        }
    }

    @Test(
        "a DNS query whose source port the node's NAT changed (its reply would have clashed with a Service connection's) is matched with its answer: latency on the response, never reported unanswered"
    )
    func dnsSourcePortChangedByNAT() async throws {
        let config = try LabConfig(
            name: LabFixture.uniqueName("n"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
        try await LabFixture.withLab(config) { plan, _ in
            let string = Flows.string
            let node = plan.nodes[0]
            LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
            let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
            let coredns = try #require(plan.pods(of: "coredns", in: "kube-system").first)
            let kubeDNS = try #require(plan.services.first { $0.spec.name == "kube-dns" })
            // Below the ephemeral range: no resolver of the workloads has used it.
            let port = UInt16.random(in: 20_000...29_999)
            // Through the Service: the node's connection table now holds the exchange
            // client:port → ClusterIP:53, whose reply comes from coredns:53 to client:port.
            let viaService = try DNSProbe.query(
                "ledger.billing.svc.cluster.local", server: kubeDNS.clusterIP, fromNamespace: client.netns,
                sourcePort: port)
            #expect(viaService?.rcode == 0, "the Service answers")
            // Straight to coredns from the same port: that reply tuple is taken, so the node's NAT
            // gives the query another source port on its way.
            let name = "frontend.shop.svc.cluster.local"
            let direct = try DNSProbe.query(
                name, server: coredns.ipv4, fromNamespace: client.netns, sourcePort: port)
            #expect(direct?.rcode == 0, "coredns answers")
            let table = try LabFixture.exec(node.netns, ["cat", "/proc/net/nf_conntrack"]).stdout
            let exchange = table.split(separator: "\n").first {
                $0.contains("src=\(client.ipv4) dst=\(coredns.ipv4) sport=\(port) dport=53 ")
            }
            let nodePort = exchange?.split(separator: " ").last { $0.hasPrefix("dport=") }?.dropFirst(6)
            #expect(
                nodePort != nil && nodePort != Substring(String(port)),
                "the premise: the node's NAT gave the query another port: \(exchange.map(String.init) ?? "no entry")")

            // An unanswered query is reported when the agent's DNS timeout has passed.
            Thread.sleep(forTimeInterval: FlowDecoder.defaultDNSTimeout + 2)
            // This exchange's records (the workloads asked the same name before they stopped): the
            // query under the node's port, the answer under the socket's.
            let ports = Set([String(port)] + (nodePort.map { [String($0)] } ?? []))
            let records = try Flows.flows(node.netns).filter { flow in
                string(flow, "l7", "dns", "query") == name + "."
                    && ["source_port", "destination_port"].contains {
                        ports.contains(string(flow, "l4", "UDP", $0) ?? "")
                    }
            }
            let summaries = records.map { string($0, "Summary") ?? "-" }
            #expect(records.contains { string($0, "l7", "type") == "REQUEST" }, "the query is reported: \(summaries)")
            #expect(!summaries.contains { $0.hasSuffix("(no response)") }, "\(summaries)")
            let responses = records.filter { string($0, "l7", "type") == "RESPONSE" }
            #expect(
                responses.count == 1 && (Int(string(responses[0], "l7", "latency_ns") ?? "") ?? 0) > 0,
                "the answer carries the query's latency: \(responses.map { string($0, "l7", "latency_ns") ?? "-" })")
        }
    }
}
