import ArgumentParser
import ClusterInventory
import Foundation
import Lab

/// `osprey lab up | down | status | scale`: a Kubernetes-like cluster of network namespaces.
struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Run a small Kubernetes-like cluster of network-namespace pods on this machine.",
        subcommands: [Up.self, Down.self, Status.self, Scale.self, ServeAPI.self])
}

/// Options every lab subcommand takes.
struct LabOptions: ParsableArguments {
    @Option(help: "Lab name: 'osp' plus up to 5 lowercase letters or digits; prefixes everything the lab creates.")
    var name: String = ProcessInfo.processInfo.environment["OSPREY_LAB"] ?? LabConfig.defaultName

    @Option(help: ArgumentHelp("Directory for lab state (inventory, configs, logs).", visibility: .hidden))
    var stateDir: String = LabConfig.defaultStateRoot
}

extension LabCommand {
    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the lab: nodes, pods, services, workloads; prints what runs where.")

        @OptionGroup var lab: LabOptions

        @Option(help: "Number of nodes (1 to 4).")
        var nodes: Int = 2

        @Option(
            help:
                "How pods attach to nodes: bridge (kubenet style) or routed (/32 routes and proxy ARP, Azure CNI / Calico style)."
        )
        var topology: String = Topology.bridge.rawValue

        @Option(help: "The osprey-agent binary to run on every node (default: the one next to this osprey).")
        var agent: String?

        @Flag(help: "Start the lab without osprey-agent on the nodes.")
        var noAgent = false

        @Option(
            name: .customLong("agent-argument"),
            help: ArgumentHelp(
                "One more argument for every agent, repeatable (e.g. --agent-argument=--per-packet-events).",
                valueName: "argument"))
        var agentArguments: [String] = []

        @Option(
            help:
                "Also start Prometheus in the first node, scraping every agent, with these alerting rules (e.g. deploy/prometheus/osprey-alerts.yaml)."
        )
        var prometheusRules: String?

        @Option(help: "The osprey-relay binary to run on the host (default: the one next to this osprey).")
        var relay: String?

        @Flag(help: "Start the lab without osprey-relay.")
        var noRelay = false

        @Option(
            help:
                "The relay's TCP port on the host's loopback (osprey's default server is localhost:4245); 0: its unix socket only."
        )
        var relayPort: Int = LabConfig.relayPort

        @Option(help: "The web UI's TCP port on the host's loopback (http://127.0.0.1:PORT/); 0: its unix socket only.")
        var uiPort: Int = LabConfig.uiPort

        @Option(help: "Prometheus's TCP port on the host's loopback, with --prometheus-rules; 0: none.")
        var prometheusPort: Int = Int(LabConfig.prometheusPort)

        @Flag(
            help:
                "TLS and mutual TLS between CLI, relay and agents, with a throwaway CA (certificates in the lab's state)."
        )
        var tls = false

        @Option(
            help:
                "The lab's Kubernetes API on the host's loopback (https://127.0.0.1:PORT; kubeconfig in the lab's state); 0: inside the nodes only."
        )
        var apiPort: Int = LabConfig.apiServerHostPort

        @Flag(help: "No Kubernetes API: the agents read the lab's inventory file instead.")
        var noApiServer = false

