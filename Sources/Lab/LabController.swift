import ClusterInventory
import Foundation

/// What `lab down` removed.
public struct TeardownReport: Sendable, Equatable {
    public var namespaces: [String] = []
    public var processes: Int = 0
    public var files: [String] = []

    public var isEmpty: Bool { namespaces.isEmpty && processes == 0 && files.isEmpty }
}

/// Builds, inspects and removes labs. `up` either finishes or removes what it made.
public struct LabController: Sendable {
    public let host: Host
    /// Where `ip netns` keeps its named namespaces.
    static let netnsDirectory = "/run/netns"

    public init(host: Host = Host()) { self.host = host }

    /// Builds the lab and returns its inventory (also written to `config.inventoryPath`).
    ///
    /// `progress` receives one short line per phase. If anything fails, everything created so
    /// far is removed before the error is thrown.
    @discardableResult
    public func up(_ config: LabConfig, progress: (String) -> Void = { _ in }) throws(LabError) -> Inventory {
        try Self.requireRoot()
        for (tool, package) in LabTools.required where host.which(tool) == nil {
            throw .missingTool(tool: tool, package: package)
        }
        let leftovers = existingParts(of: config.name, stateRoot: config.stateRoot)
        guard leftovers.isEmpty else { throw .alreadyUp(name: config.name, found: leftovers) }

        let plan = LabPlan(config: config)
        do {
            return try build(plan, progress: progress)
        } catch {
            progress("lab up failed; removing what it created")
            _ = try? down(name: config.name, stateRoot: config.stateRoot)
            throw error
        }
    }

