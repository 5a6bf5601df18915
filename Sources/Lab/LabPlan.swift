import ClusterInventory
import Foundation

/// A node of a planned lab.
public struct PlannedNode: Sendable, Equatable {
    /// 1-based, as in the node's name and pod CIDR.
    public var index: Int
    public var name: String
    public var ipv4: String
    public var ipv6: String

    public var netns: String { name }
    public var podCIDRs: [String] { [AddressPlan.podCIDRv4(index), AddressPlan.podCIDRv6(index)] }
}

/// A pod of a planned lab, with everything needed to create it.
public struct PlannedPod: Sendable, Equatable {
    public var spec: WorkloadSpec
    public var name: String
    public var node: PlannedNode
    public var ipv4: String
    public var ipv6: String
    public var netns: String
    public var hostInterface: String
    /// Its place on the node: the address plan's slot.
    public var slot: Int

    public var namespace: String { spec.namespace }
    public var qualifiedName: String { "\(spec.namespace)/\(name)" }
    /// The pod's Kubernetes labels (those of its Deployment's template).
    public var labels: [String: String] { spec.labels }

    func matches(namespace: String, labels selector: [String: String]) -> Bool {
        spec.namespace == namespace && selector.allSatisfy { spec.labels[$0.key] == $0.value }
    }
}

/// A service of a planned lab: its VIP and the pods behind it.
public struct PlannedService: Sendable, Equatable {
    public var spec: ServiceSpec
    public var clusterIP: String
    /// The service's IPv6 VIP (dual stack; the lab's DNS answers only the IPv4 one).
    public var clusterIPv6: String
    public var endpoints: [PlannedPod]
}

/// The whole lab, decided before anything is created: pure, deterministic for a given config.
public struct LabPlan: Sendable {
    public let config: LabConfig
    public let nodes: [PlannedNode]
    public let pods: [PlannedPod]
    public let services: [PlannedService]
    /// Deny rules resolved to pod addresses: (policy, source pods, destination pods).
    public let policies: [(spec: PolicySpec, from: [PlannedPod], to: [PlannedPod])]

    /// How the lab's Deployments were scaled (`osprey lab scale`; empty: as the catalog says).
    public let scale: LabScale

    public init(config: LabConfig, scale: LabScale = LabScale()) {
        self.config = config
        self.scale = scale
        let nodes = (1...config.nodeCount).map { index in
            PlannedNode(
                index: index, name: LabNames.nodeName(lab: config.name, index: index),
                ipv4: AddressPlan.nodeIPv4(index), ipv6: AddressPlan.nodeIPv6(index))
        }
        var podsPerNode = Array(repeating: 0, count: nodes.count)
        var placed = 0
        var pods: [PlannedPod] = []
        func pod(_ spec: WorkloadSpec, replica: Int, node: PlannedNode, slot: Int) -> PlannedPod {
            let name = LabNames.deploymentPodName(
                lab: config.name, namespace: spec.namespace, deployment: spec.name, replica: replica,
                incarnation: scale.incarnations["\(spec.namespace)/\(spec.name)/\(replica)"] ?? 0)
            let ips = AddressPlan.podIPs(node: node.index, slot: slot)
            return PlannedPod(
                spec: spec, name: name, node: node, ipv4: ips.v4, ipv6: ips.v6,
                netns: LabNames.podNamespace(lab: config.name, namespace: spec.namespace, pod: name),
                hostInterface: LabNames.hostInterface(namespace: spec.namespace, pod: name), slot: slot)
        }
        for spec in Catalog.workloads {
            let desired = scale.replicas["\(spec.namespace)/\(spec.name)"] ?? spec.replicas
            for replica in 0..<spec.replicas {
                // Round-robin over nodes in catalog order; see `Catalog`. A replica scaled
                // away keeps its place for when it comes back.
                let node = nodes[placed % nodes.count]
                let slot = podsPerNode[node.index - 1]
                podsPerNode[node.index - 1] += 1
                placed += 1
                if replica < desired { pods.append(pod(spec, replica: replica, node: node, slot: slot)) }
            }
        }
        catalogSlots = podsPerNode
        for extra in scale.extras {
            guard
                let spec = Catalog.workloads.first(where: {
                    $0.namespace == extra.namespace && $0.name == extra.deployment
                }),
                let node = nodes.first(where: { $0.index == extra.node })
            else { continue }
            pods.append(pod(spec, replica: extra.replica, node: node, slot: extra.slot))
        }
        self.nodes = nodes
        self.pods = pods
        self.services = Catalog.services.enumerated().map { index, spec in
            PlannedService(
                spec: spec, clusterIP: AddressPlan.serviceIP(index), clusterIPv6: AddressPlan.serviceIPv6(index),
                endpoints: pods.filter { $0.matches(namespace: spec.namespace, labels: spec.selector) })
        }
        self.policies = Catalog.policies.map { spec in
            (
                spec,
                pods.filter { $0.matches(namespace: spec.from.namespace, labels: spec.from.labels) },
                pods.filter { $0.matches(namespace: spec.to.namespace, labels: spec.to.labels) }
            )
        }
    }

