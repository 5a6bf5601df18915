import ClusterInventory
import Foundation
import Lab
import TestSupport
import Testing

/// The flows an operator looks for in each lab scenario, as the agent reports them.
extension AgentIntegration {
    @Suite("Flows on a lab")
    struct FlowLabTests {
        /// The newest flows of a node's agent (`flow` objects of `/flows` JSON lines).
        static func flows(_ node: String) throws -> [[String: Any]] {
            flows(
                inJSONLines: try LabFixture.exec(
                    node, ["curl", "-s", "-m", "5", "http://127.0.0.1:9965/flows?last=4095"]
                ).stdout)
        }

        /// The `flow` objects of JSON lines as Hubble's `GetFlowsResponse` in JSON (the agent's
        /// `/flows`, a flow log, `observe -o json`/`jsonpb`); other lines are skipped.
        static func flows(inJSONLines text: some StringProtocol) -> [[String: Any]] {
            text.split(separator: "\n").compactMap {
                ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["flow"] as? [String: Any]
            }
        }

        static func string(_ flow: [String: Any], _ path: String...) -> String? {
            var value: Any? = flow
            for key in path { value = (value as? [String: Any])?[key] }
            return value.map { "\($0)" }
        }

        /// Makes a connection from `client` to `server` at `ip` (one of the server's addresses)
        /// on a port of its own: true when the agent of the node namespace `node` reported it,
        /// and only where it enters a pod (monitor aggregation, both ends the node's pods).
        static func reportedOnlyEntering(
            from client: PlannedPod, to server: PlannedPod, at ip: String, node: String
        )
            -> Bool
        {
            let port = UInt16.random(in: 20_000...29_999)
            let listener = try? PodSockets.listenTCP(in: server.netns, port: port)
            defer { listener.map { _ = close($0) } }
            if let socket = try? PodSockets.connectTCP(from: client.netns, to: ip, port: port, timeout: 2) {
                close(socket)
            }
            Thread.sleep(forTimeInterval: 0.5)
            let flows = (try? Self.flows(node)) ?? []
            return !flows.contains {
                string($0, "l4", "TCP", "destination_port") == String(port)
                    && string($0, "trace_observation_point") == "FROM_ENDPOINT"
            } && flows.contains { string($0, "l4", "TCP", "destination_port") == String(port) }
        }

        /// Gives `pod` a second IPv4 address, one the lab gave no pod (its own with the last
        /// octet 200: lab pods count up from 2), as `ip addr add` in the pod would; returns it.
        static func addSpareAddress(to pod: PlannedPod) throws -> String {
            let spare = pod.ipv4.split(separator: ".").dropLast().joined(separator: ".") + ".200"
            let added = try LabFixture.exec(
                pod.netns, ["ip", "addr", "add", spare + "/24", "dev", LabNames.podInterface])
            #expect(added.status == 0, "\(spare) added to \(pod.name)")
            return spare
        }

        /// Whether every connection among these SYN flows (by client port) has one with trace
        /// reason NEW: the SYN that opened it.
        static func openedByNew(_ syns: [[String: Any]]) -> Bool {
            let ports = Set(syns.compactMap { string($0, "l4", "TCP", "source_port") })
            let opened = Set(
                syns.filter { string($0, "trace_reason") == "NEW" }.compactMap {
                    string($0, "l4", "TCP", "source_port")
                })
            return !ports.isEmpty && ports == opened
        }

        @Test(
            "SYN, SYN-ACK, DNS (answered, NXDOMAIN, unanswered), policy drop, RST and service VIPs, on both nodes",
            arguments: Topology.allCases)
        func scenarios(topology: Topology) async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName(topology == .bridge ? "f" : "g"), nodeCount: 2, topology: topology,
                agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let ledger = try #require(plan.pods(of: "ledger", in: "billing").first)
                let untrusted = try #require(plan.pods(of: "untrusted", in: "shop").first)
                let reporter = try #require(plan.pods(of: "reporter", in: "shop").first)
                #expect(loadgen.node != ledger.node)
                var flows: [String: [[String: Any]]] = [:]
                func matching(_ node: String, _ test: ([String: Any]) -> Bool) -> [[String: Any]] {
                    (flows[node] ?? []).filter(test)
                }
                func isPod(_ flow: [String: Any], _ side: String, _ pod: PlannedPod) -> Bool {
                    Self.string(flow, side, "pod_name") == pod.name
                        && Self.string(flow, side, "namespace") == pod.namespace
                }
                // Clients loop once a second and unanswered queries are reported after 5 s: wait for all of it.
                let deadline = Date().addingTimeInterval(15)
                var unanswered: [[String: Any]] = []
                repeat {
                    Thread.sleep(forTimeInterval: 1)
                    for node in plan.nodes { flows[node.netns] = try Self.flows(node.netns) }
                    unanswered = matching(reporter.node.netns) {
                        (Self.string($0, "Summary") ?? "").hasSuffix("(no response)")
                    }
                } while unanswered.isEmpty && Date() < deadline