    private func build(_ plan: LabPlan, progress: (String) -> Void) throws(LabError) -> Inventory {
        let config = plan.config
        try createDirectory(config.stateDirectory)
        progress("creating \(plan.namespaces.count) network namespaces (\(config.topology.rawValue) topology)")
        for step in NetworkSetup(plan: plan).steps { try host.run(step.argv, input: step.input) }

        progress("starting \(plan.pods.count) pods")
        var processes: [String: [ProcessRecord]] = [:]
        var uids: [String: String] = [:]
        try start(Workloads(plan: plan).launches(), processes: &processes, uids: &uids)
        // Agents read the inventory from their start: write it now, again once they run (the
        // same creation times both times: a pod is not new again because its agent started).
        let started = Date()
        do { try plan.inventory(uids: uids, processes: processes, now: started).write(to: config.inventoryPath) } catch
        {
            throw .fileFailed(path: config.inventoryPath, reason: "\(error)")
        }
        if config.tls || config.apiServerPath != nil {
            progress("creating a throwaway CA and TLS certificates")
            try LabCertificates(config: config).create(with: host)
        }
        if let ospreyPath = config.apiServerPath {
            try startAPIServer(plan, ospreyPath: ospreyPath, processes: &processes, progress: progress)
        }
        if let agentPath = config.agentPath {
            progress("starting osprey-agent on \(plan.nodes.count) nodes")
            for node in plan.nodes {
                let agent = Workloads(plan: plan).agentLaunch(for: node, agentPath: agentPath)
                let settings = Workloads(plan: plan).agentConfig(for: node)
                try write(settings.contents, to: settings.path)
                let pid = try host.launchDetached(agent.command, logPath: agent.logPath, pidPath: agent.pidPath)
                // The agent first: what waits for a node's agent takes its first process.
                processes[node.name, default: []].insert(ProcessRecord(command: "osprey-agent", pid: pid), at: 0)
            }
            for node in plan.nodes {
                guard let pid = processes[node.name]?.first?.pid else { continue }
                try waitUntilListening(
                    pid: pid, proto: "tcp", port: LabConfig.agentMetricsPort, what: "osprey-agent on \(node.name)",
                    logPath: config.agentLogPath(node.name))
            }
        }
        if let relayPath = config.relayPath, config.agentPath != nil {
            progress("starting osprey-relay")
            let relay = Workloads(plan: plan).relayLaunch(relayPath: relayPath)
            try createDirectory((relay.logPath as NSString).deletingLastPathComponent)
            unlink(config.relaySocketPath)
            let pid = try host.launchDetached(relay.command, logPath: relay.logPath, pidPath: relay.pidPath)
            processes[plan.nodes[0].name, default: []].append(ProcessRecord(command: "osprey-relay", pid: pid))
            try waitForSocket(config.relaySocketPath, pid: pid, what: "osprey-relay", logPath: relay.logPath)
            if let port = config.relayPort {
                try forward(port, Workloads(plan: plan).relayForwardLaunch(port: port), "the relay", progress)
            }
            try waitForSocket(config.uiSocketPath, pid: pid, what: "osprey-relay's web UI", logPath: relay.logPath)
            if let port = config.uiPort {
                try forward(port, Workloads(plan: plan).uiForwardLaunch(port: port), "the web UI", progress)
            }
        }
        if let rulesPath = config.prometheusRules, config.agentPath != nil {
            progress("starting Prometheus on \(plan.nodes[0].name)")
            let rules: String
            do { rules = try String(contentsOfFile: rulesPath, encoding: .utf8) } catch {
                throw .fileFailed(path: rulesPath, reason: "\(error)")
            }
            let prometheus = Workloads(plan: plan).prometheusLaunch(rules: rules)
            for file in prometheus.files {
                try createDirectory((file.path as NSString).deletingLastPathComponent)
                do { try file.contents.write(toFile: file.path, atomically: true, encoding: .utf8) } catch {
                    throw .fileFailed(path: file.path, reason: "\(error)")
                }
            }
            let pid = try host.launchDetached(
                prometheus.command, logPath: prometheus.logPath, pidPath: prometheus.pidPath)
            processes[plan.nodes[0].name, default: []].append(ProcessRecord(command: "prometheus", pid: pid))
            try waitUntilListening(
                pid: pid, proto: "tcp", port: LabConfig.prometheusPort, what: "Prometheus",
                logPath: prometheus.logPath)
            try waitUntilPrometheusReady(pid: pid, netns: plan.nodes[0].netns, logPath: prometheus.logPath)
            if let port = config.prometheusHostPort {
                try forward(port, Workloads(plan: plan).prometheusForwardLaunch(port: port), "Prometheus", progress)
            }
        }
        let inventory = plan.inventory(uids: uids, processes: processes, now: started)
        do { try inventory.write(to: config.inventoryPath) } catch {
            throw .fileFailed(path: config.inventoryPath, reason: "\(error)")
        }
        return inventory
    }

    /// Starts pods' workloads (recording their processes and new UIDs) and waits until each
    /// runs inside its pod and, if it serves, listens.
    func start(
        _ launches: [WorkloadLaunch], processes: inout [String: [ProcessRecord]], uids: inout [String: String]
    ) throws(LabError) {
        for launch in launches {
            try createDirectory((launch.logPath as NSString).deletingLastPathComponent)
            for file in launch.files { try write(file.contents, to: file.path) }
            let pid = try host.launchDetached(launch.command, logPath: launch.logPath, pidPath: launch.pidPath)
            processes[launch.pod.qualifiedName] = [ProcessRecord(command: launch.program, pid: pid)]
            uids[launch.pod.qualifiedName] = UUID().uuidString.lowercased()
        }
        for launch in launches {
            guard let pid = processes[launch.pod.qualifiedName]?.first?.pid else { continue }
            // The PID is known before `ip netns exec` has switched namespace; wait for the
            // switch, so that when this returns every workload runs inside its pod.
            try waitUntilInNamespace(pid: pid, netns: launch.pod.netns, what: "Pod \(launch.pod.qualifiedName)")
        }
        for launch in launches {
            guard let readiness = launch.readiness, let pid = processes[launch.pod.qualifiedName]?.first?.pid else {
                continue
            }
            try waitUntilListening(
                pid: pid, proto: readiness.proto, port: readiness.port, what: "Pod \(launch.pod.qualifiedName)",
                logPath: launch.logPath)
        }
    }

