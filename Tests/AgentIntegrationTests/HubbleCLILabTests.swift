import Foundation
import Lab
import Locking
import TestSupport
import Testing

/// `osprey observe|status|list` against the lab's agents, over their unix sockets (from the host)
/// and over TCP :4244 (inside a node), with real traffic.
extension AgentIntegration {
    @Suite("osprey CLI against lab agents")
    struct HubbleCLILabTests {
        /// Every line of the files at `paths` (flow logs), those missing counted as empty.
        static func lines(_ paths: [String]) -> [String] {
            paths.flatMap { path in
                String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
                    .split(separator: "\n").map(String.init)
            }
        }

        static func socket(_ config: LabConfig, _ node: String) -> String {
            "unix://\(config.nodeDirectory(node))/hubble.sock"
        }

        /// Waits until the agent answers `osprey status`.
        static func waitForAgent(_ server: String) throws {
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                if try OspreyBinary.cli.run(["status", "--server", server]).status == 0 { return }
                Thread.sleep(forTimeInterval: 0.2)
            }
            Issue.record("the agent at \(server) never answered")
        }

        @Test("observe --namespace shop --verdict DROPPED -o json shows the blocked client's drops; status, list, TCP")
        func observeDrops() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("h"), nodeCount: 2, topology: .bridge, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let untrusted = try #require(plan.pods(of: "untrusted", in: "shop").first)
                let servers = plan.nodes.map { Self.socket(config, $0.name) }
                for server in servers { try Self.waitForAgent(server) }
                // untrusted tries the ledger once a second: wait until a few of its drops show.
                var drops: [[String: Any]] = []
                var statuses: [Int32] = []
                eventually(within: 20, poll: 0.5) {
                    drops = []
                    statuses = []
                    for server in servers {
                        guard
                            let result = try? OspreyBinary.cli.run([
                                "observe", "--server", server, "--namespace", "shop", "--verdict", "DROPPED", "-o",
                                "json", "--last", "100",
                            ])
                        else { continue }
                        statuses.append(result.status)
                        drops += result.stdout.split(separator: "\n").compactMap {
                            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["flow"]
                                as? [String: Any]
                        }
                    }
                    return drops.filter { FlowLabTests.string($0, "source", "pod_name") == untrusted.name }.count >= 2
                }
                #expect(statuses == servers.map { _ in 0 })
                let policy = drops.filter {
                    FlowLabTests.string($0, "drop_reason_desc") == "POLICY_DENIED"
                        && FlowLabTests.string($0, "source", "pod_name") == untrusted.name
                }
                #expect(policy.count >= 2, "policy drops of \(untrusted.name): \(drops.count) drops in all")
                #expect(drops.allSatisfy { FlowLabTests.string($0, "verdict") == "DROPPED" })
                #expect(
                    drops.allSatisfy {
                        FlowLabTests.string($0, "source", "namespace") == "shop"
                            || FlowLabTests.string($0, "destination", "namespace") == "shop"
                    })

                // loadgen resolves ledger.billing before each request: its flows carry the name.
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let named = try OspreyBinary.cli.run([
                    "observe", "--server", Self.socket(config, loadgen.node.name), "--to-fqdn",
                    "*.billing.svc.cluster.local", "--last", "20", "-o", "json",
                ])
                let namedFlows = named.stdout.split(separator: "\n").compactMap {
                    ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any])?["flow"]
                        as? [String: Any]
                }
                #expect(!namedFlows.isEmpty, "\(named.stderr)")
                #expect(
                    namedFlows.allSatisfy {
                        ($0["destination_names"] as? [String])?.contains("ledger.billing.svc.cluster.local") == true
                    })

                let compact = try OspreyBinary.cli.run([
                    "observe", "--server", servers[0], "--last", "5", "--color", "never",
                ])
                #expect(compact.status == 0)
                #expect(compact.stdout.split(separator: "\n").count == 5)
                #expect(compact.stdout.contains(" FORWARDED (") || compact.stdout.contains(" DROPPED ("))

                let status = try OspreyBinary.cli.run(["status", "--server", servers[0]])
                #expect(status.stdout.hasPrefix("Healthcheck (via \(servers[0])): Ok\nCurrent/Max Flows: "))
                let nodes = try OspreyBinary.cli.run(["list", "nodes", "--server", servers[0]])
                #expect(nodes.stdout.contains("\(plan.nodes[0].name)   Connected"))
                let namespaces = try OspreyBinary.cli.run(["list", "namespaces", "--server", servers[0]])
                #expect(namespaces.stdout.split(separator: "\n").contains("shop"))

                // Inside the node, the agent's TCP port, as a Hubble client in the cluster uses it.
                let tcp = try LabFixture.exec(
                    plan.nodes[0].netns, [OspreyBinary.cli.path, "status", "--server", "localhost:4244"])
                #expect(tcp.status == 0)
                #expect(tcp.stdout.hasPrefix("Healthcheck (via localhost:4244): Ok"))

                // The agents' flow logs (the lab enables --export-file-path): whole jsonpb lines that
                // `observe --input-file` reads, plain and gzipped, with the same drops.
                let logs = plan.nodes.map { "\(config.nodeDirectory($0.name))/flows.log" }
                var logged: [String] = []
                eventually {
                    logged = Self.lines(logs)
                    return logged.contains { $0.contains(untrusted.name) && $0.contains("\"DROPPED\"") }
                }
                #expect(logged.allSatisfy { $0.hasPrefix("{\"flow\":{") || $0.hasPrefix("{\"lost_events\":{") })
                let log = try #require(
                    logs.first { path in
                        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
                            .split(separator: "\n").contains {
                                $0.contains(untrusted.name) && $0.contains("\"DROPPED\"")
                            }
                    }, "a node's flow log holds the untrusted client's drops")
                let fromFile = try OspreyBinary.cli.run([
                    "observe", "--input-file", log, "--namespace", "shop", "--verdict", "DROPPED", "-o", "json",
                    "--all",
                ])
                #expect(fromFile.status == 0, "\(fromFile.stderr)")
                #expect(fromFile.stdout.contains(untrusted.name))
                let gzipped = try Host().execute(["sh", "-c", "gzip -c \(log) > \(log).gz"])
                #expect(gzipped.status == 0)
                let fromGzip = try OspreyBinary.cli.run([
                    "observe", "--input-file", log + ".gz", "--namespace", "shop", "--verdict", "DROPPED", "-o",
                    "json", "--all",
                ])
                #expect(fromGzip.status == 0, "\(fromGzip.stderr)")
                #expect(
                    fromGzip.stdout.split(separator: "\n").count >= fromFile.stdout.split(separator: "\n").count,
                    "the gzipped copy holds at least what the file held")
                let metrics = try LabFixture.scrape(plan.nodes[0].netns)
                #expect(metrics.value("osprey_agent_export_lines_total", ["exporter": "static"]) > 0)
                #expect(metrics.value("osprey_agent_export_errors_total", ["exporter": "static"]) == 0)

                // Dynamic flow logs added while the agents run (their flowlogs config): they start
                // within seconds. One writes only drops, and has its own metrics and lost-events
                // count; the other aggregates the flows by pod pair and verdict each second.
                for node in plan.nodes {
                    let dir = config.nodeDirectory(node.name)
                    try """
                    flowLogs:
                    - name: drops
                      filePath: \(dir)/drops.log
                      fieldMask: [time, verdict, drop_reason_desc, source.pod_name, destination]
                      includeFilters:
                      - verdict: [DROPPED]
                    - name: pairs
                      filePath: \(dir)/pairs.log
                      fieldAggregate: [source.namespace, source.pod_name, destination.pod_name, verdict]
                      aggregationInterval: 1s
                    """.write(toFile: dir + "/flowlogs.yaml", atomically: true, encoding: .utf8)
                }
                let dropLogs = plan.nodes.map { "\(config.nodeDirectory($0.name))/drops.log" }
                var dropped: [String] = []
                eventually {
                    dropped = Self.lines(dropLogs)
                    return dropped.contains { $0.contains(untrusted.name) }
                }
                #expect(
                    dropped.contains { $0.contains(untrusted.name) },
                    "the new flow log has the untrusted client's drops")
                let droppedFlows = dropped.compactMap { line in
                    (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["flow"]
                        as? [String: Any]
                }
                #expect(droppedFlows.count == dropped.filter { $0.hasPrefix("{\"flow\":") }.count)
                #expect(
                    droppedFlows.allSatisfy { $0["verdict"] as? String == "DROPPED" && $0["l4"] == nil },
                    "only drops, only the masked fields")
                let dropNode = try #require(
                    plan.nodes.first { node in
                        (try? LabFixture.scrape(node.netns).value(
                            "osprey_agent_export_lines_total", ["exporter": "drops"])).map { $0 > 0 } ?? false
                    })
                let dropMetrics = try LabFixture.scrape(dropNode.netns)
                #expect(dropMetrics.value("hubble_lost_events_total", ["source": "exporter_drops"]) == 0)

                // The aggregated one: a line per pod pair and verdict each second, holding those
                // fields, the first flow's time and the counts; the untrusted client's drops among them.
                let pairLogs = plan.nodes.map { "\(config.nodeDirectory($0.name))/pairs.log" }
                var pairs: [[String: Any]] = []
                eventually {
                    pairs = Self.lines(pairLogs).compactMap { line in
                        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["flow"]
                            as? [String: Any]
                    }
                    return pairs.contains {
                        ($0["source"] as? [String: Any])?["pod_name"] as? String == untrusted.name
                            && $0["verdict"] as? String == "DROPPED"
                    }
                }
                #expect(!pairs.isEmpty)
                #expect(
                    pairs.allSatisfy {
                        Set($0.keys).isSubset(of: ["time", "verdict", "source", "destination", "aggregate"])
                    },
                    "only the grouped fields, the time and the counts: \(pairs.first.map { "\($0.keys)" } ?? "")")
                let counts = pairs.map { flow in
                    ((flow["aggregate"] as? [String: Any]) ?? [:]).values.reduce(0) { $0 + (($1 as? Int) ?? 0) }
                }
                #expect(counts.allSatisfy { $0 >= 1 } && counts.contains { $0 > 1 }, "\(counts)")
                // A node's log with lines in it (each node's file exists from its agent's start,
                // but one whose node saw no flows yet is empty).
                let pairsLog = try #require(pairLogs.first { !Self.lines([$0]).isEmpty })
                let fromPairs = try OspreyBinary.cli.run(["observe", "--input-file", pairsLog, "-o", "jsonpb", "--all"])
                #expect(fromPairs.status == 0, "\(fromPairs.stderr)")
                #expect(fromPairs.stdout.contains("\"aggregate\":{"), "observe --input-file reads aggregated lines")
            }
        }

        @Test("observe --follow prints a new request within a second")
        func follow() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("i"), nodeCount: 2, topology: .bridge, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first { $0.node != loadgen.node })
                let server = Self.socket(config, loadgen.node.name)
                try Self.waitForAgent(server)
                let port = Int.random(in: 42000...42999)
                let observe = Process()
                observe.executableURL = URL(fileURLWithPath: OspreyBinary.cli.path)
                // The port alone is not enough: the lab's other clients on that node pick their
                // ports from the same ephemeral range (one run printed checkout's SYN from 42848).
                observe.arguments = [
                    "observe", "--server", server, "--follow", "--from-pod", "shop/\(loadgen.name)", "--from-port",
                    String(port), "--color", "never",
                ]
                let pipe = Pipe()
                observe.standardOutput = pipe
                let firstLine = Lock<(String, Date)?>(nil)
                pipe.fileHandleForReading.readabilityHandler = { handle in
                    let text = String(decoding: handle.availableData, as: UTF8.self)
                    firstLine.withLock { if $0 == nil, !text.isEmpty { $0 = (text, Date()) } }
                }
                try observe.run()
                defer {
                    observe.terminate()
                    observe.waitUntilExit()
                    pipe.fileHandleForReading.readabilityHandler = nil
                }
                Thread.sleep(forTimeInterval: 1)
                let curl = try LabFixture.exec(
                    loadgen.netns,
                    ["curl", "-s", "-m", "2", "--local-port", String(port), "http://\(frontend.ipv4):80/"])
                // Counted from the end of the request, so a slow curl start on a loaded machine does not count.
                let sent = Date()
                #expect(curl.status == 0)
                let deadline = Date().addingTimeInterval(3)
                while firstLine.withLock({ $0 }) == nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
                let (line, at) = try #require(firstLine.withLock { $0 }, "no flow printed")
                #expect(line.contains("shop/\(loadgen.name):\(port)"))
                #expect(line.contains("TCP Flags: SYN"))
                #expect(at.timeIntervalSince(sent) < 1, "printed \(at.timeIntervalSince(sent)) s after the request")
            }
        }
    }
}
