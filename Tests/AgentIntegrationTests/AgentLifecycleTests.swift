import ClusterInventory
import Datapath
import FlowDecoder
import Foundation
import Lab
import Netns
import TestSupport
import Testing

/// osprey-agent's attachments over its life: killed, restarted, stopped, and pods that come later.
extension AgentIntegration {
    @Suite("Agent lifecycle")
    struct AgentLifecycleTests {
        /// Osprey's programs on each hook of each interface of a node, as the kernel lists them:
        /// "<interface> ingress" → ["tcx osp_tc_pod_ingress"] (tcx links and tc filters alike).
        static func programs(node: String, interfaces: [String]) throws -> [String: [String]] {
            try NetworkNamespace.run(inNamespaceAt: NetworkNamespace.path(named: node)) {
                var result: [String: [String]] = [:]
                for interface in interfaces {
                    let index = Int32(if_nametoindex(interface))
                    let found = index > 0 ? Datapath.ospreyPrograms(onInterface: index) : [:]
                    for hook in ["ingress", "egress"] { result["\(interface) \(hook)"] = found[hook] ?? [] }
                }
                return result
            }
        }

        static func waitUntil(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Double? {
            let start = Date()
            while Date().timeIntervalSince(start) < timeout {
                if try condition() { return Date().timeIntervalSince(start) }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return nil
        }

        @Test(
            "tcx links die with a killed agent; tc filters stay and are replaced in place; tcx replaces them; SIGTERM: none"
        )
        func attachmentsOverRestarts() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("k"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, inventory in
                let node = plan.nodes[0]
                let interfaces = ["eth0"] + plan.pods(on: node).map(\.hostInterface)
                /// Exactly one Osprey program of `kind` on every pod veth's hooks, and none on the
                /// uplink's, whose interface counters are read instead (the kernel keeps a program's
                /// first 15 characters as its name).
                func everyHookOnce(_ kind: String) -> [String: [String]] {
                    Dictionary(
                        uniqueKeysWithValues: interfaces.flatMap { interface in
                            ["ingress", "egress"].map {
                                (
                                    "\(interface) \($0)",
                                    interface == "eth0" ? [] : ["\(kind) \("osp_tc_pod_\($0)".prefix(15))"]
                                )
                            }
                        })
                }
                let none = everyHookOnce("").mapValues { _ in [String]() }
                func current() throws -> [String: [String]] {
                    try Self.programs(node: node.netns, interfaces: interfaces)
                }
                let launch = LabFixture.agentLaunch(plan, node: node)
                func start(_ extra: [String]) throws -> Int32 {
                    let pid = try LabFixture.startAgent(plan, node: node, extra: extra)
                    #expect(LabFixture.servesMetrics(node.netns), "restarted agent serves")
                    return pid
                }
                func killHard(_ pid: Int32) {
                    kill(pid, SIGKILL)
                    _ = Self.waitUntil(5) { !LabController.isRunning(pid) }
                }
                func log() throws -> String { try String(contentsOfFile: launch.logPath, encoding: .utf8) }

                // The lab's agent, on this kernel: tcx links, first on each hook.
                #expect(try current() == everyHookOnce("tcx"))
                let started = try log()
                #expect(started.contains("tc programs attach as tcx links"))
                // libbpf speaks only when something is wrong: loading the programs says nothing.
                #expect(!started.contains("libbpf:"), "\(started)")
                killHard(try #require(inventory.nodes[0].processes.first?.pid))
                let afterKill = try eventually(within: 5) { try current() == none }
                #expect(afterKill, "a killed agent's tcx links go with it: \(String(describing: try? current()))")

                // tc filters outlive a killed agent; the next one replaces them in place.
                let filters = try start(["--disable-tcx"])
                #expect(try current() == everyHookOnce("tc"))
                killHard(filters)
                #expect(try current() == everyHookOnce("tc"), "a killed agent leaves its filters behind")
                // This time from a configuration file, as a ConfigMap would say it.
                let settings = Workloads(plan: plan).agentConfig(for: node)
                let filtersFile = settings.path.replacingOccurrences(of: ".yaml", with: "-filters.yaml")
                try (settings.contents + "\nenable-tcx: false\n").write(
                    toFile: filtersFile, atomically: true, encoding: .utf8)
                let again = try start(["--config", filtersFile])
                #expect(try current() == everyHookOnce("tc"))
                #expect(try log().contains("replacing a filter left by an earlier run"))
                #expect(try log().contains("as cls_bpf filters (--disable-tcx)"))
                killHard(again)

                // A tcx agent removes the stale filters: no packet is counted twice.
                let links = try start([])
                defer { kill(links, SIGKILL) }
                #expect(try current() == everyHookOnce("tcx"))
                #expect(try log().contains("replacing a filter left by an earlier run"))

                kill(links, SIGTERM)
                #expect(Self.waitUntil(10) { !LabController.isRunning(links) } != nil, "SIGTERM stops the agent")
                // The kernel releases closed links a moment later, as after a kill.
                let afterStop = try eventually(within: 5) { try current() == none }
                #expect(afterStop, "\(String(describing: try? current()))")
                let stopped = try log()
                #expect(
                    stopped.contains("stopped; every tc program detached"), "a clean stop, not an error: \(stopped)")
            }
        }

        @Test(
            "a stopping agent writes to its flow log the flows of every event its ring held when it was told to stop"
        )
        func lastFlowsWritten() async throws {
            var config = try LabConfig(
                name: LabFixture.uniqueName("w"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            // Every datagram an event at each veth, and a flow log that does not rotate meanwhile.
            config.agentArguments = ["--per-packet-events", "--export-file-max-size-mb", "500"]
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[0]
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "ledger", in: "billing").first)
                let agent = try #require(LabFixture.agentPID(config, node: node.name))
                let flowLog = "\(config.nodeDirectory(node.name))/flows.log"
                /// The forwarded flows of datagrams from the client to port 9 in the flow log (the
                /// server, which has no socket there, also drops each: flows of their own).
                func datagrams() -> Int {
                    Self.flows(inFlowLog: flowLog).filter { flow in
                        guard
                            flow["verdict"] as? String == "FORWARDED",
                            (flow["source"] as? [String: Any])?["pod_name"] as? String == client.name,
                            let udp = (flow["l4"] as? [String: Any])?["UDP"] as? [String: Any]
                        else { return false }
                        return udp["destination_port"] as? Int == 9
                    }.count
                }
                // The reader runs and the flow log is written: one datagram, at both veths.
                try PodSockets.sendUDP(from: client.netns, to: server.ipv4, port: 9, count: 1, payload: 20)
                #expect(eventually(within: 15) { datagrams() == 2 }, "\(datagrams())")
                // Stopped, the agent reads nothing: the next 2,000 datagrams' events wait in its
                // ring. Told to stop as it goes on, it must hand them all to the flow log first.
                // (Their 6,000 flows, with the drops, fit the exporter's queue of 8,192 even if
                // its writer wrote none before the last.)
                kill(agent, SIGSTOP)
                try PodSockets.sendUDP(from: client.netns, to: server.ipv4, port: 9, count: 2_000, payload: 20)
                kill(agent, SIGTERM)
                kill(agent, SIGCONT)
                #expect(Self.waitUntil(30) { !LabController.isRunning(agent) } != nil, "SIGTERM stops the agent")
                #expect(datagrams() == 2 + 4_000, "every datagram's flows at the client's and the server's veth")
                let text = try String(contentsOfFile: flowLog, encoding: .utf8)
                #expect(!text.contains("\"lost_events\""), "nothing lost on the way out")
            }
        }