                // Cross-node SYN: leaving the client on its node (towards the service VIP, before
                // kube-proxy's DNAT), entering the server on the other.
                let synOut = matching(loadgen.node.netns) {
                    isPod($0, "source", loadgen) && Self.string($0, "Summary") == "TCP Flags: SYN"
                        && Self.string($0, "destination_service", "name") == "ledger"
                        && Self.string($0, "trace_observation_point") == "FROM_ENDPOINT"
                }
                #expect(!synOut.isEmpty, "SYN from-endpoint on \(loadgen.node.name), attributed to the ledger service")
                let outgoing = synOut.filter {
                    Self.string($0, "is_reply") == "0" && Self.string($0, "traffic_direction") == "EGRESS"
                }
                #expect(outgoing.count == synOut.count)
                // Each connection's first SYN opened it at this observation point: Cilium's trace
                // reason NEW (a SYN sent again is ESTABLISHED, as in Cilium's table).
                #expect(Self.openedByNew(synOut), "every connection's SYN leaving the client is trace_reason NEW")
                // loadgen looked the service up first: its flows name what it asked for, as Hubble's do.
                #expect(
                    synOut.contains {
                        ($0["destination_names"] as? [String]) == ["ledger.billing.svc.cluster.local"]
                    }, "destination_names from loadgen's own DNS answer")
                let synIn = matching(ledger.node.netns) {
                    isPod($0, "source", loadgen) && isPod($0, "destination", ledger)
                        && Self.string($0, "Summary") == "TCP Flags: SYN"
                        && Self.string($0, "trace_observation_point") == "TO_ENDPOINT"
                }
                #expect(!synIn.isEmpty, "the same connection's SYN entering the ledger pod on \(ledger.node.name)")
                let mac = Self.string(synIn.first ?? [:], "ethernet", "destination") ?? ""
                #expect(
                    mac.wholeMatch(of: /[0-9a-f]{2}(:[0-9a-f]{2}){5}/) != nil, "Ethernet addresses where it was seen")
                let synAck = matching(ledger.node.netns) {
                    isPod($0, "source", ledger) && isPod($0, "destination", loadgen)
                        && Self.string($0, "Summary") == "TCP Flags: SYN, ACK"
                }
                let replies = synAck.filter { Self.string($0, "is_reply") == "1" }
                #expect(!replies.isEmpty, "the SYN-ACK is a reply")
                #expect(replies.allSatisfy { Self.string($0, "trace_reason") == "REPLY" })
                // traffic_direction is the connection's at the pod, as in Cilium: ledger's
                // connection is an ingress one, both ways; loadgen's an egress one, both ways.
                #expect(synIn.allSatisfy { Self.string($0, "traffic_direction") == "INGRESS" })
                #expect(
                    replies.allSatisfy { Self.string($0, "traffic_direction") == "INGRESS" },
                    "the SYN-ACK leaving the server belongs to its ingress connection")
                let synAckIn = matching(loadgen.node.netns) {
                    isPod($0, "destination", loadgen) && Self.string($0, "Summary") == "TCP Flags: SYN, ACK"
                        && Self.string($0, "trace_observation_point") == "TO_ENDPOINT"
                }
                #expect(!synAckIn.isEmpty, "the SYN-ACK entering the client")
                #expect(
                    synAckIn.allSatisfy {
                        Self.string($0, "traffic_direction") == "EGRESS" && Self.string($0, "is_reply") == "1"
                    }, "the SYN-ACK entering the client belongs to its egress connection")
                #expect(Self.openedByNew(synIn), "every connection's SYN entering the server is trace_reason NEW")
                let fins = matching(ledger.node.netns) {
                    isPod($0, "source", loadgen) && isPod($0, "destination", ledger)
                        && (Self.string($0, "Summary") ?? "").contains("FIN")
                }
                #expect(fins.contains { Self.string($0, "trace_reason") == "ESTABLISHED" }, "the client's FIN")
                let timed = synAck.filter {
                    (Double(Self.string($0, "extensions", "value", "tcp_handshake_latency_ns") ?? "") ?? 0) > 0
                }
                #expect(!timed.isEmpty, "with the handshake round trip")
                #expect(synAck.allSatisfy { $0["l7"] == nil }, "an L3/L4 flow carries no l7")

                // DNS through the kube-dns VIP: query, answer with latency, NXDOMAIN.
                let answered = matching(loadgen.node.netns) {
                    isPod($0, "destination", loadgen)
                        && Self.string($0, "l7", "dns", "query") == "frontend.shop.svc.cluster.local."
                        && Self.string($0, "l7", "type") == "RESPONSE"
                        && ((($0["l7"] as? [String: Any])?["dns"] as? [String: Any])?["qtypes"] as? [String]) == ["A"]
                }
                let answer = try #require(answered.first, "an answered A query for frontend")
                // NOERROR is rcode 0, which protobuf's JSON mapping leaves out (as hubble -o jsonpb does).
                #expect(Self.string(answer, "l7", "dns", "rcode") == nil)
                #expect(Self.string(answer, "Summary")?.hasPrefix("DNS Answer \"") == true)
                let l7 = answer["l7"] as? [String: Any]
                let ips = (l7?["dns"] as? [String: Any])?["ips"] as? [String]
                #expect(ips == [plan.services[1].clusterIP])
                let latency = Int(Self.string(answer, "l7", "latency_ns") ?? "") ?? 0
                #expect(latency > 0)
                #expect(Self.string(answer, "source_service", "name") == "kube-dns")
                let queries = matching(loadgen.node.netns) {
                    isPod($0, "source", loadgen) && Self.string($0, "l7", "type") == "REQUEST"
                        && Self.string($0, "Summary") == "DNS Query frontend.shop.svc.cluster.local. A"
                }
                #expect(!queries.isEmpty)
                // One L7 record per DNS message, on the querier's side; wherever coredns runs, its
                // own veth's copies of loadgen's queries and answers are traces of their packets.
                // A record is no trace event: no observation point, no sub-type (Cilium's L7 flows).
                let coredns = try #require(plan.pods(of: "coredns", in: "kube-system").first)
                let everywhere = Array(flows.values.joined())
                let dnsRecords = everywhere.filter {
                    (isPod($0, "source", loadgen) || isPod($0, "destination", loadgen)) && $0["l7"] != nil
                        && !(Self.string($0, "Summary") ?? "").hasSuffix("(no response)")
                }
                let loadgenVeth = LabNames.hostInterface(namespace: loadgen.namespace, pod: loadgen.name)
                #expect(!dnsRecords.isEmpty)
                #expect(
                    dnsRecords.allSatisfy {
                        Self.string($0, "interface", "name") == loadgenVeth
                            && Self.string($0, "traffic_direction")
                                == (Self.string($0, "l7", "type") == "RESPONSE" ? "INGRESS" : "EGRESS")
                    }, "loadgen's DNS messages as L7 flows only at loadgen's veth")
                #expect(
                    dnsRecords.allSatisfy {
                        Self.string($0, "trace_observation_point") == nil && Self.string($0, "trace_reason") == nil
                            && Self.string($0, "event_type", "type") == "129"
                            && Self.string($0, "event_type", "sub_type") == nil
                    }, "L7 records are no trace events")
                let atServer = everywhere.filter {
                    (isPod($0, "source", loadgen) && isPod($0, "destination", coredns)
                        && Self.string($0, "trace_observation_point") == "TO_ENDPOINT")
                        || (isPod($0, "source", coredns) && isPod($0, "destination", loadgen)
                            && Self.string($0, "trace_observation_point") == "FROM_ENDPOINT")
                }
                // (Through kube-dns, coredns's answers are reported where they enter loadgen, and
                // where they leave coredns only across nodes or at --monitor-aggregation none.)
                #expect(!atServer.isEmpty, "coredns's veth saw loadgen's queries")
                #expect(atServer.allSatisfy { $0["l7"] == nil && Self.string($0, "Summary") == "UDP" })
                let nx = matching(loadgen.node.netns) {
                    Self.string($0, "l7", "dns", "query") == "catalog.shop.svc.cluster.local."
                        && Self.string($0, "l7", "dns", "rcode") == "3"
                }
                let nxSummaries = nx.compactMap { Self.string($0, "Summary") }
                #expect(
                    nxSummaries.contains(
                        "DNS Answer RCode: Non-Existent Domain TTL: 0 (Query catalog.shop.svc.cluster.local. A)"))
                // The reporter's queries to a server that never answers.
                let reporterUnanswered = unanswered.filter {
                    isPod($0, "source", reporter) && Self.string($0, "IP", "destination") == AddressPlan.unreachableDNS
                }
                #expect(!reporterUnanswered.isEmpty)

                // The policy drop: DROPPED, Hubble's reason and the kernel's.
                let drops = matching(untrusted.node.netns) {
                    isPod($0, "source", untrusted) && Self.string($0, "verdict") == "DROPPED"
                }
                let drop = try #require(drops.first, "the untrusted client's SYNs are dropped")
                #expect(Self.string(drop, "drop_reason_desc") == "POLICY_DENIED")
                #expect(Self.string(drop, "extensions", "value", "kernel_drop_reason") == "NETFILTER_DROP")
                #expect(Self.string(drop, "Summary") == "TCP Flags: SYN")
                #expect(Self.string(drop, "destination", "namespace") == "shop")

                // The closed port: the server's kernel answers the checkout client with a RST.
                let checkout = try #require(plan.pods(of: "checkout", in: "shop").first)
                let rst = (flows[checkout.node.netns] ?? []) + (flows[ledger.node.netns] ?? [])
                let resets = rst.filter {
                    isPod($0, "destination", checkout) && Self.string($0, "l4", "TCP", "source_port") == "8080"
                        && (Self.string($0, "Summary") ?? "").contains("RST") && Self.string($0, "is_reply") == "1"
                }
                #expect(!resets.isEmpty)

                // The same flows counted by the Hubble metrics.
                let metrics = try LabFixture.scrape(untrusted.node.netns)
                #expect(
                    metrics.value("hubble_drop_total", ["reason": "POLICY_DENIED", "source": untrusted.qualifiedName])
                        > 0)
                let clientMetrics = try LabFixture.scrape(loadgen.node.netns)
                #expect(
                    clientMetrics.value(
                        "hubble_dns_responses_total",
                        ["rcode": "Non-Existent Domain", "destination": loadgen.qualifiedName]) > 0)
                #expect(
                    clientMetrics.value("hubble_dns_queries_total", ["qtypes": "A", "source": loadgen.qualifiedName])
                        > 0)
                #expect(
                    clientMetrics.value(
                        "hubble_flows_processed_total",
                        ["type": "Trace", "subtype": "from-endpoint", "verdict": "FORWARDED"]) > 0)
                #expect(
                    clientMetrics.value(
                        "hubble_tcp_flags_total", ["flag": "SYN", "family": "IPv4", "source": loadgen.qualifiedName])
                        > 0)
                let reporterMetrics = try LabFixture.scrape(reporter.node.netns)
                #expect(
                    reporterMetrics.value("osprey_dns_queries_unanswered_total", ["source": reporter.qualifiedName]) > 0
                )
                #expect(reporterMetrics.value("hubble_lost_events_total") == 0)
            }
        }

        /// A 2-node lab whose agents report active connections once a second, with loadgen as
        /// the client and ledger, on the other node, as the server.
        static func withReportingLab(
            _ prefix: Character, _ body: (LabPlan, _ client: PlannedPod, _ server: PlannedPod) throws -> Void
        ) async throws {
            var config = try LabConfig(
                name: LabFixture.uniqueName(prefix), nodeCount: 2, topology: .bridge,
                agentPath: OspreyBinary.agent.path)
            config.agentArguments = ["--flow-report-interval", "1"]
            try await LabFixture.withLab(config) { plan, _ in
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "ledger", in: "billing").first)
                #expect(client.node != server.node)
                try body(plan, client, server)
            }
        }

        @Test(
            "a long connection's directions are each reported again once per --flow-report-interval while they carry packets, not per packet"
        )
        func periodicReports() async throws {
            try await Self.withReportingLab("p") { plan, client, server in
                let socket = try #require(
                    try PodSockets.connectTCP(from: client.netns, to: server.ipv4, port: 80, timeout: 2))
                defer { close(socket) }
                var local = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                _ = withUnsafeMutablePointer(to: &local) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
                }
                let port = String(UInt16(bigEndian: local.sin_port))
                // A slow request: a byte every 50 ms for 4.2 s (nginx waits for the rest of it),
                // each a data packet and an ACK through the client's veth.
                for byte in Array("GET /".utf8) + Array(repeating: UInt8(ascii: "a"), count: 79) {
                    var byte = byte
                    #expect(write(socket, &byte, 1) == 1)
                    Thread.sleep(forTimeInterval: 0.05)
                }
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                // The connection's flows at the client's veth other than its handshake and end, in
                // one direction: the client's bytes ("source_port") or the server's ACKs.
                func reports(_ side: String) -> [Date] {
                    ((try? Self.flows(client.node.netns)) ?? []).filter { flow in
                        Self.string(flow, "l4", "TCP", side) == port
                            && ["SYN", "FIN", "RST"].allSatisfy { Self.string(flow, "l4", "TCP", "flags", $0) == nil }
                    }.compactMap { Self.string($0, "time").flatMap { formatter.date(from: $0) } }.sorted()
                }
                eventually(poll: 0.5) { reports("source_port").count >= 3 && reports("destination_port").count >= 3 }
                for side in ["source_port", "destination_port"] {
                    let times = reports(side)
                    #expect(
                        (3...6).contains(times.count), "\(side): about one a second over 4.2 s, not 84: \(times.count)")
                    let gaps = zip(times, times.dropFirst()).map { $1.timeIntervalSince($0) }
                    #expect(gaps.allSatisfy { $0 >= 0.9 }, "\(side): no sooner than the interval: \(gaps)")
                }
            }
        }

        @Test(
            "an upload, a pause, then a byte back: the upload is counted once, as the client's, in the pod-level metrics, and the report the server's byte makes carries only what the server sent"
        )
        func directionsCountApart() async throws {
            // Reports once a second. The upload takes well under a second; the server's byte comes
            // after an interval, so its packet makes a periodic report at the server's veth. With
            // one count for both directions, that report carried the upload as the server's.
            try await Self.withReportingLab("d") { plan, client, server in
                // The lab's pod-level metrics are in remote context: a series per source and
                // destination, each packet counted once in the cluster, at its sender's veth.
                func bytes(_ source: PlannedPod, _ destination: PlannedPod) -> Double {
                    plan.nodes.reduce(0) { sum, node in
                        sum
                            + ((try? LabFixture.scrape(node.netns)) ?? ScrapedMetrics(text: "")).value(
                                "networkobservability_adv_forward_bytes",
                                ["source_podname": source.name, "destination_podname": destination.name])
                    }
                }
                let before = (upload: bytes(client, server), back: bytes(server, client))
                let listener = try PodSockets.listenTCP(in: server.netns, port: 7070)
                defer { close(listener) }
                let clientSocket = try #require(
                    try PodSockets.connectTCP(from: client.netns, to: server.ipv4, port: 7070, timeout: 2))
                defer { close(clientSocket) }
                let serverSocket = try #require(PodSockets.accept(listener, timeout: 2))
                defer { close(serverSocket) }
                let upload = 2_000_000
                #expect(PodSockets.transfer(upload, from: clientSocket, to: serverSocket), "the upload went through")
                Thread.sleep(forTimeInterval: 1.5)
                #expect(PodSockets.transfer(1, from: serverSocket, to: clientSocket), "the byte went back")
                Thread.sleep(forTimeInterval: 0.2)
                var (sent, back) = (0.0, 0.0)
                // The flush reports what the client sent last; headers count too: at least the upload.
                eventually(within: 15, poll: 0.5) {
                    sent = bytes(client, server) - before.upload
                    back = bytes(server, client) - before.back
                    return sent >= Double(upload) && back > 0
                }
                #expect(
                    sent >= Double(upload) && sent < Double(upload) * 1.1, "the upload, counted once: \(sent)")
                // The server's ACKs and its byte: a few per cent of the upload at most.
                #expect(back > 0 && back < Double(upload) * 0.05, "what the server sent: \(back)")
            }
        }

        @Test(
            "a burst of UDP datagrams, and one of pings, and then silence: every datagram, echo request and echo reply is counted in the pod-level metrics, the ones after the first of each direction by the flush of silent connections"
        )
        func silentConnectionsFlushed() async throws {
            try await Self.withReportingLab("s") { plan, client, server in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                func packets(_ from: PlannedPod, _ to: PlannedPod) -> Double {
                    plan.nodes.reduce(0) { sum, node in
                        sum
                            + ((try? LabFixture.scrape(node.netns)) ?? ScrapedMetrics(text: "")).value(
                                "networkobservability_adv_forward_count",
                                ["source_podname": from.name, "destination_podname": to.name])
                    }
                }
                func counts() -> [Double] { [packets(client, server), packets(server, client)] }
                /// What `send` adds to both directions' counts once no more comes (the counts
                /// settled before it).
                func added(by expected: [Double], _ send: () throws -> Void) rethrows -> [Double] {
                    let before = counts()
                    try send()
                    var counted: [Double] = []
                    eventually(within: 15, poll: 0.5) {
                        counted = zip(counts(), before).map { $0 - $1 }
                        return zip(counted, expected).allSatisfy { $0 >= $1 }
                    }
                    Thread.sleep(forTimeInterval: 2.5)  // and no more comes: each counted once
                    return zip(counts(), before).map { $0 - $1 }
                }
                // The stopped clients' last packets are counted before the baseline is taken.
                _ = settled(interval: 2.5) { counts() }
                // 300 datagrams in well under the report interval (1 s), then nothing: only the
                // first is reported by a packet of its own (the connection's start).
                let datagrams = try added(by: [300, 0]) {
                    try PodSockets.sendUDP(from: client.netns, to: server.ipv4, port: 9, count: 300, payload: 100)
                }
                #expect(datagrams[0] == 300, "the datagrams counted at the sender's veth: \(datagrams)")
                // 40 echo requests and their replies: only the first of each direction is
                // reported by a packet of its own (the request the ping's start, the reply the
                // first of its direction), the others by the flush.
                let pings = try added(by: [40, 40]) {
                    try PodSockets.ping(from: client.netns, to: server.ipv4, count: 40)
                }
                #expect(pings == [40, 40], "echo requests and replies counted at their senders' veths: \(pings)")
            }
        }

        @Test(
            "between two pods of one node, at the default monitor aggregation, each packet is reported once, where it enters a pod: no from-endpoint flow between them, every connection's start and flags still there, pod-level counts exact, DNS records, latency and counts at the querier's; through a Service the client's side is reported both ways"
        )
        func onlyWhereItEnters() async throws {
            var config = try LabConfig(
                name: LabFixture.uniqueName("a"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            // Connections' last packets reported within a second or two (the flush): the counts settle.
            config.agentArguments = ["--flow-report-interval", "1"]
            try await LabFixture.withLab(config, kubernetes: false) { plan, _ in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "frontend", in: "shop").first)
                let coredns = try #require(plan.pods(of: "coredns", in: "kube-system").first)
                let frontend = try #require(plan.services.first { $0.spec.name == "frontend" })
                let node = client.node.netns
                func isPod(_ flow: [String: Any], _ side: String, _ pod: PlannedPod) -> Bool {
                    Self.string(flow, side, "pod_name") == pod.name
                }
                func between(_ flows: [[String: Any]], _ a: PlannedPod, _ b: PlannedPod) -> [[String: Any]] {
                    flows.filter {
                        (isPod($0, "source", a) && isPod($0, "destination", b))
                            || (isPod($0, "source", b) && isPod($0, "destination", a))
                    }
                }
                func since(_ start: Date) -> [[String: Any]] {
                    ((try? Self.flows(node)) ?? []).filter {
                        (Self.string($0, "time").flatMap(Self.date) ?? .distantPast) >= start.addingTimeInterval(-0.01)
                    }
                }
                func forwarded(_ from: PlannedPod, _ to: PlannedPod) -> Double {
                    ((try? LabFixture.scrape(node)) ?? ScrapedMetrics(text: "")).value(
                        "networkobservability_adv_forward_count",
                        ["source_podname": from.name, "destination_podname": to.name])
                }
                func reportedOnlyEntering(_ ip: String) -> Bool {
                    Self.reportedOnlyEntering(from: client, to: server, at: ip, node: node)
                }
                // Until the agent has read the pods' addresses (a pod's is set after its veth).
                #expect(
                    eventually(within: 20, poll: 0.5) { reportedOnlyEntering(server.ipv4) },
                    "the agent reports connections between the node's pods only where they enter")

                // Three connections straight to the server pod.
                let start = Date()
                for _ in 0..<3 {
                    if let socket = try PodSockets.connectTCP(from: client.netns, to: server.ipv4, port: 80, timeout: 2)
                    {
                        close(socket)
                    }
                }
                var direct: [[String: Any]] = []
                eventually(within: 15, poll: 0.5) {
                    direct = between(since(start), client, server)
                    return direct.filter { Self.string($0, "Summary") == "TCP Flags: SYN" }.count >= 3
                        && direct.filter { Self.string($0, "Summary") == "TCP Flags: SYN, ACK" }.count >= 3
                }
                let points = Set(direct.compactMap { Self.string($0, "trace_observation_point") })
                #expect(points == ["TO_ENDPOINT"], "reported only where it enters a pod: \(points)")
                let syns = direct.filter { Self.string($0, "Summary") == "TCP Flags: SYN" }
                #expect(syns.count == 3, "each SYN once, entering the server")
                #expect(
                    syns.allSatisfy { Self.string($0, "trace_reason") == "NEW" && Self.string($0, "is_reply") == "0" })
                #expect(direct.filter { Self.string($0, "Summary") == "TCP Flags: SYN, ACK" }.count == 3)
                #expect(direct.filter { (Self.string($0, "Summary") ?? "").contains("FIN") }.count >= 6, "both FINs")
                // The pod-level counts: each packet once, 50 datagrams and 20 echo requests one
                // way, the echo replies and the port's ICMP errors (at most one a datagram) back.
                let settledCounts = settled(interval: 2.5) { [forwarded(client, server), forwarded(server, client)] }
                try PodSockets.sendUDP(from: client.netns, to: server.ipv4, port: 9, count: 50, payload: 100)
                try PodSockets.ping(from: client.netns, to: server.ipv4, count: 20)
                var counted: [Double] = []
                eventually(within: 15, poll: 0.5) {
                    counted = zip([forwarded(client, server), forwarded(server, client)], settledCounts).map { $0 - $1 }
                    return counted[0] >= 70 && counted[1] >= 20
                }
                Thread.sleep(forTimeInterval: 2.5)  // and no more comes
                counted = zip([forwarded(client, server), forwarded(server, client)], settledCounts).map { $0 - $1 }
                #expect(counted[0] == 70, "the client's packets once: \(counted)")
                #expect(counted[1] >= 20 && counted[1] <= 70, "the server's packets once: \(counted)")

                // Through the Service: the client's interface reports both ways (the request
                // leaving towards the ClusterIP, the answer entering from it), the server's only
                // what enters its pod.
                let socket = try #require(
                    try PodSockets.connectTCP(from: client.netns, to: frontend.clusterIP, port: 80, timeout: 2))
                var local = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                _ = withUnsafeMutablePointer(to: &local) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
                }
                close(socket)
                let clientPort = String(UInt16(bigEndian: local.sin_port))
                var service: [[String: Any]] = []
                eventually(within: 15, poll: 0.5) {
                    service = ((try? Self.flows(node)) ?? []).filter {
                        Self.string($0, "l4", "TCP", "source_port") == clientPort
                            || Self.string($0, "l4", "TCP", "destination_port") == clientPort
                    }
                    return service.contains {
                        Self.string($0, "Summary") == "TCP Flags: SYN, ACK"
                            && Self.string($0, "trace_observation_point") == "TO_ENDPOINT"
                    }
                }
                let serviceSYNs = service.filter { Self.string($0, "Summary") == "TCP Flags: SYN" }
                #expect(
                    Set(serviceSYNs.compactMap { Self.string($0, "trace_observation_point") })
                        == ["FROM_ENDPOINT", "TO_ENDPOINT"],
                    "the SYN leaving the client and entering the backend: \(service.map { "\(Self.string($0, "trace_observation_point") ?? "-") \(Self.string($0, "Summary") ?? "-") \(Self.string($0, "IP", "destination") ?? "-")" })"
                )
                #expect(
                    serviceSYNs.contains {
                        Self.string($0, "trace_observation_point") == "FROM_ENDPOINT"
                            && Self.string($0, "destination_service", "name") == "frontend"
                    }, "the client's SYN names the Service")
                let synAcks = service.filter { Self.string($0, "Summary") == "TCP Flags: SYN, ACK" }
                #expect(
                    synAcks.count == 1 && synAcks.allSatisfy { isPod($0, "destination", client) },
                    "the SYN-ACK only where it enters the client")

                // DNS straight to the coredns pod: the query's record where it enters coredns,
                // the answer's where it enters the client, with the latency; counted as the
                // client's query; never reported unanswered.
                let name = "osp-aggregation.shop.svc.cluster.local"
                let metricsBefore = try LabFixture.scrape(node)
                #expect(try DNSProbe.query(name, server: coredns.ipv4, fromNamespace: client.netns) != nil)
                var records: [[String: Any]] = []
                eventually(within: 15, poll: 0.5) {
                    records = ((try? Self.flows(node)) ?? []).filter {
                        Self.string($0, "l7", "dns", "query") == name + "."
                    }
                    return records.contains { Self.string($0, "l7", "type") == "RESPONSE" }
                        && records.contains { Self.string($0, "l7", "type") == "REQUEST" }
                }
                let requests = records.filter { Self.string($0, "l7", "type") == "REQUEST" }
                let responses = records.filter { Self.string($0, "l7", "type") == "RESPONSE" }
                #expect(requests.count == 1 && responses.count == 1, "one record per message: \(records.count)")
                #expect(requests.allSatisfy { isPod($0, "source", client) && isPod($0, "destination", coredns) })
                #expect(responses.allSatisfy { Int(Self.string($0, "l7", "latency_ns") ?? "0") ?? 0 > 0 })
                let metricsAfter = try LabFixture.scrape(node)
                let queries = ["qtypes": "A", "source": client.qualifiedName]
                #expect(
                    metricsAfter.value("hubble_dns_queries_total", queries)
                        - metricsBefore.value("hubble_dns_queries_total", queries) == 1)
                Thread.sleep(forTimeInterval: 6)  // past the DNS timeout (5 s)
                #expect(
                    !((try? Self.flows(node)) ?? []).contains {
                        Self.string($0, "l7", "dns", "query") == name + "."
                            && (Self.string($0, "Summary") ?? "").hasSuffix("(no response)")
                    }, "an answered query is not reported unanswered at the server's side")

                // An address the server pod gets while the agent runs, with nothing changing in
                // the node's namespace (as a bridge CNI sets a new pod's address after its
                // veth): the agent reads it from the pods' address events (it no longer reads
                // addresses on a timer when it has them), and a connection to it is reported
                // only where it enters.
                let extra = try Self.addSpareAddress(to: server)
                #expect(
                    eventually(within: 15, poll: 0.5) { reportedOnlyEntering(extra) },
                    "a pod's address added while the agent runs is read from its address events")
            }
        }

        @Test(
            "without CAP_NET_BROADCAST the agent says once that it reads the pods' addresses every 10 s, and does: a pod's new address is read by that pass"
        )
        func podAddressesWithoutBroadcast() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("b"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config, kubernetes: false) { plan, _ in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let node = plan.nodes[0]
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "frontend", in: "shop").first)
                try #require(LabFixture.stopAgent(config, node: node.name))
                let launch = LabFixture.agentLaunch(plan, node: node)
                // Root without CAP_NET_BROADCAST: neither inherited nor in the bounding set.
                try LabFixture.startAgent(
                    plan, node: node, prefix: ["setpriv", "--inh-caps=-net_broadcast", "--bounding-set=-net_broadcast"])
                let sentence = "Pod addresses are read every 10 s, not as they change"
                func log() -> String { (try? String(contentsOfFile: launch.logPath, encoding: .utf8)) ?? "" }
                #expect(eventually(within: 20) { log().contains(sentence) }, "\(log())")
                #expect(
                    eventually(within: 20, poll: 0.5) {
                        Self.reportedOnlyEntering(from: client, to: server, at: server.ipv4, node: node.netns)
                    }, "the addresses it found at start")
                let extra = try Self.addSpareAddress(to: server)
                #expect(
                    eventually(within: 30, poll: 0.5) {
                        Self.reportedOnlyEntering(from: client, to: server, at: extra, node: node.netns)
                    }, "an address added later is read by the periodic pass")
                #expect(log().components(separatedBy: sentence).count == 2, "said once")
            }
        }

        /// The time of a flow's `time` (RFC 3339 with fractional seconds).
        static func date(_ text: String) -> Date? {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: text)
        }

        @Test("the Hubble metrics count exactly the flows the agent reports over the same interval")
        func metricsAgreeWithFlows() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("m"), nodeCount: 2, agentPath: OspreyBinary.agent.path)
            // The standalone metadata source: the agents read the lab's inventory file.
            try await LabFixture.withLab(config, kubernetes: false) { plan, _ in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "ledger", in: "billing").first)
                let node = client.node.netns
                func fromClient(_ metrics: ScrapedMetrics) -> Double {
                    metrics.value(
                        "hubble_flows_processed_total", ["subtype": "from-endpoint", "source": client.qualifiedName])
                }
                func synsFromClient(_ metrics: ScrapedMetrics) -> Double {
                    metrics.value("hubble_tcp_flags_total", ["flag": "SYN", "source": client.qualifiedName])
                }
                // The stopped clients' last flows are counted before the baseline is taken.
                _ = try settled { fromClient(try LabFixture.scrape(node)) }
                let before = try LabFixture.scrape(node)
                let start = Date()
                for _ in 0..<6 {
                    if let socket = try PodSockets.connectTCP(from: client.netns, to: server.ipv4, port: 80, timeout: 2)
                    {
                        close(socket)
                    }
                }
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                var after = before
                var flows: [[String: Any]] = []
                // Until the six SYNs are both flows and counted (then compare exactly).
                eventually {
                    after = (try? LabFixture.scrape(node)) ?? before
                    flows = ((try? Self.flows(node)) ?? []).filter {
                        guard let time = Self.string($0, "time").flatMap({ formatter.date(from: $0) }) else {
                            return false
                        }
                        return time >= start.addingTimeInterval(-0.01)
                            && Self.string($0, "source", "pod_name") == client.name
                            && Self.string($0, "trace_observation_point") == "FROM_ENDPOINT"
                    }
                    return synsFromClient(after) - synsFromClient(before) >= 6
                        && fromClient(after) - fromClient(before) == Double(flows.count)
                }
                #expect(flows.count >= 6 * 2, "each connection: SYN and FIN leave the client at least")
                #expect(fromClient(after) - fromClient(before) == Double(flows.count))
                let syns = flows.filter { Self.string($0, "Summary") == "TCP Flags: SYN" }
                #expect(syns.count == 6)
                #expect(synsFromClient(after) - synsFromClient(before) == Double(syns.count))
            }
        }
    }
}
