import Foundation
import Lab
import TestSupport
import Testing

extension AgentIntegration {
    /// The node changes under a running agent: its uplink goes and comes back, the filesystems
    /// it started from are unmounted, it is killed while its flow log rotates. It keeps serving
    /// what it can, says what broke, and recovers without a restart where the kernel allows.
    @Suite("Faults under a running agent")
    struct Faults {
        static func watched(_ node: PlannedNode, _ role: String) throws -> Double {
            try LabFixture.scrape(node.netns).value("osprey_agent_interfaces_watched", ["role": role])
        }

        static func log(_ config: LabConfig, _ node: PlannedNode) throws -> String {
            try String(contentsOfFile: config.agentLogPath(node.name), encoding: .utf8)
        }

        @Test("the node's uplink deleted and recreated: pods stay watched, one line each way, the new one is attached")
        func uplinkRecreated() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("u"), nodeCount: 2, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[1]
                let pods = try Self.watched(node, "pod")
                #expect(try Self.watched(node, "uplink") == 1 && pods > 0)
                let flows = try LabFixture.scrape(node.netns).value("hubble_flows_processed_total")

                try Host().run(["ip", "-n", node.netns, "link", "del", LabNames.nodeUplink])
                #expect(try eventually(within: 5) { try Self.watched(node, "uplink") == 0 })
                // The pods are still watched and their traffic (on the node) still reported.
                #expect(try Self.watched(node, "pod") == pods)
                #expect(
                    try eventually(within: 15) {
                        try LabFixture.scrape(node.netns).value("hubble_flows_processed_total") > flows
                    })