    /// Starts the lab's Kubernetes API server on the first node, writes its token and
    /// kubeconfigs, and forwards it to the host when asked.
    private func startAPIServer(
        _ plan: LabPlan, ospreyPath: String, processes: inout [String: [ProcessRecord]], progress: (String) -> Void
    ) throws(LabError) {
        let config = plan.config
        progress("starting the Kubernetes API server on \(plan.nodes[0].name)")
        try createDirectory(config.kubernetesDirectory)
        var bytes = [UInt8](repeating: 0, count: 24)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        try write(bytes.map { String(format: "%02x", $0) }.joined() + "\n", to: config.apiTokenPath)
        chmod(config.apiTokenPath, 0o600)
        let workloads = Workloads(plan: plan)
        try write(
            workloads.kubeconfig(server: "https://\(plan.nodes[0].ipv4):\(LabConfig.apiServerPort)"),
            to: config.nodeKubeconfigPath)
        let server = workloads.apiServerLaunch(ospreyPath: ospreyPath)
        let pid = try host.launchDetached(server.command, logPath: server.logPath, pidPath: server.pidPath)
        processes[plan.nodes[0].name, default: []].append(ProcessRecord(command: "osprey lab serve-api", pid: pid))
        try waitUntilListening(
            pid: pid, proto: "tcp", port: LabConfig.apiServerPort, what: "the Kubernetes API server",
            logPath: server.logPath)
        if let port = config.apiServerHostPort {
            try write(workloads.kubeconfig(server: "https://127.0.0.1:\(port)"), to: config.kubeconfigPath)
            try waitForSocket(
                config.apiSocketPath, pid: pid, what: "the Kubernetes API server", logPath: server.logPath)
            try forward(port, workloads.apiServerForwardLaunch(port: port), "the Kubernetes API", progress)
        }
    }

    /// Removes everything of lab `name`: its processes, namespaces (with their links and
    /// nftables tables), resolver files and state directory. Works on a healthy lab, a
    /// half-built one and after a crash; running it twice is harmless.
    @discardableResult
    public func down(name: String, stateRoot: String = LabConfig.defaultStateRoot) throws(LabError) -> TeardownReport {
        try LabConfig.validate(name: name)
        try Self.requireRoot()
        var report = TeardownReport()
        let namespaces = Self.namespaces(of: name)
        report.processes = Self.stopProcesses(
            inNamespaces: namespaces, stateDirectory: LabConfig.stateDirectory(stateRoot: stateRoot, name: name))
        if !namespaces.isEmpty {
            // -force: keep deleting the others if one is already gone.
            _ = try? host.execute(
                ["ip", "-force", "-batch", "-"], input: namespaces.map { "netns del \($0)\n" }.joined())
        }
        report.namespaces = namespaces
        let fm = FileManager.default
        let resolverDirs = ((try? fm.contentsOfDirectory(atPath: "/etc/netns")) ?? [])
            .filter { $0.hasPrefix("\(name)-") }.map { "/etc/netns/\($0)" }
        for path in resolverDirs + [LabConfig.stateDirectory(stateRoot: stateRoot, name: name)]
        where fm.fileExists(atPath: path) {
            try? fm.removeItem(atPath: path)
            report.files.append(path)
        }
        let remaining = Self.namespaces(of: name)
        guard remaining.isEmpty else {
            throw .commandFailed(
                command: "ip netns del", status: 1, output: "could not remove \(remaining.joined(separator: ", "))")
        }
        return report
    }

    /// The lab's inventory, or `notUp` if there is none.
    public func inventory(name: String, stateRoot: String = LabConfig.defaultStateRoot) throws(LabError) -> Inventory {
        try LabConfig.validate(name: name)
        let path = LabConfig.stateDirectory(stateRoot: stateRoot, name: name) + "/inventory.json"
        guard FileManager.default.fileExists(atPath: path) else { throw .notUp(name: name) }
        do { return try Inventory.load(from: path) } catch {
            throw .fileFailed(path: path, reason: error.description)
        }
    }

