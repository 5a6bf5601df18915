import ClusterInventory
import Datapath
import Foundation
import Lab
import TestSupport
import Testing

/// The eBPF tests count packets exactly, so they run one at a time: concurrent labs starting on
/// two cores can delay a test's thread past TCP's retransmission timer and add packets.
@Suite("osprey-agent on labs (root, eBPF)", .serialized)
enum AgentIntegration {}

/// osprey-agent on every node of a real lab: the node-level metrics an operator charts must
/// count exactly what the kernel did.
extension AgentIntegration {
    @Suite("Node metrics on a lab")
    struct NodeMetricsLabTests {
        static func config(_ tag: Character, _ topology: Topology = .bridge) throws -> LabConfig {
            try LabConfig(
                name: LabFixture.uniqueName(tag), nodeCount: 2, topology: topology, agentPath: OspreyBinary.agent.path)
        }

        /// Uplink packets a node may see besides the test's own in the measuring window (neighbour
        /// discovery and ARP refreshes).
        static let background = 10.0

        @Test("UDP across nodes: uplink counts exact, NO_SOCKET drops exact", arguments: Topology.allCases)
        func udpCountsAreExact(topology: Topology) async throws {
            try await LabFixture.withLab(Self.config(topology == .bridge ? "x" : "y", topology)) { plan, _ in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let sender = try #require(plan.pods.first { $0.node.index == 1 && $0.spec.name == "frontend" })
                let receiver = try #require(plan.pods.first { $0.node.index == 2 && $0.spec.name == "ledger" })
                _ = try settled {
                    try LabFixture.scrape(sender.node.netns).value(
                        "networkobservability_forward_count", ["direction": "egress"])
                }
                let (count, payload) = (300, 100)
                let frame = Double(14 + 20 + 8 + payload)  // Ethernet + IPv4 + UDP headers + payload

                let before = (try LabFixture.scrape(sender.node.netns), try LabFixture.scrape(receiver.node.netns))
                // Port 9 has no listener on the ledger pod: every datagram dies there as NO_SOCKET.
                try PodSockets.sendUDP(from: sender.netns, to: receiver.ipv4, port: 9, count: count, payload: payload)
                var after = before
                eventually {
                    after = (
                        (try? LabFixture.scrape(sender.node.netns)) ?? before.0,
                        (try? LabFixture.scrape(receiver.node.netns)) ?? before.1
                    )
                    return after.1.value("networkobservability_drop_count", ["reason": "NO_SOCKET"])
                        - before.1.value("networkobservability_drop_count", ["reason": "NO_SOCKET"]) >= Double(count)
                }

                func delta(
                    _ pair: (ScrapedMetrics, ScrapedMetrics), _ name: String, _ labels: [String: String]
                ) -> Double {
                    pair.1.value(name, labels) - pair.0.value(name, labels)
                }
                let sent = delta((before.0, after.0), "networkobservability_forward_count", ["direction": "egress"])
                let sentBytes = delta(
                    (before.0, after.0), "networkobservability_forward_bytes", ["direction": "egress"])
                let received = delta(
                    (before.1, after.1), "networkobservability_forward_count", ["direction": "ingress"])
                let receivedBytes = delta(
                    (before.1, after.1), "networkobservability_forward_bytes", ["direction": "ingress"])
                let n = Double(count)
                #expect(sent >= n && sent <= n + Self.background, "\(sender.node.name) uplink egress packets: \(sent)")
                #expect(
                    received >= n && received <= n + Self.background,
                    "\(receiver.node.name) uplink ingress: \(received)")
                #expect(
                    sentBytes >= n * frame && sentBytes <= n * frame + Self.background * 1514,
                    "egress bytes \(sentBytes)")
                #expect(receivedBytes >= n * frame && receivedBytes <= n * frame + Self.background * 1514)
                let noSocket = delta((before.1, after.1), "networkobservability_drop_count", ["reason": "NO_SOCKET"])
                #expect(noSocket == n, "NO_SOCKET drops on \(receiver.node.name): \(noSocket)")
                let noSocketBytes = delta(
                    (before.1, after.1), "networkobservability_drop_bytes", ["reason": "NO_SOCKET"])
                // Where UDP finds no socket, the IP header is already pulled: skb->len = UDP header + payload.
                #expect(noSocketBytes == n * Double(8 + payload), "drop bytes \(noSocketBytes)")
                #expect(
                    delta((before.0, after.0), "networkobservability_drop_count", ["reason": "NO_SOCKET"]) == 0,
                    "the sender's node does not count the receiver's drops")
            }
        }

        @Test("the policy-blocked client's packets are NETFILTER_DROP drops, one for one")
        func policyDrops() async throws {
            try await LabFixture.withLab(Self.config("p")) { plan, _ in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let untrusted = try #require(plan.pods(of: "untrusted", in: "shop").first)
                let target = try #require(plan.pods(of: "frontend", in: "shop").first { $0.node != untrusted.node })
                let node = untrusted.node.netns
                func nftDrops() throws -> Double {
                    let rules = try LabFixture.exec(node, ["nft", "list", "table", "inet", "osp_policy"]).stdout
                    return Double(rules.firstMatch(of: /counter packets (\d+)/).map { String($0.1) } ?? "") ?? -1
                }
                _ = try settled { try nftDrops() }
                let before = (try nftDrops(), try LabFixture.scrape(node))
                let synsSent = { (m: ScrapedMetrics) in
                    m.value("networkobservability_tcp_flag_counters", ["flag": "SYN", "direction": "egress"])
                }
                for _ in 0..<5 {
                    // One SYN each: the socket is closed before the first retransmission.
                    #expect(
                        try PodSockets.connectTCP(from: untrusted.netns, to: target.ipv4, port: 80, timeout: 0.3) == nil
                    )
                }
                var after = before
                eventually {
                    after = ((try? nftDrops()) ?? before.0, (try? LabFixture.scrape(node)) ?? before.1)
                    let counted =
                        after.1.value("networkobservability_drop_count", ["reason": "NETFILTER_DROP"])
                        - before.1.value("networkobservability_drop_count", ["reason": "NETFILTER_DROP"])
                    return after.0 - before.0 >= 5 && counted >= after.0 - before.0
                }
                let blocked = after.0 - before.0
                let counted =
                    after.1.value("networkobservability_drop_count", ["reason": "NETFILTER_DROP"])
                    - before.1.value("networkobservability_drop_count", ["reason": "NETFILTER_DROP"])
                // Every SYN the client sent (5, or more if TCP retransmitted one) was dropped by the
                // policy rule and counted once; no other pod on the node opens connections now.
                #expect(blocked >= 5, "the nftables policy rule dropped the SYNs")
                #expect(blocked == synsSent(after.1) - synsSent(before.1), "each SYN sent was dropped")
                #expect(counted == blocked, "drop_count{reason=NETFILTER_DROP} grew by \(counted)")
                #expect(
                    after.1.series("networkobservability_drop_count", ["reason": "NETFILTER_DROP"]).allSatisfy {
                        $0.labels["direction"] == "egress"
                    }, "dropped while leaving the client pod's node side")
            }
        }

        @Test("held TCP connections show in tcp_state and tcp_connection_remote, and leave when closed")
        func tcpConnections() async throws {
            try await LabFixture.withLab(Self.config("c")) { plan, _ in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "ledger", in: "billing").first)
                #expect(client.node != server.node)
                let baseline = try settled {
                    try LabFixture.scrape(server.node.netns).value(
                        "networkobservability_tcp_state", ["state": "ESTABLISHED"])
                }
                var sockets: [Int32] = []
                defer { sockets.forEach { close($0) } }
                for _ in 0..<7 {
                    sockets.append(
                        try #require(
                            try PodSockets.connectTCP(from: client.netns, to: server.ipv4, port: 80, timeout: 2)))
                }
                var held = try LabFixture.scrape(client.node.netns)
                eventually {
                    held = (try? LabFixture.scrape(client.node.netns)) ?? held
                    return held.value(
                        "networkobservability_tcp_connection_remote", ["address": server.ipv4, "port": "80"]) == 7
                }
                #expect(
                    held.value("networkobservability_tcp_connection_remote", ["address": server.ipv4, "port": "80"])
                        == 7)
                #expect(held.value("networkobservability_tcp_state", ["state": "ESTABLISHED"]) >= 7)
                let serverSide = try LabFixture.scrape(server.node.netns)
                #expect(
                    serverSide.value("networkobservability_tcp_state", ["state": "ESTABLISHED"]) - baseline == 7,
                    "the server pod's namespace is counted on its node")

                sockets.forEach { close($0) }
                sockets = []
                var closed = try LabFixture.scrape(client.node.netns)
                eventually {
                    closed = (try? LabFixture.scrape(client.node.netns)) ?? closed
                    return closed.series("networkobservability_tcp_connection_remote", ["address": server.ipv4]).isEmpty
                }
                #expect(closed.series("networkobservability_tcp_connection_remote", ["address": server.ipv4]).isEmpty)
                #expect(closed.value("networkobservability_tcp_state", ["state": "TIME_WAIT"]) >= 7)
            }
        }

        @Test(
            "a full connection table: evictions are counted, every connection's start is still reported, and connections that end leave the table"
        )
        func connectionTableFull() async throws {
            var config = try Self.config("t")
            config.agentArguments = ["--conntrack-max", "256"]
            try await LabFixture.withLab(config) { plan, _ in
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "ledger", in: "billing").first)
                let node = client.node.netns
                // 16 old sets of 16, and one young set of 16 in front.
                #expect(try LabFixture.scrape(node).value("osprey_agent_conntrack_size") == 272)
                // The lab's own traffic until its clients stopped left entries too (DNS over UDP
                // stays until evicted): well under the table's size, but counted from here.
                let evictedBefore = try settled {
                    try LabFixture.scrape(node).value("osprey_agent_conntrack_evictions_total")
                }
                var sockets: [Int32] = []
                defer { sockets.forEach { close($0) } }
                func open(_ count: Int) throws {
                    for _ in 0..<count {
                        sockets.append(
                            try #require(
                                try PodSockets.connectTCP(from: client.netns, to: server.ipv4, port: 80, timeout: 2)))
                    }
                }
                func closeAll() {  // and let their FINs and last ACKs pass
                    sockets.forEach { close($0) }
                    sockets = []
                    Thread.sleep(forTimeInterval: 0.5)
                }
                // Connections that end leave the table (their FINs, then the last ACK): eight times
                // 40 in a row, 320 in all, fit in 272 without evicting anything (kept, they would
                // not). 40 at a time, because the old table is 16 sets of 16 (the young set's
                // overflow moves there) and a set that gets more than 16 evicts one even while
                // others have room.
                for _ in 0..<8 {
                    try open(40)
                    closeAll()
                }
                #expect(
                    try LabFixture.scrape(node).value("osprey_agent_conntrack_evictions_total") == evictedBefore,
                    "ended connections left the table: new ones fit")

                // 400 held open: more than the table holds. Sets evict; the agent counts it.
                let before = try settled {
                    try LabFixture.scrape(node).value("hubble_tcp_flags_total", ["flag": "SYN"])
                }
                try open(400)
                var metrics = try LabFixture.scrape(node)
                eventually {
                    metrics = (try? LabFixture.scrape(node)) ?? metrics
                    return metrics.value("hubble_tcp_flags_total", ["flag": "SYN"]) - before >= 400
                }
                #expect(
                    metrics.value("hubble_tcp_flags_total", ["flag": "SYN"]) - before >= 400, "every start reported")
                #expect(
                    metrics.value("osprey_agent_conntrack_evictions_total") - evictedBefore >= 400 - 272,
                    "evictions counted")
                #expect(metrics.value("hubble_lost_events_total") == 0)
            }
        }

        @Test("every series carries cluster and instance; interface_stats covers every pod veth; promtool parses it")
        func exposition() async throws {
            var config = try Self.config("e", .routed)
            config.agentArguments = ["--metrics-flavour", "both"]  // Retina's names and Cilium's
            try await LabFixture.withLab(config) { plan, _ in
                for node in plan.nodes {
                    let metrics = try LabFixture.scrape(node.netns)
                    #expect(!metrics.samples.isEmpty)
                    #expect(
                        metrics.samples.allSatisfy {
                            $0.labels["cluster"] == config.name && $0.labels["instance"] == node.name
                        })
                    let interfaces = Set(
                        metrics.series("networkobservability_interface_stats").compactMap {
                            $0.labels["interface_name"]
                        })
                    for pod in plan.pods(on: node) {
                        #expect(interfaces.contains(pod.hostInterface), "\(pod.qualifiedName)")
                    }
                    #expect(interfaces.contains("eth0"))
                    for name in [
                        "networkobservability_forward_count", "networkobservability_forward_bytes",
                        "networkobservability_tcp_state", "networkobservability_tcp_connection_stats",
                        "networkobservability_ip_connection_stats", "networkobservability_udp_connection_stats",
                        "networkobservability_udp_active_sockets", "networkobservability_tcp_flag_counters",
                    ] {
                        #expect(!metrics.series(name).isEmpty, "\(name) on \(node.name)")
                    }
                    // Every node runs a client pod that opens TCP connections: counted in its namespace.
                    #expect(
                        metrics.value("networkobservability_tcp_connection_stats", ["statistic_name": "ActiveOpens"])
                            > 0)
                    #expect(
                        !metrics.series("networkobservability_tcp_connection_stats", ["statistic_name": "TCPTimeouts"])
                            .isEmpty)
                    // The names Retina's Clusters dashboard asks for, each the Linux counter it stands for.
                    for (alias, name) in [
                        "tcptimeouts": "TCPTimeouts", "tcptsreorder": "TCPTSReorder", "resetcount": "EstabResets",
                    ] {
                        #expect(
                            metrics.value("networkobservability_tcp_connection_stats", ["statistic_name": alias])
                                == metrics.value("networkobservability_tcp_connection_stats", ["statistic_name": name]),
                            "\(alias) = \(name)")
                        #expect(
                            !metrics.series("networkobservability_tcp_connection_stats", ["statistic_name": alias])
                                .isEmpty, "\(alias) is exported")
                    }
                    #expect(
                        metrics.value("osprey_agent_interfaces_watched", ["role": "pod"])
                            == Double(plan.pods(on: node).count))
                    #expect(metrics.value("osprey_agent_interfaces_watched", ["role": "uplink"]) == 1)
                    // Cilium's names for the same counters, from the same reading.
                    for direction in ["ingress", "egress"] {
                        #expect(
                            metrics.value("cilium_forward_count_total", ["direction": direction.uppercased()])
                                == metrics.value("networkobservability_forward_count", ["direction": direction]))
                    }
                    #expect(metrics.value("osprey_agent_namespaces_watched") == Double(plan.pods(on: node).count + 1))
                    #expect(metrics.value("osprey_agent_bpf_program_errors_total") == 0)
                    #expect(metrics.value("osprey_agent_conntrack_size") == 524_288 + 4_096, "old and young tables")
                    #expect(metrics.value("osprey_agent_conntrack_evictions_total") == 0)

                    // promtool parses the page. Its only complaints are about names the contract
                    // takes from Retina: `_count` gauges, counters without `_total`, `_counter`,
                    // `_ms` (exit status 3 = lint findings, 1 = parse error).
                    let check = try Host().execute(["promtool", "check", "metrics"], input: metrics.text)
                    #expect(check.status == 0 || check.status == 3, "promtool: \(check.stderr)")
                    let findings = (check.stdout + check.stderr).split(separator: "\n")
                    let retinaNames = [
                        "networkobservability_drop_count", "networkobservability_forward_count",
                        "networkobservability_dns_request_count", "networkobservability_dns_response_count",
                        "networkobservability_adv_forward_count", "networkobservability_adv_drop_count",
                        "networkobservability_adv_dns_request_count", "networkobservability_adv_dns_response_count",
                        "networkobservability_adv_tcpflags_count", "networkobservability_adv_tcpretrans_count",
                        "networkobservability_adv_node_apiserver_no_response",
                        "networkobservability_node_apiserver_handshake_latency_ms",
                        "controlplane_networkobservability_expired_metrics_counter",
                    ]
                    #expect(
                        findings.allSatisfy { finding in retinaNames.contains { finding.hasPrefix($0 + " ") } },
                        "\(findings)")
                }
                // The programs' own cost, counted while the kernel's run statistics are on (the
                // lab's clients keep talking meanwhile).
                let statistics = try RunStatistics()
                for node in plan.nodes {
                    func pod(_ name: String) -> (runs: Double, seconds: Double) {
                        let metrics = (try? LabFixture.scrape(node.netns)) ?? ScrapedMetrics(text: "")
                        return (
                            metrics.value("osprey_agent_bpf_program_runs_total", ["program": name]),
                            metrics.value("osprey_agent_bpf_program_run_seconds_total", ["program": name])
                        )
                    }
                    let before = pod("osp_tc_pod_ingress")
                    #expect(eventually { pod("osp_tc_pod_ingress").runs > before.runs })
                    let after = pod("osp_tc_pod_ingress")
                    #expect(after.seconds > before.seconds, "\(node.name): \(before) → \(after)")
                    #expect(
                        (after.seconds - before.seconds) / (after.runs - before.runs) < 0.001,
                        "\(node.name): a run takes nanoseconds to microseconds, not milliseconds")
                    let programs = Set(
                        ((try? LabFixture.scrape(node.netns))?.series("osprey_agent_bpf_program_runs_total") ?? [])
                            .compactMap { $0.labels["program"] })
                    #expect(
                        programs == [
                            "osp_tc_pod_ingress", "osp_tc_pod_egress", "osp_kfree_skb", "osp_tcp_retransmit_skb",
                        ])
                }
                withExtendedLifetime(statistics) {}
                // The policy-blocked client's drops, as Cilium names them.
                #expect(
                    try eventually {
                        try plan.nodes.map {
                            try LabFixture.scrape($0.netns).value(
                                "cilium_drop_count_total", ["reason": "Policy denied", "direction": "EGRESS"])
                                + LabFixture.scrape($0.netns).value(
                                    "cilium_drop_count_total", ["reason": "Policy denied", "direction": "INGRESS"])
                        }.reduce(0, +) > 0
                    })
                // Retina's basic DNS metrics, labelled as its Standard DNS dashboard asks: the
                // loadgen's node counts its lookups of `catalog` (NXDOMAIN).
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first).node.netns
                eventually {
                    ((try? LabFixture.scrape(loadgen))?.value(
                        "networkobservability_dns_response_count", ["return_code": "nxdomain"]) ?? 0) > 0
                }
                let dns = try LabFixture.scrape(loadgen)
                #expect(dns.value("networkobservability_dns_request_count", ["query_type": "A"]) > 0)
                #expect(dns.value("networkobservability_dns_response_count", ["return_code": "nxdomain"]) > 0)

                // Retina's pod-level metrics (the lab's agents run them in remote context): the
                // blocked client's SYNs, sent again and again, are its retransmissions (tracepoint
                // tcp:tcp_retransmit_skb), on its own node, from its own socket.
                let untrusted = try #require(plan.pods(of: "untrusted", in: "shop").first)
                #expect(
                    eventually(within: 30) {
                        ((try? LabFixture.scrape(untrusted.node.netns))?.value(
                            "networkobservability_adv_tcpretrans_count",
                            ["source_podname": untrusted.name, "direction": "EGRESS"]) ?? 0) > 0
                    })
                // Every agent reads its node's connections to the lab's API server: its own watches.
                for node in plan.nodes {
                    #expect(
                        eventually(within: 30) {
                            ((try? LabFixture.scrape(node.netns))?.value(
                                "networkobservability_adv_node_apiserver_latency_count") ?? 0) > 0
                        }, "\(node.name)")
                    let metrics = try LabFixture.scrape(node.netns)
                    #expect(metrics.value("osprey_agent_apiserver_latency_failures_total") == 0)
                    // Two tc programs per pod veth, none on the uplink, and the two tracepoints.
                    #expect(
                        metrics.value("osprey_agent_programs_attached") == Double(2 * plan.pods(on: node).count + 2))
                }
            }
        }
    }
}
