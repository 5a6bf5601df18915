import ClusterInventory
import Foundation
import Lab

/// Brings labs up for tests and always takes them down again, also when a check fails.
public enum LabFixture {
    /// A lab name no other test uses: `osp` + a letter for the test + 4 random characters.
    public static func uniqueName(_ tag: Character) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return "osp\(tag)" + String((0..<4).map { _ in alphabet.randomElement()! })
    }

    /// Runs `body` with a freshly built lab; `lab down` runs afterwards whatever happens.
    /// A lab with agents serves its Kubernetes API and the agents use it, as on a cluster
    /// (`kubernetes: false`: they read the inventory file, the standalone mode).
    ///
    /// The body runs on the calling test's pool thread, blocking it. Run on a thread of its own
    /// (`onOwnThread`), the lab tests overlap the unit tests at full speed, and under that load
    /// FidelityLabTests' routed lab counts a `NOT_SPECIFIED` drop now and then (two full runs in
    /// six; README, Limits), not yet explained. Until it is, lab bodies stay on the pool.
    public static func withLab<T>(
        _ config: LabConfig, kubernetes: Bool = true, _ body: (LabPlan, Inventory) throws -> T
    ) async throws -> T {
        var config = config
        if kubernetes, config.agentPath != nil, config.apiServerPath == nil {
            config.apiServerPath = OspreyBinary.cli.path
        }
        let controller = LabController()
        defer { _ = try? controller.down(name: config.name, stateRoot: config.stateRoot) }
        let inventory = try controller.up(config)
        return try body(LabPlan(config: config), inventory)
    }

    /// The pid of the agent the lab started on `node` (from its pid file).
    public static func agentPID(_ config: LabConfig, node: String) -> Int32? {
        let path = config.agentPIDPath(node)
        return (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Stops the agent the lab runs on `node` with `signal` and waits up to `timeout` seconds for
    /// it to end: whether it did (false too when the lab started none there).
    public static func stopAgent(
        _ config: LabConfig, node: String, signal: Int32 = SIGTERM, timeout: Double = 10
    ) -> Bool {
        guard let pid = agentPID(config, node: node) else { return false }
        kill(pid, signal)
        return eventually(within: timeout, poll: 0.01) { !LabController.isRunning(pid) }
    }

    /// How the lab runs the agent of `node`: its command, log and pid file.
    public static func agentLaunch(
        _ plan: LabPlan, node: PlannedNode
    ) -> (
        command: [String], logPath: String, pidPath: String
    ) {
        Workloads(plan: plan).agentLaunch(for: node, agentPath: plan.config.agentPath ?? OspreyBinary.agent.path)
    }

    /// Starts the agent of `node` again as the lab started it: behind `prefix` (a wrapper such as
    /// `setpriv …`), with `extra` arguments after the lab's, its output to the lab's agent log
    /// (plus `logSuffix`) and its pid in the lab's pid file. The new agent's pid.
    @discardableResult
    public static func startAgent(
        _ plan: LabPlan, node: PlannedNode, prefix: [String] = [], extra: [String] = [], logSuffix: String = ""
    ) throws -> Int32 {
        let launch = agentLaunch(plan, node: node)
        return try Host().launchDetached(
            prefix + launch.command + extra, logPath: launch.logPath + logSuffix, pidPath: launch.pidPath)
    }

    /// Whether the agent of the node whose namespace is `netns` answers /metrics within
    /// `timeout` seconds: a started or restarted agent is ready.
    public static func servesMetrics(_ netns: String, within timeout: Double = 20) -> Bool {
        eventually(within: timeout, poll: 0.01) { (try? scrape(netns)) != nil }
    }

    /// Runs a command inside a network namespace: `ip netns exec <netns> argv…`.
    public static func exec(_ netns: String, _ argv: [String]) throws -> (status: Int32, stdout: String) {
        let result = try Host().execute(["ip", "netns", "exec", netns] + argv)
        return (result.status, result.stdout)
    }

    /// `curl` from inside a pod: exit status (0 ok, 7 refused, 28 timed out) and body.
    public static func curl(from netns: String, _ url: String, timeout: Int = 2) throws -> (status: Int32, body: String)
    {
        let result = try exec(netns, ["curl", "-s", "-m", String(timeout), url])
        return (result.status, result.stdout)
    }

    /// Identities (inode numbers) of lab `name`'s network namespaces, to find their processes
    /// even after the names are gone.
    public static func namespaceInodes(of name: String) -> Set<UInt64> {
        Set(
            LabController.namespaces(of: name).compactMap { netns in
                var info = stat()
                return stat("/run/netns/\(netns)", &info) == 0 ? UInt64(info.st_ino) : nil
            })
    }

    /// Everything on this machine that belongs to lab `name`: network namespaces, resolver
    /// files, state, host links and nftables tables with its prefix, and processes still living
    /// in one of its namespaces (`inodes`, taken with `namespaceInodes` before teardown) or
    /// started with its files.
    public static func leftovers(
        of name: String, inodes: Set<UInt64> = [], stateRoot: String = LabConfig.defaultStateRoot
    ) -> [String] {
        var found = LabController.namespaces(of: name).map { "netns \($0)" }
        let fm = FileManager.default
        found += ((try? fm.contentsOfDirectory(atPath: "/etc/netns")) ?? []).filter { $0.hasPrefix("\(name)-") }
            .map { "/etc/netns/\($0)" }
        let stateDirectory = LabConfig.stateDirectory(stateRoot: stateRoot, name: name)
        if fm.fileExists(atPath: stateDirectory) { found.append(stateDirectory) }
        if let links = try? Host().run(["ip", "-br", "link"]) {
            found += links.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
                .filter { $0.hasPrefix(name) }.map { "host link \($0)" }
        }
        if let tables = try? Host().run(["nft", "list", "tables"]) {
            found += tables.split(separator: "\n").filter { $0.contains(name) }.map { "nft \($0)" }
        }
        for entry in (try? fm.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), LabController.isRunning(pid) else { continue }
            guard let raw = fm.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let cmdline = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            var info = stat()
            let inLabNamespace = stat("/proc/\(entry)/ns/net", &info) == 0 && inodes.contains(UInt64(info.st_ino))
            if inLabNamespace || cmdline.contains(stateDirectory + "/") || cmdline.contains(" \(name)-") {
                found.append("process \(entry): \(cmdline.prefix(80))")
            }
        }
        return found
    }
}