    /// What of lab `name` exists on this machine: namespaces and its state directory.
    public func existingParts(of name: String, stateRoot: String = LabConfig.defaultStateRoot) -> [String] {
        var parts = Self.namespaces(of: name).map { "netns \($0)" }
        let dir = LabConfig.stateDirectory(stateRoot: stateRoot, name: name)
        if FileManager.default.fileExists(atPath: dir) { parts.append(dir) }
        return parts
    }

    /// Named network namespaces that belong to lab `name` (all are `<name>-…`).
    public static func namespaces(of name: String) -> [String] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: netnsDirectory)) ?? []
        return all.filter { $0.hasPrefix("\(name)-") }.sorted()
    }

    /// PIDs of the processes whose network namespace is the named one (what `ip netns pids` does).
    public static func pids(inNamespace netns: String) -> [Int32] {
        var target = stat()
        guard stat("\(netnsDirectory)/\(netns)", &target) == 0 else { return [] }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            var info = stat()
            return stat("/proc/\(pid)/ns/net", &info) == 0 && info.st_ino == target.st_ino
                && info.st_dev == target.st_dev
        }
    }

    /// Ends every process in the namespaces (and any recorded in pid files under
    /// `stateDirectory`): SIGTERM, then SIGKILL for what is left after a second. Returns how
    /// many processes were found. Also used by tests to silence a lab's clients.
    @discardableResult
    public static func stopProcesses(inNamespaces namespaces: [String], stateDirectory: String? = nil) -> Int {
        func alive() -> Set<Int32> {
            var pids = Set(namespaces.flatMap(Self.pids(inNamespace:)))
            if let stateDirectory { pids.formUnion(Self.recordedPIDs(in: stateDirectory)) }
            pids.remove(getpid())
            return pids.filter(Self.isRunning)
        }
        var seen = Set<Int32>()
        let deadline = Date().addingTimeInterval(5)
        let graceOver = Date().addingTimeInterval(1)
        while Date() < deadline {
            let left = alive()
            if left.isEmpty { break }
            // Loops may fork a new child between two looks: signal every newcomer at once.
            for pid in left.subtracting(seen) { kill(pid, SIGTERM) }
            seen.formUnion(left)
            if Date() > graceOver { for pid in left { kill(pid, SIGKILL) } }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return seen.count
    }

    /// True when `pid` exists and is not a zombie (a zombie has ended; only its parent — often
    /// init, for detached workloads — has yet to collect it). A process is a zombie only once
    /// all its threads are: its first thread shows `Z` as soon as it has exited itself, while
    /// the others may still be exiting and holding the process's files — a killed agent's
    /// listening socket, which its restart would then find in use.
    public static func isRunning(_ pid: Int32) -> Bool {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else {
            return false
        }
        return threads.contains { thread in
            guard let state = state(statFile: "/proc/\(pid)/task/\(thread)/stat") else { return false }
            return state != "Z" && state != "X"
        }
    }

    /// The state letter (`R`, `S`, `Z`…) of a `/proc/…/stat` file; nil when it cannot be read.
    static func state(statFile path: String) -> Character? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return nil }
        return stat[stat.index(after: close)...].dropFirst().first
    }

    /// PIDs from the `*.pid.osprey` files `launchDetached` wrote.
    static func recordedPIDs(in stateDirectory: String) -> [Int32] {
        guard let walker = FileManager.default.enumerator(atPath: stateDirectory) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".pid.osprey") }.compactMap {
            (try? String(contentsOfFile: "\(stateDirectory)/\($0)", encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// Waits until a process has created its unix socket.
    private func waitForSocket(_ path: String, pid: Int32, what: String, logPath: String) throws(LabError) {
        try waitFor(what, pid: pid, logPath: logPath, seconds: 20, poll: 0.05, failure: "it did not create \(path)") {
            FileManager.default.fileExists(atPath: path)
        }
    }

    /// Polls `ready` every `poll` seconds until it holds; a workload whose process `pid` exits
    /// meanwhile, or that is not ready within `seconds`, is an error naming `what` and its log
    /// (`failure` says what it did not do in time).
    private func waitFor(
        _ what: String, pid: Int32, logPath: String, seconds: Double, poll: Double, failure: String,
        _ ready: () throws(LabError) -> Bool
    ) throws(LabError) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try ready() { return }
            guard Self.isRunning(pid) else {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").last ?? ""
                throw .workloadNotReady(what: what, detail: "its process exited (\(log)); see \(logPath)")
            }
            Thread.sleep(forTimeInterval: poll)
        }
        throw .workloadNotReady(what: what, detail: "\(failure) within \(Int(seconds)) s; see \(logPath)")
    }

    /// Starts a port forward from the host's `127.0.0.1:port` and waits until it listens.
    private func forward(
        _ port: Int, _ launch: (command: [String], logPath: String, pidPath: String), _ what: String,
        _ progress: (String) -> Void
    ) throws(LabError) {
        progress("forwarding 127.0.0.1:\(port) to \(what)")
        let pid = try host.launchDetached(launch.command, logPath: launch.logPath, pidPath: launch.pidPath)
        try waitUntilListening(
            pid: pid, proto: "tcp", port: UInt16(port), what: "the port forward to \(what)", logPath: launch.logPath)
    }

    /// Waits until the process listens on `port` (in its own network namespace).
    func waitUntilListening(
        pid: Int32, proto: String, port: UInt16, what: String, logPath: String
    )
        throws(LabError)
    {
        try waitFor(
            what, pid: pid, logPath: logPath, seconds: 20, poll: 0.02,
            failure: "nothing listened on \(proto.uppercased()) port \(port)"
        ) { Self.isListening(pid: pid, proto: proto, port: port) }
    }

    /// Prometheus listens before it has opened its storage, and answers its API with 503
    /// "Service Unavailable" until then: waits until `/-/ready` says it is ready.
    func waitUntilPrometheusReady(pid: Int32, netns: String, logPath: String) throws(LabError) {
        let url = "http://127.0.0.1:\(LabConfig.prometheusPort)/-/ready"
        try waitFor(
            "Prometheus", pid: pid, logPath: logPath, seconds: 30, poll: 0.1, failure: "\(url) did not answer 200"
        ) { () throws(LabError) -> Bool in
            let status = try host.execute(
                ["ip", "netns", "exec", netns, "curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}", url])
            return status.stdout == "200"
        }
    }

    func waitUntilInNamespace(pid: Int32, netns: String, what: String) throws(LabError) {
        var target = stat()
        guard stat("\(Self.netnsDirectory)/\(netns)", &target) == 0 else {
            throw .workloadNotReady(what: what, detail: "its network namespace \(netns) is gone")
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            var current = stat()
            if stat("/proc/\(pid)/ns/net", &current) == 0, current.st_ino == target.st_ino { return }
            guard Self.isRunning(pid) else {
                throw .workloadNotReady(what: what, detail: "its process exited before entering \(netns)")
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        throw .workloadNotReady(what: what, detail: "its process did not enter \(netns) within 10 s")
    }

    /// Reads `/proc/<pid>/net/{tcp,udp}[6]` — the pod's own socket tables — for a listener.
    static func isListening(pid: Int32, proto: String, port: UInt16) -> Bool {
        let portHex = String(format: ":%04X", port)
        // TCP listeners are in state 0A (LISTEN); bound UDP sockets show 07 (CLOSE).
        let state = proto == "tcp" ? "0A" : "07"
        for table in [proto, proto + "6"] {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/net/\(table)", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                if fields.count > 3, fields[1].hasSuffix(portHex), fields[3] == state { return true }
            }
        }
        return false
    }

    public static func requireRoot() throws(LabError) {
        guard geteuid() == 0 else { throw .notRoot }
    }

    func createDirectory(_ path: String) throws(LabError) {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw .fileFailed(path: path, reason: (error as NSError).localizedDescription)
        }
    }

    func write(_ contents: String, to path: String) throws(LabError) {
        try createDirectory((path as NSString).deletingLastPathComponent)
        do { try contents.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw .fileFailed(path: path, reason: (error as NSError).localizedDescription)
        }
    }
}