                for step in NetworkSetup(plan: plan).uplinkSteps(for: node) {
                    try Host().run(step.argv, input: step.input)
                }
                #expect(try eventually(within: 5) { try Self.watched(node, "uplink") == 1 })
                // No program on the uplink: its own counters are the node's forward counts.
                #expect(
                    try AgentLifecycleTests.programs(node: node.netns, interfaces: [LabNames.nodeUplink]) == [
                        "\(LabNames.nodeUplink) ingress": [], "\(LabNames.nodeUplink) egress": [],
                    ])
                let forwarded = try LabFixture.scrape(node.netns).value(
                    "networkobservability_forward_count", ["direction": "ingress"])
                // Across nodes again (UDP from a pod of the other node), reported by this node's agent.
                let target = try #require(plan.pods(on: node).first)
                let client = try #require(plan.pods(on: plan.nodes[0]).first)
                let back = Date()
                try PodSockets.sendUDP(from: client.netns, to: target.ipv4, port: 9, count: 20, payload: 32)
                #expect(
                    try eventually(within: 5) {
                        try KubernetesLab.flows(to: target.ipv4, config: config, node: node.name).contains {
                            $0.time >= back
                        }
                    })
                #expect(
                    try LabFixture.scrape(node.netns).value(
                        "networkobservability_forward_count", ["direction": "ingress"]) >= forwarded + 20,
                    "the new uplink's packets are counted")
                let log = try Self.log(config, node)
                #expect(log.components(separatedBy: "uplink gone").count - 1 == 1, "said once: \(log)")
                #expect(log.contains("uplink back"))
            }
        }

        @Test(
            "bpffs unmounted under a running agent that never had tracefs: drops, retransmissions and flows keep coming; nothing broke, nothing said"
        )
        func filesystemsUnmounted() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("m"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[0]
                let agent = try #require(LabFixture.agentPID(config, node: node.name))
                // The agent's own mount namespace (`ip netns exec` gives it one): no tracefs
                // there (the tracepoint programs attach through BTF), and bpffs mounted as a
                // DaemonSet's hostPath would, then gone.
                let inAgent = ["nsenter", "-t", "\(agent)", "-m", "--"]
                #expect(try Host().execute(inAgent + ["mountpoint", "-q", "/sys/kernel/tracing"]).status != 0)
                #expect(try Host().execute(inAgent + ["mountpoint", "-q", "/sys/kernel/debug"]).status != 0)
                try Host().run(inAgent + ["sh", "-c", "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf"])
                let before = try LabFixture.scrape(node.netns)
                let logBefore = try Self.log(config, node)
                try Host().run(inAgent + ["umount", "/sys/fs/bpf"])
                #expect(try Host().execute(inAgent + ["mountpoint", "-q", "/sys/fs/bpf"]).status != 0)

                // The tracepoints and the tc programs are held by descriptors, not by paths. The
                // lab's blocked client keeps sending SYNs its policy drops: drops, and
                // retransmissions of those SYNs.
                let retransmissions = "networkobservability_adv_tcpretrans_count"
                #expect(
                    try eventually(within: 30) {
                        let now = try LabFixture.scrape(node.netns)
                        return now.value("hubble_drop_total") > before.value("hubble_drop_total")
                            && now.value(retransmissions) > before.value(retransmissions)
                            && now.value("hubble_flows_processed_total") > before.value("hubble_flows_processed_total")
                    })
                let after = try LabFixture.scrape(node.netns)
                #expect(
                    after.value("osprey_agent_programs_attached") == before.value("osprey_agent_programs_attached"))
                let said = String(try Self.log(config, node).dropFirst(logBefore.count))
                #expect(!said.lowercased().contains("error"), "\(said)")
            }
        }

        @Test("kill -9 while the flow log rotates, five times: every file reads back whole, no partial gzip stays")
        func killedWhileRotating() async throws {
            var config = try LabConfig(
                name: LabFixture.uniqueName("r"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            // About 1 MB of flow log every few thousand packets: rotations many times a second.
            config.agentArguments = [
                "--per-packet-events", "--export-file-max-size-mb", "1", "--export-file-compress",
                "--export-file-max-backups", "0",
            ]
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[0]
                let directory = config.nodeDirectory(node.name)
                let pods = plan.pods(on: node)
                let (sender, receiver) = (pods[0], pods[1])
                let launch = LabFixture.agentLaunch(plan, node: node)
                var rotations = 0.0
                for _ in 0..<5 {
                    let flood = Thread {
                        try? PodSockets.sendUDP(
                            from: sender.netns, to: receiver.ipv4, port: 9, count: 20000, payload: 32)
                    }
                    flood.start()
                    // Killed once it has rotated at least once in this round, mid-flood.
                    let before = try LabFixture.scrape(node.netns).value("osprey_agent_export_rotations_total")
                    var rotated = 0.0
                    _ = try eventually(within: 10, poll: 0.02) {
                        rotated =
                            try LabFixture.scrape(node.netns).value("osprey_agent_export_rotations_total") - before
                        return rotated > 0
                    }
                    rotations += rotated
                    try #require(LabFixture.stopAgent(config, node: node.name, signal: SIGKILL, timeout: 5))
                    try LabFixture.startAgent(plan, node: node)
                    let answered = LabFixture.servesMetrics(node.netns)
                    let log = (try? String(contentsOfFile: launch.logPath, encoding: .utf8)) ?? ""
                    try #require(
                        answered,
                        "the restarted agent answers /metrics; its log ends: \(log.split(separator: "\n").suffix(15))")
                }
                #expect(rotations >= 5, "the flow log rotated while the agents ran")
                // A kill between a rotation's rename and the next write leaves no flows.log until
                // the restarted agent writes a flow: traffic until it has (a loaded machine may
                // take a while to attach the restarted agent's programs and export).
                let written = eventually(within: 30, poll: 0.5) {
                    try? PodSockets.sendUDP(from: sender.netns, to: receiver.ipv4, port: 9, count: 20, payload: 32)
                    return FileManager.default.fileExists(atPath: "\(directory)/flows.log")
                }
                #expect(written, "the restarted agent wrote flows.log again")
                let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter {
                    $0.hasPrefix("flows")
                }
                #expect(!names.contains { $0.hasSuffix(".partial") }, "\(names)")
                #expect(
                    !names.contains { $0.hasPrefix("flows-") && $0.hasSuffix(".log") },
                    "every backup compressed: \(names)")
                #expect(names.filter { $0.hasSuffix(".log.gz") }.count >= 5)
                // Every line of every file, rotated ones first, reads back as a flow.
                let read = try OspreyBinary.cli.run([
                    "observe", "--input-file", "\(directory)/flows.log", "--include-rotated", "--all", "-o", "jsonpb",
                ])
                #expect(read.status == 0 && read.stderr.isEmpty, "\(read.stderr)")
                let lines = read.stdout.split(separator: "\n")
                #expect(lines.count > 5000)
                let unreadable = lines.first { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) == nil }
                #expect(unreadable == nil, "\(unreadable ?? "")")
            }
        }
    }
}
