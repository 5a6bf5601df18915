import Foundation
import Lab
import TestSupport
import Testing

/// The shipped scrape configs, dashboards and alerting rules against a real Prometheus
/// scraping a real lab.
extension AgentIntegration {
    @Suite("Prometheus, dashboards and alerts on a lab")
    struct PrometheusLabTests {
        static let deploy = OspreyBinary.packageRoot + "/deploy"

        /// Every panel query of every shipped dashboard, with the dashboard's variables filled in.
        static func panelQueries(cluster: String) throws -> [(dashboard: String, panel: String, expr: String)] {
            let directory = deploy + "/grafana"
            var queries: [(String, String, String)] = []
            for file in try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            where file.hasSuffix(".json") {
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(file)"))
                let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
                let variables = ((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]]) ?? []
                #expect(
                    Set(variables.compactMap { $0["name"] as? String }) == ["datasource", "cluster", "Nodes"], "\(file)"
                )
                #expect((dashboard["schemaVersion"] as? Int ?? 0) >= 36, "\(file)")
                for panel in dashboard["panels"] as? [[String: Any]] ?? [] {
                    for target in panel["targets"] as? [[String: Any]] ?? [] {
                        guard let expr = target["expr"] as? String else { continue }
                        let filled = expr.replacingOccurrences(of: "$cluster", with: cluster)
                            .replacingOccurrences(of: "$Nodes", with: ".*")
                            .replacingOccurrences(of: "$__rate_interval", with: "30s")
                        queries.append((file, panel["title"] as? String ?? "?", filled))
                    }
                }
            }
            return queries
        }

        static func query(_ netns: String, _ path: String, _ parameters: [String] = []) throws -> [String: Any] {
            let result = try LabFixture.exec(
                netns,
                ["curl", "-s", "-m", "5", "http://127.0.0.1:\(LabConfig.prometheusPort)\(path)"]
                    + parameters.flatMap { ["--data-urlencode", $0] })
            let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return try #require(object, "Prometheus answered \(path) with \(result.stdout)")
        }

        /// Where Retina's dashboards are (upstream data, not Osprey's: read in place).
        static let retinaDashboardDirectories = [
            ProcessInfo.processInfo.environment["OSPREY_RETINA_DASHBOARDS"],
            OspreyBinary.packageRoot + "/../shared/reference/retina-dashboards",
            "/work/shared/reference/retina-dashboards",
        ].compactMap { $0 }

        /// Panels of Retina's dashboards that cannot have data here, and why.
        static let retinaExceptions: [String: [String: String]] = [
            "clusters.json": [
                "Packets Dropped - Unknown":
                    "direction=\"unknown\" is a drop without a device; every drop in the lab has one",
                "Windows TCP RST Packets":
                    "Windows-only in Retina, and it asks for flag=\"rst\": no Retina emits lower-case flags",
                "Windows TCP SYN-ACK Packets":
                    "Windows-only in Retina, and it asks for flag=\"synack\": no Retina emits lower-case flags",
                "Rx Cache Full error": "a NIC driver's ethtool counter (rxN_cache_full), not a Linux one",
                "Tx No Op Errors": "a NIC driver's ethtool counter (txN_nop), not a Linux one",
                "Rx Comp Full Errors": "a NIC driver's ethtool counter (rx_comp_full), not a Linux one",
                "Tx Send Full Errors": "a NIC driver's ethtool counter (tx_send_full), not a Linux one",
            ]
        ]

        /// Panels of Retina's dashboards that may have data here or not, and why: checked neither way.
        static let retinaEitherWay: [String: [String: String]] = [
            "hubble-pod-flows-namespace.json": [
                "Pods Missing SYN-ACKs (past 10 minutes)": missingSYNACKs
            ],
            "hubble-pod-flows-workload.json": [
                "Pods Missing SYN-ACKs (past 10 minutes)": missingSYNACKs
            ],
        ]
        static let missingSYNACKs =
            "pods whose SYNs outnumber their SYN-ACKs by 0.01/s: none on a healthy lab (upstream PromQL `A - B` "
            + "keeps only pods on both sides, so pods never answered drop out), but one SYN retransmitted under "
            + "load before its SYN-ACK came is enough (seen in a make test, 2026-12-04)"

        /// Panels that show only what is non-zero: judged by their series (the lab's
        /// interfaces drop nothing).
        static let retinaNonZeroPanels: Set<String> = ["Dropped Rx Packets", "Dropped Tx Packets"]

        /// What is wrong with Retina's dashboards on this Prometheus: panels without data but
        /// the named exceptions (and those either way), and exceptions that have data (the list
        /// is out of date).
        static func retinaDashboards(prometheus: GrafanaDashboard.Prometheus) throws -> [String] {
            let found = retinaDashboardDirectories.first { FileManager.default.fileExists(atPath: $0) }
            let directory = try #require(
                found, "Retina's dashboards are not at \(retinaDashboardDirectories); set OSPREY_RETINA_DASHBOARDS")
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }
            #expect(files.count == 6, "\(files)")
            var problems: [String] = []
            for file in files.sorted() {
                let dashboard = try GrafanaDashboard(path: "\(directory)/\(file)")
                let empty = try dashboard.emptyPanels(prometheus: prometheus, withoutThreshold: retinaNonZeroPanels)
                let excused = retinaExceptions[file] ?? [:]
                let eitherWay = retinaEitherWay[file] ?? [:]
                let unexcused = empty.filter { excused[$0] == nil && eitherWay[$0] == nil }
                let filled = Set(excused.keys).subtracting(empty)
                if !unexcused.isEmpty { problems.append("\(file): panels without data: \(unexcused)") }
                if !filled.isEmpty {
                    problems.append("\(file): excused panels have data now; drop them from the list: \(filled)")
                }
                print("\(file): \(dashboard.panels.count - empty.count) of \(dashboard.panels.count) panels with data")
            }
            return problems
        }

        @Test("every dashboard panel has data, rules load, drop/DNS/lost-events alerts fire; promtool checks configs")
        func dashboardsAndAlerts() async throws {
            var config = try LabConfig(
                name: LabFixture.uniqueName("p"), nodeCount: 2, topology: .bridge, agentPath: OspreyBinary.agent.path)
            config.prometheusRules = Self.deploy + "/prometheus/osprey-alerts.yaml"
            try await LabFixture.withLab(config) { plan, _ in
                let prometheus = plan.nodes[0].netns
                // A follower that never reads: its agent must count what it cannot deliver as lost.
                let socket = "unix://\(config.nodeDirectory(plan.nodes[0].name))/hubble.sock"
                let marker = "osp-stall-\(config.name)"
                let stalled = Process()
                stalled.executableURL = URL(fileURLWithPath: "/bin/bash")
                stalled.arguments = [
                    "-c",
                    "\"$0\" observe --follow -o jsonpb --server \(socket) | (exec -a \(marker) sleep 600)",
                    OspreyBinary.cli.path,
                ]
                try stalled.run()
                defer {
                    // The shell and the pipeline it started, by pid.
                    killProcessTree(stalled.processIdentifier)
                    stalled.waitUntilExit()
                }
                // …and a burst of flows it cannot take: 30,000 UDP datagrams, each from a new port.
                let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first { $0.node == plan.nodes[0] })
                // Prometheus must have seen the counter before it jumps, or `increase` has nothing to compare.
                let seen = Date().addingTimeInterval(30)
                while Date() < seen {
                    let answer = try Self.query(
                        prometheus, "/api/v1/query", ["query=hubble_lost_events_total{source=\"hubble_ring_buffer\"}"])
                    if ((answer["data"] as? [String: Any])?["result"] as? [Any] ?? []).count == plan.nodes.count {
                        break
                    }
                    Thread.sleep(forTimeInterval: 1)
                }
                _ = try LabFixture.exec(
                    loadgen.netns,
                    ["bash", "-c", "for i in $(seq 30000); do echo x > /dev/udp/\(frontend.ipv4)/9; done 2>/dev/null"])
                // Traffic to a pod from outside every pod (the node itself), which Retina's "All
                // Outgoing pps per pod" shows by source IP. Without it only the link-local
                // multicast of interfaces coming up would, if the agent was attached in time.
                _ = try LabFixture.exec(
                    plan.nodes[0].netns,
                    ["bash", "-c", "for i in $(seq 5); do echo x > /dev/udp/\(frontend.ipv4)/9; done 2>/dev/null"])

                let queries = try Self.panelQueries(cluster: config.name)
                #expect(queries.count >= 40)
                // Rates need a few scrapes (every 5 s); the DNS timeout adds 5 s to unanswered queries.
                var empty: [String] = []
                let deadline = Date().addingTimeInterval(90)
                repeat {
                    Thread.sleep(forTimeInterval: 5)
                    empty = []
                    for query in queries {
                        let answer = try Self.query(prometheus, "/api/v1/query", ["query=\(query.expr)"])
                        #expect(answer["status"] as? String == "success", "\(query.panel): \(answer)")
                        let result = (answer["data"] as? [String: Any])?["result"] as? [Any] ?? []
                        if result.isEmpty { empty.append("\(query.dashboard) / \(query.panel)") }
                    }
                } while !empty.isEmpty && Date() < deadline
                #expect(empty.isEmpty, "panels without data: \(empty)")

                // Retina's own dashboards, as a user moving from Retina imports them. Rates over
                // ten minutes need a few drops in the lab's first minute: a while is allowed.
                var problems: [String] = []
                let retinaDeadline = Date().addingTimeInterval(60)
                repeat {
                    problems = try Self.retinaDashboards { path, parameters in
                        try Self.query(prometheus, path, parameters)
                    }
                    if !problems.isEmpty { Thread.sleep(forTimeInterval: 5) }
                } while !problems.isEmpty && Date() < retinaDeadline
                #expect(problems.isEmpty, "\(problems)")

                let rules = try Self.query(prometheus, "/api/v1/rules")
                let groups = ((rules["data"] as? [String: Any])?["groups"] as? [[String: Any]]) ?? []
                let names = groups.flatMap { ($0["rules"] as? [[String: Any]]) ?? [] }.compactMap {
                    $0["name"] as? String
                }
                #expect(names.count == 7, "\(names)")

                let wanted: Set<String> = [
                    "OspreyPolicyDrops", "OspreyDNSErrors", "OspreyDNSQueriesUnanswered", "OspreyLostEvents",
                ]
                var firing: Set<String> = []
                let alertDeadline = Date().addingTimeInterval(90)
                repeat {
                    let alerts = try Self.query(prometheus, "/api/v1/alerts")
                    let list = ((alerts["data"] as? [String: Any])?["alerts"] as? [[String: Any]]) ?? []
                    firing = Set(
                        list.filter { $0["state"] as? String == "firing" }.compactMap {
                            ($0["labels"] as? [String: String])?["alertname"]
                        })
                    if wanted.isSubset(of: firing) { break }
                    Thread.sleep(forTimeInterval: 5)
                } while Date() < alertDeadline
                let lost = try Self.query(prometheus, "/api/v1/query", ["query=hubble_lost_events_total"])
                #expect(wanted.isSubset(of: firing), "firing: \(firing); \(lost)")
                #expect(!firing.contains("OspreyAgentDown"))
            }
        }

        @Test("promtool accepts the rules and every scrape configuration Debian's Prometheus can read")
        func promtool() throws {
            let host = Host()
            let rules = try host.execute(["promtool", "check", "rules", Self.deploy + "/prometheus/osprey-alerts.yaml"])
            #expect(rules.status == 0, "\(rules.stdout)\(rules.stderr)")
            #expect(rules.stdout.contains("SUCCESS: 7 rules found"))
            // The lab's generated configuration (static targets, honor_labels).
            let plan = LabPlan(config: try LabConfig(name: "osptst", nodeCount: 3))
            let launch = Workloads(plan: plan).prometheusLaunch(
                rules: try String(
                    contentsOfFile: Self.deploy + "/prometheus/osprey-alerts.yaml", encoding: .utf8))
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-prom-\(UUID())").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            for file in launch.files {
                try file.contents.write(
                    toFile: "\(directory)/\((file.path as NSString).lastPathComponent)", atomically: true,
                    encoding: .utf8)
            }
            let lab = try host.execute(["promtool", "check", "config", "\(directory)/prometheus.yml"])
            #expect(lab.status == 0, "\(lab.stdout)\(lab.stderr)")
            // Kubernetes: Debian builds Prometheus without Kubernetes service discovery, so its promtool
            // can only reject `kubernetes_sd_configs` itself; anything else wrong is still caught.
            let kubernetes = try host.execute([
                "promtool", "check", "config", Self.deploy + "/prometheus/prometheus-kubernetes.yaml",
            ])
            let output = kubernetes.stdout + kubernetes.stderr
            if kubernetes.status != 0 {
                let problems = output.split(separator: "\n").filter {
                    $0.contains("not found in type") || $0.contains("FAILED")
                }
                #expect(
                    problems.allSatisfy { $0.contains("kubernetes_sd_configs") || $0.contains("unmarshal errors") },
                    "\(output)")
                #expect(output.contains("field kubernetes_sd_configs not found"), "\(output)")
            }
        }
    }
}