extension LabController {
    /// What `scale` changed.
    public struct ScaleReport: Sendable {
        public var added: [PlannedPod]
        public var removed: [PlannedPod]
        public var inventory: Inventory
    }

    /// Sets a Deployment of a running lab to `replicas` pods, as a ReplicaSet controller would:
    /// new pods get a namespace, a veth and their workload (the agents attach to the new
    /// veths), removed ones lose theirs; Services' endpoints and the nodes' DNAT follow, and the
    /// inventory (so the lab's Kubernetes API and its watchers) says so when the pods are up.
    @discardableResult
    public func scale(
        name: String, stateRoot: String = LabConfig.defaultStateRoot, deployment: String, namespace: String? = nil,
        replicas: Int, progress: (String) -> Void = { _ in }
    ) throws(LabError) -> ScaleReport {
        try Self.requireRoot()
        guard (0...LabScale.maxReplicas).contains(replicas) else { throw .invalidReplicas(replicas) }
        let current = try inventory(name: name, stateRoot: stateRoot)
        let matches = Catalog.workloads.filter {
            $0.name == deployment && (namespace == nil || $0.namespace == namespace)
        }
        guard matches.count == 1, let spec = matches.first else {
            throw .unknownDeployment(
                namespace.map { "\($0)/\(deployment)" } ?? deployment,
                known: Catalog.workloads.map { "\($0.namespace)/\($0.name)" })
        }
        let config = try LabConfig(
            name: name, nodeCount: current.nodes.count, topology: try LabConfig.topology(named: current.topology),
            stateRoot: stateRoot)
        let scalePath = config.stateDirectory + "/scale.json"
        let before = LabPlan(config: config, scale: try LabScale.load(from: scalePath))
        let after = LabPlan(config: config, scale: before.scale.scaling(spec, to: replicas, in: before))
        let beforeNames = Set(before.pods.map(\.qualifiedName))
        let afterNames = Set(after.pods.map(\.qualifiedName))
        let removed = before.pods.filter { !afterNames.contains($0.qualifiedName) }
        let added = after.pods.filter { !beforeNames.contains($0.qualifiedName) }

        if !removed.isEmpty {
            progress("removing \(removed.count) pods of \(spec.namespace)/\(spec.name)")
            Self.stopProcesses(inNamespaces: removed.map(\.netns))
            _ = try? host.execute(
                ["ip", "-force", "-batch", "-"], input: removed.map { "netns del \($0.netns)\n" }.joined())
            for pod in removed {
                try? FileManager.default.removeItem(atPath: "/etc/netns/\(pod.netns)")
                try? FileManager.default.removeItem(atPath: Workloads(plan: before).directory(of: pod))
            }
        }
        var uids: [String: String] = [:]
        var processes: [String: [ProcessRecord]] = [:]
        var created: [String: Date] = [:]
        for pod in current.pods where afterNames.contains(pod.qualifiedName) {
            uids[pod.qualifiedName] = pod.uid
            processes[pod.qualifiedName] = pod.processes
            created[pod.qualifiedName] = pod.createdAt
        }
        for node in current.nodes { processes[node.name] = node.processes }
        if !added.isEmpty {
            progress("starting \(added.count) pods of \(spec.namespace)/\(spec.name)")
            for step in NetworkSetup(plan: after).podSteps(added) { try host.run(step.argv, input: step.input) }
            try start(added.map(Workloads(plan: after).launch(for:)), processes: &processes, uids: &uids)
        }
        // Services' endpoints changed: every node's DNAT follows.
        for node in after.nodes {
            let step = NetworkSetup(plan: after).nftReplace(for: node)
            try host.run(step.argv, input: step.input)
        }
        try after.scale.write(to: scalePath)
        let inventory = after.inventory(uids: uids, processes: processes, created: created)
        do { try inventory.write(to: config.inventoryPath) } catch {
            throw .fileFailed(path: config.inventoryPath, reason: "\(error)")
        }
        return ScaleReport(added: added, removed: removed, inventory: inventory)
    }
}
