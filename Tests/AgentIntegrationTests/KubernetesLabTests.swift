import ClusterInventory
import Foundation
import Lab
import TestSupport
import Testing

extension AgentIntegration {
    /// The lab's Kubernetes API as users and agents meet it: kubectl on the host, agents that
    /// take pods from it, pods that come and go with `lab scale`.
    @Suite("Kubernetes on a lab")
    struct KubernetesLab {
        static func config(_ tag: Character) throws -> LabConfig {
            var config = try LabConfig(
                name: LabFixture.uniqueName(tag), nodeCount: 2, agentPath: OspreyBinary.agent.path)
            config.apiServerPath = OspreyBinary.cli.path
            config.apiServerHostPort = try Browser.freePort()
            return config
        }

        @Test("kubectl on the host lists the lab; every agent has every pod, Service and node from the API")
        func kubectlAndAgents() async throws {
            let config = try Self.config("k")
            try await LabFixture.withLab(config) { plan, inventory in
                let result = try Host().execute([
                    "kubectl", "--kubeconfig", config.kubeconfigPath, "--cache-dir",
                    config.stateDirectory + "/kubecache",
                    "get", "pods", "-A", "-o", "wide",
                ])
                #expect(result.status == 0, "\(result.stderr)")
                let lines = result.stdout.split(separator: "\n").map(String.init)
                #expect(lines.count == inventory.pods.count + 1)
                for pod in inventory.pods {
                    let fields = [pod.namespace, pod.name, pod.ips[0], pod.node]
                    let row = lines.first { line in
                        let columns = line.split(separator: " ").map(String.init)
                        return fields.allSatisfy(columns.contains)
                    }
                    #expect(row != nil, "\(pod.qualifiedName) missing from kubectl's list")
                }
                for node in plan.nodes {
                    let counts = try #require(
                        settled {
                            let metrics = try LabFixture.scrape(node.netns)
                            return ["pods", "services", "endpointslices", "nodes"].map {
                                metrics.value("osprey_agent_kubernetes_objects", ["kind": $0])
                            }
                        } as [Double]?)
                    let expected: [Double] = [
                        Double(inventory.pods.count), Double(inventory.services.count),
                        Double(inventory.services.count * 2), Double(inventory.nodes.count),
                    ]
                    #expect(counts == expected)
                }
            }
        }

        /// Flows to `ip` from the agent of `node`: (time, destination pod name).
        static func flows(to ip: String, config: LabConfig, node: String) throws -> [(time: Date, pod: String)] {
            let socket = "unix://\(config.nodeDirectory(node))/hubble.sock"
            let result = try OspreyBinary.cli.run([
                "observe", "--server", socket, "--last", "2000", "--to-ip", ip, "-o", "jsonpb",
            ])
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return result.stdout.split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let flow = object["flow"] as? [String: Any], let text = flow["time"] as? String,
                    let time = formatter.date(
                        from: text.replacingOccurrences(
                            of: #"\.(\d{6})\d+Z"#, with: ".$1Z", options: .regularExpression))
                else { return nil }
                return (time, (flow["destination"] as? [String: Any])?["pod_name"] as? String ?? "")
            }
        }

        /// The lab's API server process (from its pid file).
        static func apiServerPID(_ config: LabConfig) -> Int32? {
            let path = "\(config.kubernetesDirectory)/apiserver.pid.osprey"
            return (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
                Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }

        /// Requests from a pod to `ip` every 100 ms for `seconds`.
        static func call(_ ip: String, from netns: String, seconds: Double) throws {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                _ = try LabFixture.curl(from: netns, "http://\(ip)/", timeout: 1)
                Thread.sleep(forTimeInterval: 0.1)
            }
        }

        @Test(
            "lab scale: a new pod's flows carry its name within 1 s of it answering; its IP, reused, names the new pod")
        func scaledPods() async throws {
            let config = try Self.config("s")
            try await LabFixture.withLab(config) { plan, _ in
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let controller = LabController()

                let grown = try controller.scale(
                    name: config.name, stateRoot: config.stateRoot, deployment: "frontend", replicas: 3)
                let added = try #require(grown.added.first)
                #expect(grown.added.count == 1 && grown.removed.isEmpty)
                let answering = Date()  // scale returns once the pod listens
                try Self.call(added.ipv4, from: client.netns, seconds: 2.5)
                let flows = try Self.flows(to: added.ipv4, config: config, node: added.node.name)
                let settled = flows.filter { $0.time >= answering.addingTimeInterval(1) }
                #expect(!settled.isEmpty)
                #expect(settled.allSatisfy { $0.pod == added.name }, "\(settled.filter { $0.pod != added.name })")

                // Scaled down and up again: a new pod, named anew, on the same address.
                let shrunk = try controller.scale(
                    name: config.name, stateRoot: config.stateRoot, deployment: "frontend", replicas: 2)
                #expect(shrunk.removed.map(\.name) == [added.name])
                let regrown = try controller.scale(
                    name: config.name, stateRoot: config.stateRoot, deployment: "frontend", replicas: 3)
                let successor = try #require(regrown.added.first)
                #expect(successor.ipv4 == added.ipv4 && successor.name != added.name)
                let reused = Date()
                try Self.call(successor.ipv4, from: client.netns, seconds: 2.5)
                let later = try Self.flows(to: successor.ipv4, config: config, node: successor.node.name)
                    .filter { $0.time >= reused.addingTimeInterval(1) }
                #expect(!later.isEmpty)
                #expect(later.allSatisfy { $0.pod == successor.name }, "\(later.filter { $0.pod != successor.name })")
                // The flows of the first pod keep its name.
                let earlier = try Self.flows(to: added.ipv4, config: config, node: added.node.name)
                    .filter { $0.time >= answering.addingTimeInterval(1) && $0.time < reused }
                #expect(!earlier.isEmpty && earlier.allSatisfy { $0.pod == added.name })
            }
        }

        @Test(
            "the Kubernetes API unreachable when an agent starts: it serves flows at once, says so, and names pods when the API is back"
        )
        func apiServerDownAtStart() async throws {
            var config = try Self.config("d")
            config.apiServerHostPort = nil
            try await LabFixture.withLab(config) { plan, inventory in
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first)
                let node = frontend.node
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let server = try #require(Self.apiServerPID(config))
                kill(server, SIGKILL)
                try #require(LabFixture.stopAgent(config, node: node.name, signal: SIGKILL, timeout: 5))

                let launch = LabFixture.agentLaunch(plan, node: node)
                try LabFixture.startAgent(plan, node: node)
                #expect(LabFixture.servesMetrics(node.netns), "the agent serves without its metadata source")
                // Flows from the start, by address only: nothing names them yet.
                // (Held at most 5 s for the source's first lists, then by address only.)
                let outage = Date()
                try Self.call(frontend.ipv4, from: client.netns, seconds: 1.5)
                var unnamed: [(time: Date, pod: String)] = []
                #expect(
                    try eventually(within: 10) {
                        unnamed = try Self.flows(to: frontend.ipv4, config: config, node: node.name).filter {
                            $0.time >= outage
                        }
                        return !unnamed.isEmpty
                    })
                #expect(unnamed.allSatisfy { $0.pod.isEmpty }, "\(unnamed)")
                var log = ""
                #expect(
                    try eventually(within: 20) {
                        log = try String(contentsOfFile: launch.logPath, encoding: .utf8)
                        return log.contains("The Kubernetes API has not answered the first lists in 5 s")
                    }, "\(log)")

