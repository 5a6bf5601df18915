import Foundation
import HubbleTransport
import Lab
import Locking
import TestSupport
import Testing

/// osprey-relay in a 3-node lab, driven with the `osprey` CLI as an operator would: merged
/// flows from every node, N per node, an agent killed and restarted under a follow stream,
/// TLS with a throwaway CA, and a client that stops reading.
extension AgentIntegration {
    @Suite("osprey-relay on a lab")
    struct RelayLabTests {
        static func labConfig(_ tag: Character, nodes: Int = 3, tls: Bool = false) throws -> LabConfig {
            var config = try LabConfig(
                name: LabFixture.uniqueName(tag), nodeCount: nodes, topology: .bridge,
                agentPath: OspreyBinary.agent.path)
            config.relayPath = OspreyBinary.relay.path
            config.relayPort = nil  // tests run side by side: the relay's socket only
            config.tls = tls
            return config
        }

        static func relay(_ config: LabConfig) -> String { "unix://\(config.relaySocketPath)" }

        /// `osprey <arguments> --server <relay>`.
        static func osprey(
            _ config: LabConfig, _ arguments: [String], tls: [String] = []
        ) throws -> (
            status: Int32, stdout: String, stderr: String
        ) {
            try OspreyBinary.cli.run(arguments + ["--server", relay(config)] + tls)
        }

        /// Waits until `osprey status` through the relay says `connected` of the lab's nodes are.
        static func waitForNodes(_ config: LabConfig, connected: Int, tls: [String] = []) throws {
            let expected = "Connected Nodes: \(connected)/\(config.nodeCount)\n"
            let deadline = Date().addingTimeInterval(30)
            var last = ""
            while Date() < deadline {
                let status = try osprey(config, ["status"], tls: tls)
                last = status.stdout + status.stderr
                if last.contains(expected) { return }
                Thread.sleep(forTimeInterval: 0.3)
            }
            Issue.record("the relay never reported \(expected): \(last)")
        }

        /// Waits until every node's agent holds at least `count` flows: the clients' first rounds
        /// reach every node within seconds of the lab's start, but not always before a test asks.
        static func waitForFlows(_ config: LabConfig, _ plan: LabPlan, atLeast count: Int, tls: [String] = []) {
            let everyNode = eventually {
                let all = (try? osprey(config, ["observe", "--last", "1000", "-o", "json"], tls: tls))?.stdout ?? ""
                let seen = perNode(FlowLabTests.flows(inJSONLines: all))
                return plan.nodes.allSatisfy { seen[$0.name, default: 0] >= count }
            }
            #expect(everyNode, "some node never held \(count) flows")
        }

        /// How many of `flows` each node reported.
        static func perNode(_ flows: [[String: Any]]) -> [String: Int] {
            var counts: [String: Int] = [:]
            for flow in flows { counts[FlowLabTests.string(flow, "node_name") ?? "?", default: 0] += 1 }
            return counts
        }

        /// Seconds since the epoch of an RFC 3339 time with 0 to 9 fractional digits.
        static func seconds(_ text: String?) -> Double {
            guard let text else { return 0 }
            let parts = text.dropLast().split(separator: ".", maxSplits: 1)
            let whole = ISO8601DateFormatter().date(from: String(parts[0]) + "Z")?.timeIntervalSince1970 ?? 0
            return whole + (parts.count == 2 ? Double("0." + parts[1]) ?? 0 : 0)
        }

