import Foundation

/// How pods are wired to their node.
public enum Topology: String, CaseIterable, Sendable, Codable {
    /// Pod veths on a per-node Linux bridge that owns the pod subnet's gateway (kubenet style).
    case bridge
    /// No bridge: a /32 (/128) route per pod on the node and proxy ARP (Azure CNI / Calico style).
    case routed
}

/// What `osprey lab up` builds; validated on construction.
public struct LabConfig: Sendable, Equatable {
    public static let defaultName = "osp"
    public static let nodeRange = 1...4
    /// Where labs keep their inventory, configuration, logs and pid files.
    public static let defaultStateRoot = "/run/osprey/labs"

    /// Prefix of everything the lab creates (namespaces, files); also the cluster name.
    public let name: String
    public let nodeCount: Int
    public let topology: Topology
    public let stateRoot: String
    /// The osprey-agent binary to run on every node, or nil for a lab without agents.
    public var agentPath: String?
    /// More arguments for every agent (tests that need a setting, e.g. a small connection table).
    public var agentArguments: [String] = []
    /// Alerting rules for a Prometheus that scrapes every agent (in the first node), or nil for
    /// no Prometheus. Needs agents.
    public var prometheusRules: String?
    /// The osprey-relay binary, run on the host (reaching the agents through the first node),
    /// or nil for no relay. Needs agents.
    public var relayPath: String?
    /// The relay's TCP port on the host's loopback (the CLI's default server is
    /// localhost:4245), or nil for its unix socket only (`relaySocketPath`).
    public var relayPort: Int?
    /// The relay's web UI on the host's loopback (`http://127.0.0.1:12000/`), or nil for its unix
    /// socket only (`uiSocketPath`).
    public var uiPort: Int?
    /// The lab's Prometheus on the host's loopback (`http://127.0.0.1:9090/`), or nil for none.
    public var prometheusHostPort: Int?
    /// The `osprey` binary that serves the lab's Kubernetes API (`osprey lab serve-api`) on the
    /// first node, or nil for none (the agents then read the inventory file).
    public var apiServerPath: String?
    /// The Kubernetes API on the host's loopback (`https://127.0.0.1:PORT`, what `<state>/kubeconfig`
    /// names), or nil for none (then only from inside the nodes: `kubernetes/node.kubeconfig`).
    public var apiServerHostPort: Int?
    /// TLS everywhere: a throwaway CA signs the agents', the relay's and a client certificate
    /// (`tlsDirectory`); agents and relay require client certificates (mutual TLS).
    public var tls = false

    public init(
        name: String = LabConfig.defaultName, nodeCount: Int = 2, topology: Topology = .bridge,
        stateRoot: String = LabConfig.defaultStateRoot, agentPath: String? = nil
    ) throws(LabError) {
        try Self.validate(name: name)
        guard Self.nodeRange.contains(nodeCount) else { throw .invalidNodeCount(nodeCount) }
        self.name = name
        self.nodeCount = nodeCount
        self.topology = topology
        self.stateRoot = stateRoot
        self.agentPath = agentPath
    }

    /// Port of every agent's /metrics and /healthz, in its node's namespace.
    public static let agentMetricsPort: UInt16 = 9965
    /// Each lab agent's Hubble gRPC API inside its node (as Cilium's agent, :4244); from the
    /// host, use the agent's unix socket (`<state>/nodes/<node>/hubble.sock`).
    public static let hubblePort: UInt16 = 4244
    /// The lab Prometheus's port, in the first node's namespace.
    public static let prometheusPort: UInt16 = 9090
    /// The relay's port on the host's loopback, as Hubble Relay's (`osprey observe`'s default server).
    public static let relayPort = 4245

    /// Parses a topology name the way the CLI receives it.
    public static func topology(named text: String) throws(LabError) -> Topology {
        guard let topology = Topology(rawValue: text.lowercased()) else { throw .unknownTopology(text) }
        return topology
    }

    /// A lab name is `osp` plus at most five lowercase letters or digits: short enough for
    /// interface names, and the `osp` prefix makes every leftover easy to find.
    public static func validate(name: String) throws(LabError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789")
        guard name.hasPrefix("osp"), name.count <= 8, name.allSatisfy(allowed.contains) else {
            throw .invalidName(name)
        }
    }

    /// The directory holding this lab's files.
    public var stateDirectory: String { Self.stateDirectory(stateRoot: stateRoot, name: name) }
    /// The directory of node `node`'s agent: its log, pid file, Hubble socket, flow logs and
    /// configuration.
    public func nodeDirectory(_ node: String) -> String {
        Self.nodeDirectory(stateRoot: stateRoot, name: name, node: node)
    }
    /// The agent's log (its standard output and error) on node `node`.
    public func agentLogPath(_ node: String) -> String { nodeDirectory(node) + "/osprey-agent.log" }
    /// The file holding the pid of the agent on node `node` while it runs.
    public func agentPIDPath(_ node: String) -> String { nodeDirectory(node) + "/osprey-agent.pid.osprey" }
    /// The relay's unix socket (always served when the lab has a relay).
    public var relaySocketPath: String { stateDirectory + "/relay.sock" }
    /// The relay's web UI socket (always served when the lab has a relay).
    public var uiSocketPath: String { stateDirectory + "/relay-ui.sock" }
    /// The UI's port on the host when forwarded (`make demo`).
    public static let uiPort = 12000
    /// The lab's CA and certificates when `tls` is on.
    public var tlsDirectory: String { stateDirectory + "/tls" }

    /// The lab's Kubernetes API inside the first node, as kube-apiserver's.
    public static let apiServerPort: UInt16 = 6443
    /// kube-state-metrics' series, beside the API server (kube-state-metrics' own port).
    public static let kubeStateMetricsPort: UInt16 = 8080
    /// Its default port on the host's loopback (`osprey lab up`).
    public static let apiServerHostPort = 6443
    /// The Kubernetes API's files: token, node kubeconfig, socket.
    public var kubernetesDirectory: String { stateDirectory + "/kubernetes" }
    /// The kubeconfig for kubectl on the host (`kubectl --kubeconfig … get pods -A`).
    public var kubeconfigPath: String { stateDirectory + "/kubeconfig" }
    /// The kubeconfig the agents use, from inside the nodes.
    public var nodeKubeconfigPath: String { kubernetesDirectory + "/node.kubeconfig" }
    /// The bearer token the API server accepts (re-read on every request: rotate it by rewriting it).
    public var apiTokenPath: String { kubernetesDirectory + "/token" }
    /// The API server's unix socket (the host's port forward connects to it).
    public var apiSocketPath: String { kubernetesDirectory + "/apiserver.sock" }

    /// The inventory file the agent's standalone metadata source reads.
    public var inventoryPath: String { stateDirectory + "/inventory.json" }

    public static func stateDirectory(stateRoot: String = defaultStateRoot, name: String) -> String {
        "\(stateRoot)/\(name)"
    }

    /// `nodeDirectory(_:)` of a lab known only by its name (the report of a lab already up).
    public static func nodeDirectory(stateRoot: String = defaultStateRoot, name: String, node: String) -> String {
        stateDirectory(stateRoot: stateRoot, name: name) + "/nodes/" + node
    }
}