    /// Slots the catalog's pods take on each node (index − 1), scaled away or not.
    let catalogSlots: [Int]

    /// The first slot on `node` (1-based) that pods beyond the catalog may use.
    func catalogSlots(on node: Int) -> Int { catalogSlots.indices.contains(node - 1) ? catalogSlots[node - 1] : 0 }

    public var fabricNamespace: String { LabNames.fabricNamespace(lab: config.name) }
    /// Every network namespace the lab creates, fabric first.
    public var namespaces: [String] { [fabricNamespace] + nodes.map(\.netns) + pods.map(\.netns) }
    public var clusterDNS: PlannedService { services[0] }
    /// Pods whose loops make traffic (as opposed to servers).
    public var clientPods: [PlannedPod] {
        pods.filter { if case .client = $0.spec.role { true } else { false } }
    }

    public func pods(on node: PlannedNode) -> [PlannedPod] { pods.filter { $0.node.index == node.index } }
    public func pods(of workload: String, in namespace: String) -> [PlannedPod] {
        pods.filter { $0.spec.name == workload && $0.namespace == namespace }
    }

    /// The inventory describing this lab, with the given pod UIDs, creation times and processes.
    /// `processes` is keyed by pod (`namespace/name`) or node name.
    public func inventory(
        uids: [String: String] = [:], processes: [String: [ProcessRecord]] = [:], now: Date = Date(),
        created: [String: Date] = [:]
    ) -> Inventory {
        Inventory(
            cluster: config.name, topology: config.topology.rawValue, generatedAt: now,
            nodes: nodes.map {
                Node(
                    name: $0.name, internalIPs: [$0.ipv4, $0.ipv6], podCIDRs: $0.podCIDRs,
                    uplink: LabNames.nodeUplink, netns: $0.netns, processes: processes[$0.name] ?? [],
                    zone: LabNames.zone(node: $0.index))
            },
            pods: pods.map {
                Pod(
                    uid: uids[$0.qualifiedName] ?? "", namespace: $0.namespace, name: $0.name,
                    node: $0.node.name, ips: [$0.ipv4, $0.ipv6], labels: $0.labels, workload: $0.spec.workload,
                    createdAt: created[$0.qualifiedName] ?? now, netns: $0.netns, hostInterface: $0.hostInterface,
                    processes: processes[$0.qualifiedName] ?? [])
            },
            services: services.map {
                Service(
                    namespace: $0.spec.namespace, name: $0.spec.name, clusterIP: $0.clusterIP,
                    clusterIPs: [$0.clusterIP, $0.clusterIPv6], ports: $0.spec.ports, selector: $0.spec.selector,
                    endpoints: $0.endpoints.map(\.ipv4) + $0.endpoints.map(\.ipv6))
            })
    }
}