        @Test(
            "a cross-node request appears once per observation point, from both nodes, in time order; --last N is N per node"
        )
        func mergedView() async throws {
            let config = try Self.labConfig("r")
            try await LabFixture.withLab(config) { plan, _ in
                try Self.waitForNodes(config, connected: 3)
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first { $0.node != loadgen.node })
                let port = Int.random(in: 43000...43999)
                let curl = try LabFixture.exec(
                    loadgen.netns,
                    ["curl", "-s", "-m", "2", "--local-port", String(port), "http://\(frontend.ipv4):80/"])
                #expect(curl.status == 0)
                // Until both nodes' flows of the request reached the relay (then assert the details).
                var result = try Self.osprey(
                    config, ["observe", "--port", String(port), "-o", "json", "--last", "1000"])
                eventually {
                    result =
                        (try? Self.osprey(config, ["observe", "--port", String(port), "-o", "json", "--last", "1000"]))
                        ?? result
                    let nodes = Set(
                        FlowLabTests.flows(inJSONLines: result.stdout).compactMap { $0["node_name"] as? String })
                    return nodes.contains(loadgen.node.name) && nodes.contains(frontend.node.name)
                }
                #expect(result.status == 0, "\(result.stderr)")
                let flows = FlowLabTests.flows(inJSONLines: result.stdout)
                let times = flows.map { Self.seconds(FlowLabTests.string($0, "time")) }
                #expect(times == times.sorted(), "flows through the relay are in time order")
                let nodes = Set(flows.compactMap { FlowLabTests.string($0, "node_name") })
                #expect(nodes == [loadgen.node.name, frontend.node.name])
                // The request's SYN: once where it leaves the client, once where it enters the server.
                let syns = flows.filter {
                    FlowLabTests.string($0, "l4", "TCP", "flags", "SYN") == "1"
                        && FlowLabTests.string($0, "l4", "TCP", "flags", "ACK") == nil
                }
                var points: [String: Int] = [:]
                for syn in syns {
                    let key =
                        "\(FlowLabTests.string(syn, "node_name") ?? "?") \(FlowLabTests.string(syn, "trace_observation_point") ?? "?")"
                    points[key, default: 0] += 1
                }
                #expect(points.values.allSatisfy { $0 == 1 }, "each observation point once: \(points)")
                #expect(points["\(loadgen.node.name) FROM_ENDPOINT"] == 1, "\(points)")
                #expect(points["\(frontend.node.name) TO_ENDPOINT"] == 1, "\(points)")

                // Hubble Relay's --last N: N from each node.
                Self.waitForFlows(config, plan, atLeast: 3)
                let last = try Self.osprey(config, ["observe", "--last", "3", "-o", "json"])
                let lastFlows = FlowLabTests.flows(inJSONLines: last.stdout)
                #expect(Self.perNode(lastFlows) == Dictionary(uniqueKeysWithValues: plan.nodes.map { ($0.name, 3) }))
                let lastTimes = lastFlows.map { Self.seconds(FlowLabTests.string($0, "time")) }
                #expect(lastTimes == lastTimes.sorted())

                let namespaces = try Self.osprey(config, ["list", "namespaces"])
                #expect(namespaces.stdout.split(separator: "\n").contains("shop"))
            }
        }