        @Test(
            "flow logs to stdout: the agent's standard output is whole jsonpb lines of its node's flows, which observe --input-file reads; its log stays on stderr"
        )
        func flowLogsToStandardOutput() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("o"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[0]
                try #require(LabFixture.stopAgent(config, node: node.name))
                let launch = LabFixture.agentLaunch(plan, node: node)
                // Standard output to the launch's log file, standard error to a file of its own.
                let stderrPath = launch.logPath + ".stderr"
                try LabFixture.startAgent(
                    plan, node: node, prefix: ["sh", "-c", "exec \"$0\" \"$@\" 2> \"\(stderrPath)\""],
                    extra: ["--export-file-path", "stdout"])
                var lines: [Substring] = []
                #expect(
                    eventually(within: 30) {
                        let text = (try? String(contentsOfFile: launch.logPath, encoding: .utf8)) ?? ""
                        // A line still being written is left for the next look.
                        lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                        return lines.contains { $0.contains("\"namespace\":\"shop\"") } && lines.count >= 20
                    }, "\(lines.count) lines")
                #expect(
                    lines.allSatisfy { $0.hasPrefix("{\"flow\":{") || $0.hasPrefix("{\"lost_events\":{") },
                    "\(lines.first { !$0.hasPrefix("{\"flow\":{") } ?? "")")
                #expect(lines.allSatisfy { $0.contains("\"node_name\":\"\(node.name)\"") })
                let log = try String(contentsOfFile: stderrPath, encoding: .utf8)
                #expect(log.contains("tc programs attach"), "the agent's log is on stderr: \(log)")

                let whole = launch.logPath + ".lines"
                try lines.joined(separator: "\n").appending("\n").write(
                    toFile: whole, atomically: true, encoding: .utf8)
                defer { try? FileManager.default.removeItem(atPath: whole) }
                let read = try OspreyBinary.cli.run(["observe", "--input-file", whole, "--namespace", "shop", "--all"])
                #expect(read.status == 0, "\(read.stderr)")
                // One printed line per flow from or to the shop namespace on the agent's stdout.
                let shopFlows = FlowLabTests.flows(inJSONLines: lines.joined(separator: "\n")).filter { flow in
                    ["source", "destination"].contains {
                        (flow[$0] as? [String: Any])?["namespace"] as? String == "shop"
                    }
                }
                #expect(!shopFlows.isEmpty)
                #expect(read.stdout.split(separator: "\n").count == shopFlows.count)
            }
        }

        @Test("a pod created after the agent started is attached and counted within a second")
        func newPodIsCounted() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("n"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[0]
                let netns = "\(config.name)-shop-latecomer"
                let hostSide = "osplatecomer0"
                let host = Host()
                // A pod as a CNI would wire it on a bridge node: namespace, veth, address, route.
                try host.run(["ip", "netns", "add", netns])
                try host.run(
                    [
                        "ip", "-n", node.netns, "link", "add", hostSide, "type", "veth", "peer", "name", "eth0",
                        "netns", netns,
                    ])
                try host.run(["ip", "-n", node.netns, "link", "set", hostSide, "master", "cbr0", "up"])
                try host.run(["ip", "-n", netns, "addr", "add", "10.244.1.200/24", "dev", "eth0"])
                try host.run(["ip", "-n", netns, "link", "set", "eth0", "up"])
                try host.run(["ip", "-n", netns, "route", "add", "default", "via", "10.244.1.1"])

                let attachedAfter = try Self.waitUntil(1) {
                    try Self.programs(node: node.netns, interfaces: [hostSide]).values.allSatisfy { $0.count == 1 }
                }
                #expect(attachedAfter != nil, "attached within a second of the veth's creation")
                let before = try LabFixture.scrape(node.netns)
                let frontend = try #require(plan.pods(of: "frontend", in: "shop").first)
                let socket = try #require(
                    try PodSockets.connectTCP(from: netns, to: frontend.ipv4, port: 80, timeout: 2))
                close(socket)
                var after = before
                func grew(_ flag: String, _ direction: String) -> Bool {
                    let labels = ["flag": flag, "direction": direction]
                    return after.value("networkobservability_tcp_flag_counters", labels)
                        > before.value("networkobservability_tcp_flag_counters", labels)
                }
                eventually {
                    after = (try? LabFixture.scrape(node.netns)) ?? before
                    return grew("SYNACK", "egress") && grew("SYNACK", "ingress")
                }
                // The new pod's SYN leaves it (egress) and enters the frontend (ingress); the SYN-ACK
                // goes the other way.
                #expect(grew("SYN", "egress") && grew("SYN", "ingress"))
                #expect(grew("SYNACK", "egress") && grew("SYNACK", "ingress"))
                #expect(after.value("osprey_agent_interfaces_watched", ["role": "pod"]) == Double(plan.pods.count + 1))
                #expect(after.value("osprey_agent_namespaces_watched") == Double(plan.pods.count + 2))
                #expect(!after.series("networkobservability_interface_stats", ["interface_name": hostSide]).isEmpty)
            }
        }

        @Test(
            "an agent that starts while a pod asks DNS query after query calls no answered query unanswered"
        )
        func startedDuringDNS() async throws {
            let config = try LabConfig(
                name: LabFixture.uniqueName("s"), nodeCount: 1, agentPath: OspreyBinary.agent.path)
            try await LabFixture.withLab(config) { plan, _ in
                let node = plan.nodes[0]
                // Only this test's queries (from ports none of the workloads uses: DNSAsker).
                LabController.stopProcesses(inNamespaces: plan.clientPods.map(\.netns))
                let client = try #require(plan.pods(of: "loadgen", in: "shop").first)
                let server = try #require(plan.pods(of: "coredns", in: "kube-system").first)
                #expect(LabFixture.stopAgent(config, node: node.name))
                let name = "osp-start-probe.shop.svc.cluster.local"
                let asker = DNSAsker(name: name, server: server.ipv4, netns: client.netns)
                asker.start()
                defer { asker.stop() }
                let agent = try LabFixture.startAgent(plan, node: node)
                defer { kill(agent, SIGTERM) }
                // Each hook is attached in a moment of its own: the queries go on through them and
                // for a second after the agent serves.
                #expect(LabFixture.servesMetrics(node.netns))
                Thread.sleep(forTimeInterval: 1)
                let (asked, lost) = asker.stop()
                let stopped = Date()
                #expect(asked > 100 && lost.count < asked / 100, "\(lost.count) of \(asked) queries got no answer")

                // A query is reported unanswered when the agent's DNS timeout has passed since it
                // was sent: the last ones' time has come 2 s after that.
                Thread.sleep(until: stopped.addingTimeInterval(FlowDecoder.defaultDNSTimeout + 2))
                let records = Self.flows(inFlowLog: "\(config.nodeDirectory(node.name))/flows.log").filter {
                    FlowLabTests.string($0, "l7", "dns", "query") == name + "."
                }
                // Reported unanswered though the asker had its answer.
                let wronged = records.filter { record in
                    let port = FlowLabTests.string(record, "l4", "UDP", "source_port").flatMap { UInt16($0) }
                    return (record["Summary"] as? String ?? "").hasSuffix("(no response)")
                        && !lost.contains(port ?? 0)
                }
                #expect(
                    wronged.isEmpty,
                    "answered queries reported unanswered: \(wronged.prefix(5).map { $0["Summary"] ?? "" })")
                #expect(records.count > 50, "the agent reported the queries: \(records.count) records")
            }
        }

        /// The flows in a node's flow log.
        static func flows(inFlowLog path: String) -> [[String: Any]] {
            FlowLabTests.flows(inJSONLines: (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
        }
    }

}