        func run() throws {
            try reportingErrors {
                var config = try LabConfig(
                    name: lab.name, nodeCount: nodes, topology: LabConfig.topology(named: topology),
                    stateRoot: lab.stateDir)
                try LabController.requireRoot()
                config.agentPath = noAgent ? nil : try agent ?? Self.sibling("osprey-agent")
                guard agentArguments.isEmpty || !noAgent else {
                    throw ValidationError("--agent-argument needs the agents; drop --no-agent.")
                }
                config.agentArguments = agentArguments
                if !noAgent, !noRelay {
                    config.relayPath = try relay ?? Self.sibling("osprey-relay")
                    guard (0...65535).contains(relayPort) else {
                        throw ValidationError("--relay-port \(relayPort) is not a port (1-65535, or 0 for none).")
                    }
                    config.relayPort = relayPort == 0 ? nil : relayPort
                    guard (0...65535).contains(uiPort) else {
                        throw ValidationError("--ui-port \(uiPort) is not a port (1-65535, or 0 for none).")
                    }
                    config.uiPort = uiPort == 0 ? nil : uiPort
                }
                guard (0...65535).contains(prometheusPort) else {
                    throw ValidationError("--prometheus-port \(prometheusPort) is not a port (1-65535, or 0 for none).")
                }
                config.prometheusHostPort = prometheusPort == 0 ? nil : prometheusPort
                config.tls = tls
                if !noApiServer {
                    config.apiServerPath = try Self.sibling("osprey")
                    guard (0...65535).contains(apiPort) else {
                        throw ValidationError("--api-port \(apiPort) is not a port (1-65535, or 0 for none).")
                    }
                    config.apiServerHostPort = apiPort == 0 ? nil : apiPort
                }
                if let prometheusRules {
                    guard !noAgent else {
                        throw ValidationError("--prometheus-rules needs the agents; drop --no-agent.")
                    }
                    guard FileManager.default.isReadableFile(atPath: prometheusRules) else {
                        throw ValidationError("Cannot read --prometheus-rules \(prometheusRules); check the path.")
                    }
                    config.prometheusRules = prometheusRules
                }
                let started = Date()
                try LabController().up(config) { print("· \($0)") }
                let status = try LabStatus(name: config.name, stateRoot: config.stateRoot)
                print(
                    "Lab '\(config.name)' is up in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: "
                        + "\(config.nodeCount) nodes, \(status.inventory.pods.count) pods, "
                        + "\(status.inventory.services.count) services, \(config.topology.rawValue) topology.\n")
                print(LabReport.render(status))
                print(LabReport.hints(status.inventory, config: config))
            }
        }

        /// `program` (osprey-agent, osprey-relay) in the directory of the running `osprey`.
        static func sibling(_ program: String) throws(LabCommandError) -> String {
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
            let path = (executable as NSString).deletingLastPathComponent + "/" + program
            guard FileManager.default.isExecutableFile(atPath: path) else { throw .missingProgram(program, path) }
            return path
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the lab: processes, namespaces, links, nftables rules and files. Safe to repeat.")

        @OptionGroup var lab: LabOptions

        func run() throws {
            try reportingErrors {
                let report = try LabController().down(name: lab.name, stateRoot: lab.stateDir)
                if report.isEmpty {
                    print("No lab named '\(lab.name)' was found; nothing to remove.")
                } else {
                    print(
                        "Lab '\(lab.name)' removed: \(report.processes) processes stopped, "
                            + "\(report.namespaces.count) network namespaces and \(report.files.count) file trees deleted."
                    )
                }
            }
        }
    }

    struct Scale: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a Deployment of the lab to N pods (like `kubectl scale deployment NAME --replicas N`).")

        @OptionGroup var lab: LabOptions

        @Argument(help: "The Deployment (e.g. frontend).")
        var deployment: String

        @Argument(help: "How many pods it should have (0 to \(LabScale.maxReplicas)).")
        var replicas: Int

        @Option(name: [.short, .long], help: "The Deployment's namespace, when its name is in several.")
        var namespace: String?

        func run() throws {
            try reportingErrors {
                let report = try LabController().scale(
                    name: lab.name, stateRoot: lab.stateDir, deployment: deployment, namespace: namespace,
                    replicas: replicas
                ) { print("· \($0)") }
                let count = report.inventory.pods.filter { $0.workload?.name == deployment }.count
                print("deployment.apps/\(deployment) scaled to \(count) pods", terminator: "")
                let added = report.added.map { "\($0.name) (\($0.ipv4) on \($0.node.name))" }
                let removed = report.removed.map(\.name)
                print(added.isEmpty ? "" : "; added \(added.joined(separator: ", "))", terminator: "")
                print(removed.isEmpty ? "." : "; removed \(removed.joined(separator: ", ")).")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the lab's nodes, pods (IPs, node, process state) and services.")

        @OptionGroup var lab: LabOptions

        func run() throws {
            try reportingErrors {
                let status = try LabStatus(name: lab.name, stateRoot: lab.stateDir)
                print(LabReport.render(status))
                if !status.isHealthy {
                    throw LabCommandError.unhealthy(name: lab.name)
                }
            }
        }
    }
}

enum LabCommandError: Error, CustomStringConvertible {
    case unhealthy(name: String)
    case missingProgram(String, String)

    var description: String {
        switch self {
        case .unhealthy(let name):
            "Some processes of lab '\(name)' are not running; recreate it with `osprey lab down` and `osprey lab up`."
        case .missingProgram(let program, let path):
            "\(program) was not found at \(path); build it (`swift build`), pass --\(program.dropFirst("osprey-".count)) <path>, "
                + "or use --no-\(program.dropFirst("osprey-".count))."
        }
    }
}