        @Test("kill an agent under a follow stream: the stream goes on and names it; restarted, its flows come back")
        func agentRestart() async throws {
            let config = try Self.labConfig("s")
            try await LabFixture.withLab(config) { plan, _ in
                try Self.waitForNodes(config, connected: 3)
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first { $0.node != loadgen.node })
                let victim = frontend.node
                let follow = Process()
                follow.executableURL = URL(fileURLWithPath: OspreyBinary.cli.path)
                follow.arguments = ["observe", "--server", Self.relay(config), "--follow", "-o", "json"]
                let output = Pipe()
                let errors = Pipe()
                follow.standardOutput = output
                follow.standardError = errors
                let received = Lock<(lines: [(Double, String)], stderr: String, partial: String)>(([], "", ""))
                output.fileHandleForReading.readabilityHandler = { handle in
                    let text = String(decoding: handle.availableData, as: UTF8.self)
                    received.withLock { state in
                        let chunks = (state.partial + text).split(separator: "\n", omittingEmptySubsequences: false)
                        state.partial = String(chunks.last ?? "")
                        for line in chunks.dropLast() {
                            guard let flow = FlowLabTests.flows(inJSONLines: String(line)).first else { continue }
                            state.lines.append(
                                (
                                    Self.seconds(FlowLabTests.string(flow, "time")),
                                    FlowLabTests.string(flow, "node_name") ?? ""
                                ))
                        }
                    }
                }
                errors.fileHandleForReading.readabilityHandler = { handle in
                    let text = String(decoding: handle.availableData, as: UTF8.self)
                    received.withLock { $0.stderr += text }
                }
                try follow.run()
                defer {
                    kill(follow.processIdentifier, SIGKILL)
                    follow.waitUntilExit()
                    output.fileHandleForReading.readabilityHandler = nil
                    errors.fileHandleForReading.readabilityHandler = nil
                }
                func waitFor(_ what: String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
                    let deadline = Date().addingTimeInterval(seconds)
                    while Date() < deadline {
                        if try condition() { return }
                        Thread.sleep(forTimeInterval: 0.2)
                    }
                    Issue.record("\(what) did not happen within \(Int(seconds)) s")
                }
                func nodeLine(_ name: String) throws -> String {
                    let nodes = try Self.osprey(config, ["list", "nodes"]).stdout
                    return nodes.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map(String.init) ?? ""
                }
                func request() throws {
                    _ = try LabFixture.exec(loadgen.netns, ["curl", "-s", "-m", "2", "http://\(frontend.ipv4):80/"])
                }

                try request()
                try waitFor("a flow of \(victim.name) in the stream") {
                    received.withLock { $0.lines.contains { $0.1 == victim.name } }
                }
                try #require(LabFixture.stopAgent(config, node: victim.name, signal: SIGKILL, timeout: 5))
                let killed = Date().timeIntervalSince1970

                try waitFor("\(victim.name) listed Unavailable") { try nodeLine(victim.name).contains("Unavailable") }
                let status = try Self.osprey(config, ["status"]).stdout
                #expect(status.contains("Connected Nodes: 2/3\nUnavailable Nodes: 1\n  - \(victim.name)"), "\(status)")
                // On stderr, as hubble writes a node status for -o json: the response as a line.
                try waitFor("the stream to say \(victim.name) is unavailable") {
                    received.withLock { state in
                        state.stderr.split(separator: "\n").contains { line in
                            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
                            let status = object?["node_status"] as? [String: Any]
                            return status?["state_change"] as? String == "NODE_UNAVAILABLE"
                                && (status?["node_names"] as? [String])?.contains(victim.name) == true
                        }
                    }
                }
                try waitFor("flows of the other nodes after the kill") {
                    received.withLock { $0.lines.contains { $0.0 > killed + 0.5 && $0.1 != victim.name } }
                }

                try LabFixture.startAgent(plan, node: victim, logSuffix: ".restarted")
                try waitFor("\(victim.name) listed Connected again", seconds: 30) {
                    try nodeLine(victim.name).contains("Connected")
                }
                let restarted = Date().timeIntervalSince1970
                try waitFor("\(victim.name)'s new flows in the same stream") {
                    try request()
                    return received.withLock { $0.lines.contains { $0.0 > restarted && $0.1 == victim.name } }
                }
                try Self.waitForNodes(config, connected: 3)
                #expect(follow.isRunning, "the follow stream never ended")
            }
        }

        /// Resident memory of a process, in MiB.
        static func residentMiB(_ pid: Int32) -> Double {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
        }

        @Test("a client that stops reading: the relay's memory stays bounded and the agents count the loss")
        func slowClient() async throws {
            let config = try Self.labConfig("u", nodes: 2)
            try await LabFixture.withLab(config) { plan, _ in
                try Self.waitForNodes(config, connected: 2)
                let pidFile = "\(config.stateDirectory)/relay/osprey-relay.pid.osprey"
                let relay = try #require(
                    Int32(
                        try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(
                            in: .whitespacesAndNewlines)))
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first { $0.node != loadgen.node })
                // Warm up: one flood with a reading client, so the baseline includes the relay's working set.
                let flood = [
                    "bash", "-c", "for i in $(seq 20000); do echo x > /dev/udp/\(frontend.ipv4)/9; done 2>/dev/null",
                ]
                let reader = try Self.osprey(config, ["observe", "--last", "2000", "-o", "json"])
                #expect(reader.status == 0)
                let before = Self.residentMiB(relay)

                // A follower that never reads (its stdout is a pipe nobody drains), then the flood.
                let marker = "osp-stall-\(config.name)"
                let stalled = Process()
                stalled.executableURL = URL(fileURLWithPath: "/bin/bash")
                stalled.arguments = [
                    "-c",
                    "\"$0\" observe --follow -o jsonpb --server \(Self.relay(config)) | (exec -a \(marker) sleep 600)",
                    OspreyBinary.cli.path,
                ]
                try stalled.run()
                defer {
                    // The shell and the pipeline it started, by pid.
                    killProcessTree(stalled.processIdentifier)
                    stalled.waitUntilExit()
                }
                Thread.sleep(forTimeInterval: 1)
                var peak = before
                for _ in 0..<3 {
                    _ = try LabFixture.exec(loadgen.netns, flood)
                    peak = max(peak, Self.residentMiB(relay))
                }
                Thread.sleep(forTimeInterval: 2)
                peak = max(peak, Self.residentMiB(relay))
                print("osprey-relay resident memory: \(before) MiB before, \(peak) MiB at most with a stalled client")
                #expect(peak - before < 16, "relay grew from \(before) to \(peak) MiB")

                // The agents, not the relay, dropped what the stalled client could not take.
                var lost = 0.0
                for node in plan.nodes {
                    lost += try LabFixture.scrape(node.netns).value(
                        "hubble_lost_events_total", ["source": "hubble_ring_buffer"])
                }
                #expect(lost > 0, "no agent counted lost flows for the stalled client")
                // Everyone else is still served, by every node.
                try Self.waitForNodes(config, connected: 2)
                let other = try Self.osprey(config, ["observe", "--last", "5", "-o", "json"])
                #expect(other.status == 0)
                #expect(FlowLabTests.flows(inJSONLines: other.stdout).count == 10)
            }
        }

        @Test("TLS with a throwaway CA: no client certificate, no TLS or no CA is refused; with them everything works")
        func tls() async throws {
            let config = try Self.labConfig("t", nodes: 2, tls: true)
            try await LabFixture.withLab(config) { plan, _ in
                let certificates = LabCertificates(config: config)
                let trust = [
                    "--tls-ca-cert-files", certificates.caFile, "--tls-server-name", certificates.relayServerName,
                ]
                let client = [
                    "--tls-client-cert-file", certificates.clientCertificate.cert, "--tls-client-key-file",
                    certificates.clientCertificate.key,
                ]
                try Self.waitForNodes(config, connected: 2, tls: trust + client)
                // The web UI is served with the relay's certificate too (no client certificate asked).
                let ui = try Host().execute([
                    "curl", "-s", "--unix-socket", config.uiSocketPath, "--cacert", certificates.caFile,
                    "https://\(certificates.relayServerName)/healthz",
                ])
                #expect(ui.status == 0 && ui.stdout == "ok\n", "the UI over TLS: \(ui.stdout) \(ui.stderr)")
                for (what, flags) in [
                    ("no client certificate", trust), ("plaintext", []), ("no CA", ["--tls"] + client),
                ] {
                    let refused = try Self.osprey(config, ["status", "--timeout", "3s"], tls: flags)
                    #expect(refused.status != 0, "\(what)")
                    #expect(
                        refused.stderr.split(separator: "\n").count == 1, "\(what): one sentence: \(refused.stderr)")
                }
                Self.waitForFlows(config, plan, atLeast: 2, tls: trust + client)
                let flows = try Self.osprey(config, ["observe", "--last", "2", "-o", "json"], tls: trust + client)
                #expect(flows.status == 0, "\(flows.stderr)")
                #expect(FlowLabTests.flows(inJSONLines: flows.stdout).count == 4)
                let nodes = try Self.osprey(config, ["list", "nodes", "-o", "json"], tls: trust + client)
                let list = (try? JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8))) as? [[String: Any]] ?? []
                #expect(list.count == 2)
                #expect(list.allSatisfy { $0["state"] as? String == "NODE_CONNECTED" }, "\(nodes.stdout)")
                #expect(
                    list.allSatisfy { ($0["tls"] as? [String: Any])?["enabled"] as? Bool == true }, "\(nodes.stdout)")
                // An agent's TCP port wants the same: its CA, its name, a client certificate.
                let agent = [
                    OspreyBinary.cli.path, "status", "--server", "localhost:4244", "--timeout", "3s",
                    "--tls-ca-cert-files",
                    certificates.caFile, "--tls-server-name",
                    HubbleTLSNames.agent(node: plan.nodes[0].name, cluster: config.name),
                ]
                #expect(try LabFixture.exec(plan.nodes[0].netns, agent).status != 0)
                #expect(try LabFixture.exec(plan.nodes[0].netns, agent + client).status == 0)
            }
        }
    }
}
