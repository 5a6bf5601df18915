import Foundation

/// A snapshot of a cluster as the Kubernetes API would describe it: its nodes, pods and services.
///
/// The lab writes one (`osprey lab up`); the agent's standalone metadata source reads it to turn
/// IP addresses into pod and service identities. The JSON format is documented in
/// `docs/inventory.md`; field names follow the Kubernetes objects they stand for.
public struct Inventory: Codable, Sendable, Equatable {
    /// Identifies the format; readers reject anything else.
    public static let currentAPIVersion = "osprey.dev/v1alpha1"
    public static let kindName = "ClusterInventory"

    public var apiVersion: String
    public var kind: String
    /// The cluster name (also the lab name); every metric carries it as `cluster`.
    public var cluster: String
    /// How pods are wired to their node: `bridge` or `routed`.
    public var topology: String
    /// When the inventory was written (RFC 3339).
    public var generatedAt: Date
    public var nodes: [Node]
    public var pods: [Pod]
    public var services: [Service]

    public init(
        cluster: String, topology: String, generatedAt: Date = Date(), nodes: [Node], pods: [Pod],
        services: [Service]
    ) {
        self.apiVersion = Self.currentAPIVersion
        self.kind = Self.kindName
        self.cluster = cluster
        self.topology = topology
        self.generatedAt = generatedAt
        self.nodes = nodes
        self.pods = pods
        self.services = services
    }
}

/// A Kubernetes node.
public struct Node: Codable, Sendable, Equatable {
    public var name: String
    /// The node's addresses on the network that joins nodes (Kubernetes `InternalIP`).
    public var internalIPs: [String]
    /// The pod address ranges of this node, IPv4 first.
    public var podCIDRs: [String]
    /// The node's interface towards other nodes.
    public var uplink: String
    /// Where the node lives on this machine: a network namespace name (lab only).
    public var netns: String?
    /// Processes the lab runs on the node itself, such as osprey-agent (lab only).
    public var processes: [ProcessRecord]
    /// The node's zone (its `topology.kubernetes.io/zone` label), if it has one.
    public var zone: String?

    public init(
        name: String, internalIPs: [String], podCIDRs: [String], uplink: String, netns: String?,
        processes: [ProcessRecord] = [], zone: String? = nil
    ) {
        self.name = name
        self.zone = zone
        self.internalIPs = internalIPs
        self.podCIDRs = podCIDRs
        self.uplink = uplink
        self.netns = netns
        self.processes = processes
    }
}

/// The controller that owns a pod, as `kubectl` shows it (e.g. `Deployment/frontend`).
public struct Workload: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    public var kind: String
    public var name: String

    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }

    public var description: String { "\(kind)/\(name)" }
}

/// A process the lab started for a pod or node (its workload, its agent), so that it can be found and ended.
public struct ProcessRecord: Codable, Sendable, Equatable {
    public var command: String
    public var pid: Int32

    public init(command: String, pid: Int32) {
        self.command = command
        self.pid = pid
    }
}

/// A Kubernetes pod with its network identity.
public struct Pod: Codable, Sendable, Equatable {
    public var uid: String
    public var namespace: String
    public var name: String
    public var node: String
    /// Pod IPs, IPv4 first (Kubernetes `status.podIPs`).
    public var ips: [String]
    public var labels: [String: String]
    public var workload: Workload?
    /// When the pod started (RFC 3339); lets readers attribute a reused IP to the right pod.
    public var createdAt: Date
    /// The pod's network namespace on this machine (lab only).
    public var netns: String?
    /// The node-side end of the pod's veth (e.g. `osp3f9a…`), where Osprey observes the pod.
    public var hostInterface: String?
    public var processes: [ProcessRecord]

    public init(
        uid: String, namespace: String, name: String, node: String, ips: [String],
        labels: [String: String], workload: Workload?, createdAt: Date = Date(), netns: String?,
        hostInterface: String?, processes: [ProcessRecord] = []
    ) {
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.node = node
        self.ips = ips
        self.labels = labels
        self.workload = workload
        self.createdAt = createdAt
        self.netns = netns
        self.hostInterface = hostInterface
        self.processes = processes
    }

    /// `namespace/name`, the way Hubble and kubectl print a pod.
    public var qualifiedName: String { "\(namespace)/\(name)" }
}

/// One port of a service.
public struct ServicePort: Codable, Sendable, Equatable {
    public var name: String
    /// `TCP` or `UDP`.
    public var `protocol`: String
    public var port: UInt16
    public var targetPort: UInt16

    public init(name: String, protocol: String, port: UInt16, targetPort: UInt16) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
        self.targetPort = targetPort
    }
}

/// A Kubernetes service with a virtual IP and the pod IPs behind it.
public struct Service: Codable, Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var clusterIP: String
    /// Every ClusterIP of a dual-stack service, IPv4 first (Kubernetes `spec.clusterIPs`);
    /// absent in single-stack inventories, where `clusterIP` is the only one.
    public var clusterIPs: [String]?
    public var ports: [ServicePort]
    /// Label selector choosing the endpoints.
    public var selector: [String: String]
    /// IPs of the ready pods behind the service, of every family (Kubernetes EndpointSlice addresses).
    public var endpoints: [String]

    public init(
        namespace: String, name: String, clusterIP: String, clusterIPs: [String]? = nil, ports: [ServicePort],
        selector: [String: String], endpoints: [String]
    ) {
        self.namespace = namespace
        self.name = name
        self.clusterIP = clusterIP
        self.clusterIPs = clusterIPs
        self.ports = ports
        self.selector = selector
        self.endpoints = endpoints
    }

    /// Every address of the service: `clusterIPs`, or `clusterIP` alone.
    public var addresses: [String] { clusterIPs ?? [clusterIP] }

    /// The name the cluster DNS answers for this service.
    public func dnsName(clusterDomain: String = "cluster.local") -> String {
        "\(name).\(namespace).svc.\(clusterDomain)"
    }
}