/// osprey-agent refusing bad input: one sentence, non-zero exit, nothing loaded.
@Suite("osprey-agent: bad input")
struct AgentBadInputTests {
    @Test("an unknown flag is rejected with usage")
    func unknownFlag() throws {
        let result = try OspreyBinary.agent.run(["--bogus"])
        #expect(result.status == 64)
        #expect(result.stderr.hasPrefix("Error: Unknown option '--bogus'"))
    }

    @Test("a listen address that is not this machine's is named")
    func unreachableListenAddress() throws {
        let result = try OspreyBinary.agent.run(["--metrics-address", "203.0.113.7:9965"])
        #expect(result.status == 1)
        #expect(
            result.stderr
                == "osprey-agent: Cannot listen on 203.0.113.7:9965: Cannot assign requested address; choose another --metrics-address.\n"
        )
        let malformed = try OspreyBinary.agent.run(["--metrics-address", "9965"])
        #expect(
            malformed.stderr
                == "osprey-agent: Listen address '9965' is not host:port (e.g. 0.0.0.0:9965 or [::]:9965).\n")
    }

    @Test("a configuration file: its settings apply, the command line wins, and a bad one is one sentence naming it")
    func configurationFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-config-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func file(_ name: String, _ contents: String) throws -> String {
            let path = "\(directory)/\(name)"
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        // The file's value is used (the agent names the address it cannot listen on)…
        let settings = try file("agent.yaml", "metrics-address: 203.0.113.7:9965\nenablePodLevel: true\n")
        let applied = try OspreyBinary.agent.run(["--config", settings])
        #expect(applied.status == 1)
        #expect(
            applied.stderr
                == "osprey-agent: Cannot listen on 203.0.113.7:9965: Cannot assign requested address; choose another --metrics-address.\n"
        )
        // …unless the command line says otherwise.
        let overridden = try OspreyBinary.agent.run(["--config=\(settings)", "--metrics-address", "9965"])
        #expect(
            overridden.stderr
                == "osprey-agent: Listen address '9965' is not host:port (e.g. 0.0.0.0:9965 or [::]:9965).\n")
        // Values are checked as flags are.
        let context = try file("context.yaml", "pod-level-context: far\n")
        #expect(
            try OspreyBinary.agent.run(["--config", context]).stderr
                == "osprey-agent: --pod-level-context must be `local` or `remote`, not `far`.\n")
        let aggregation = try OspreyBinary.agent.run(["--monitor-aggregation", "high"])
        #expect(aggregation.status != 0)
        #expect(
            aggregation.stderr
                == "osprey-agent: --monitor-aggregation must be none, low, medium or maximum, not `high`.\n")

        let cases: [(String, String)] = [
            (
                "bogus: 1\n",
                "`bogus` is not a setting of osprey-agent; use the flag names of `osprey-agent --help` without dashes, or Retina's enablePodLevel/remoteContext."
            ),
            ("remoteContext: maybe\n", "remoteContext must be true or false."),
            ("uplink: {a: b}\n", "uplink must be a value or a list, not a mapping."),
        ]
        for (contents, sentence) in cases {
            let path = try file("bad.yaml", contents)
            let result = try OspreyBinary.agent.run(["--config", path])
            #expect(result.status == 1, "\(contents)")
            #expect(result.stderr == "osprey-agent: In \(path), \(sentence)\n")
        }
        let notYAML = try file("list.yaml", "- a\n- b\n")
        #expect(
            try OspreyBinary.agent.run(["--config", notYAML]).stderr
                == "osprey-agent: The configuration file \(notYAML) must be a mapping of flag names to values (e.g. metrics-flavour: both).\n"
        )
        #expect(
            try OspreyBinary.agent.run(["--config", "\(directory)/missing.yaml"]).stderr
                == "osprey-agent: Cannot read the configuration file \(directory)/missing.yaml; check --config.\n")
    }

    @Test("a flow log path it may not write is named in one sentence, before anything is attached")
    func flowLogPathDenied() throws {
        // sysfs refuses to create files, even for root: the agent's own permission-denied case.
        let denied = try OspreyBinary.agent.run([
            "--metrics-address", "127.0.0.1:19966", "--hubble-listen-address", "", "--export-file-path",
            "/sys/osp-flows.log",
        ])
        #expect(denied.status == 1)
        #expect(
            denied.stderr
                == "osprey-agent: cannot write flow logs to /sys/osp-flows.log: Permission denied; check --export-file-path and that its directory exists and is writable.\n"
        )
    }

    @Test("a Hubble socket another process serves on, or a path that is no socket, is refused and left as it is")
    func hubbleSocketPathTaken() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-sock-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/hubble.sock"
        let listener = try UnixListener(path: path)
        defer { listener.close() }
        let served = try OspreyBinary.agent.run(["--metrics-address", "127.0.0.1:19965", "--hubble-socket-path", path])
        #expect(served.status == 1)
        #expect(
            served.stderr
                == "osprey-agent: Cannot listen on \(path): another process is serving on \(path); choose another --hubble-socket-path.\n"
        )
        #expect(UnixListener.accepts(path), "the other process's socket must still be there")

        let file = "\(directory)/notes.txt"
        try "keep me".write(toFile: file, atomically: true, encoding: .utf8)
        let notSocket = try OspreyBinary.agent.run([
            "--metrics-address", "127.0.0.1:19965", "--hubble-socket-path", file,
        ])
        #expect(notSocket.status == 1)
        #expect(
            notSocket.stderr
                == "osprey-agent: Cannot listen on \(file): \(file) exists and is not a socket; choose another --hubble-socket-path.\n"
        )
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me")

        let long = "\(directory)/" + String(repeating: "x", count: 120) + "/hubble.sock"
        let tooLong = try OspreyBinary.agent.run(["--metrics-address", "127.0.0.1:19965", "--hubble-socket-path", long])
        #expect(
            tooLong.stderr
                == "osprey-agent: Cannot listen on \(long): the path is longer than a unix socket's 107 bytes; choose another --hubble-socket-path.\n"
        )
        #expect(!FileManager.default.fileExists(atPath: (long as NSString).deletingLastPathComponent))

        let wrongPort = try OspreyBinary.agent.run([
            "--metrics-address", "127.0.0.1:19965", "--hubble-listen-address", "203.0.113.7:4244",
        ])
        #expect(
            wrongPort.stderr
                == "osprey-agent: Cannot listen on 203.0.113.7:4244: Cannot assign requested address; choose another --hubble-listen-address.\n"
        )
    }

    @Test("without capabilities it says which are missing")
    func missingCapabilities() throws {
        let result = try OspreyBinary.agent.run([], asUser: 65534)
        #expect(result.status == 1)
        #expect(
            result.stderr
                == "osprey-agent: osprey-agent needs CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF to load and attach eBPF programs; run it as root or grant the missing capabilities.\n"
        )
    }
}

/// A unix socket some other process listens on (the test plays that process).
struct UnixListener {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = Self.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard fd >= 0, bound == 0, listen(fd, 4) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    func close() { _ = Glibc.close(fd) }

    /// Whether something accepts connections on `path`.
    static func accepts(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { _ = Glibc.close(fd) }
        var address = Self.address(path)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8).prefix($0.count - 1)) }
        return address
    }
}