                let restarted = Workloads(plan: plan).apiServerLaunch(ospreyPath: try #require(config.apiServerPath))
                _ = try Host().launchDetached(restarted.command, logPath: restarted.logPath, pidPath: restarted.pidPath)
                #expect(
                    try eventually(within: 30) {
                        try LabFixture.scrape(node.netns).value("osprey_agent_kubernetes_objects", ["kind": "pods"])
                            == Double(inventory.pods.count)
                    })
                let back = Date()
                try Self.call(frontend.ipv4, from: client.netns, seconds: 1.5)
                let named = try Self.flows(to: frontend.ipv4, config: config, node: node.name).filter {
                    $0.time >= back
                }
                #expect(!named.isEmpty && named.allSatisfy { $0.pod == frontend.name }, "\(named)")
            }
        }

        @Test("the Kubernetes API goes away mid-run: agents keep naming flows, say so, and catch up when it is back")
        func apiServerOutage() async throws {
            var config = try Self.config("o")
            config.apiServerHostPort = nil
            try await LabFixture.withLab(config) { plan, _ in
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first)
                let node = frontend.node
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let pid = try #require(Self.apiServerPID(config))
                func errors() throws -> Double {
                    try LabFixture.scrape(node.netns).value("osprey_agent_kubernetes_errors_total", ["kind": "pods"])
                }
                let errorsBefore = try errors()
                kill(pid, SIGKILL)
                // The agent notices (its watch ends, its reconnects fail) and keeps going.
                #expect(try eventually(within: 20) { try errors() > errorsBefore })
                let outage = Date()
                try Self.call(frontend.ipv4, from: client.netns, seconds: 1.5)
                let named = try Self.flows(to: frontend.ipv4, config: config, node: node.name).filter {
                    $0.time >= outage
                }
                #expect(!named.isEmpty && named.allSatisfy { $0.pod == frontend.name }, "\(named)")
                let log = try String(
                    contentsOfFile: config.agentLogPath(node.name), encoding: .utf8)
                #expect(
                    log.contains("Kubernetes API https://\(plan.nodes[0].ipv4):6443: pods:") && log.contains("retrying")
                )

                // Back (a new server process: new resourceVersions): the agents list again and
                // follow changes made since.
                let server = Workloads(plan: plan).apiServerLaunch(ospreyPath: try #require(config.apiServerPath))
                _ = try Host().launchDetached(server.command, logPath: server.logPath, pidPath: server.pidPath)
                let grown = try LabController().scale(
                    name: config.name, stateRoot: config.stateRoot, deployment: "frontend", replicas: 3)
                let added = try #require(grown.added.first)
                #expect(
                    try eventually(within: 30) {
                        try LabFixture.scrape(added.node.netns).value(
                            "osprey_agent_kubernetes_objects", ["kind": "pods"]) == Double(grown.inventory.pods.count)
                    })
                let back = Date()
                try Self.call(added.ipv4, from: client.netns, seconds: 1.5)
                let flows = try Self.flows(to: added.ipv4, config: config, node: added.node.name).filter {
                    $0.time >= back
                }
                #expect(!flows.isEmpty && flows.allSatisfy { $0.pod == added.name }, "\(flows)")
            }
        }
    }
}
