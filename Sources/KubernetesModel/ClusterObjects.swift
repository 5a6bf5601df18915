import ClusterInventory
import Foundation

/// A cluster as Kubernetes API objects, converted to and from Osprey's inventory.
///
/// The lab's API server serves an inventory this way (pods owned by ReplicaSets owned by
/// Deployments, EndpointSlices per Service and address family); the agent's Kubernetes source
/// turns what it watches back into the inventory its enricher reads.
public struct ClusterObjects: Sendable, Equatable {
    public var namespaces: [Namespace] = []
    public var nodes: [Node] = []
    public var pods: [Pod] = []
    public var services: [Service] = []
    public var endpointSlices: [EndpointSlice] = []
    public var replicaSets: [AppsWorkload] = []
    public var deployments: [AppsWorkload] = []

    public init() {}

    /// The well-known label that names a node's zone.
    public static let zoneLabel = "topology.kubernetes.io/zone"

    /// The objects an inventory stands for. UIDs of objects the inventory does not carry
    /// (namespaces, nodes, services, workloads) are derived from their names, so they are
    /// stable from one conversion to the next.
    public init(inventory: Inventory, kubeletVersion: String = "v1.32.4") {
        let created = KubeTime.format(inventory.generatedAt)
        func uid(_ kind: String, _ key: String) -> String { Self.uid("\(inventory.cluster)/\(kind)/\(key)") }

        nodes = inventory.nodes.map { node in
            Node(
                metadata: ObjectMeta(
                    name: node.name, uid: uid("Node", node.name), creationTimestamp: created,
                    labels: ["kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux"].merging(
                        node.zone.map { [Self.zoneLabel: $0] } ?? [:]
                    ) { $1 }),
                spec: Node.Spec(podCIDR: node.podCIDRs.first, podCIDRs: node.podCIDRs),
                status: Node.Status(
                    addresses: node.internalIPs.map { Node.Address(type: "InternalIP", address: $0) }
                        + [Node.Address(type: "Hostname", address: node.name)],
                    conditions: [Node.Condition(type: "Ready", status: "True")],
                    nodeInfo: Node.NodeInfo(
                        kubeletVersion: kubeletVersion, osImage: "Osprey lab (network namespaces)",
                        kernelVersion: nil, containerRuntimeVersion: nil)))
        }
        let namespaceNames = Set(
            ["default", "kube-system"] + inventory.pods.map(\.namespace) + inventory.services.map(\.namespace))
        namespaces = namespaceNames.sorted().map { name in
            Namespace(
                metadata: ObjectMeta(
                    name: name, uid: uid("Namespace", name), creationTimestamp: created,
                    labels: ["kubernetes.io/metadata.name": name]))
        }

        var replicaSets: [String: (set: AppsWorkload, deployment: String)] = [:]
        var podsByIP: [String: ClusterInventory.Pod] = [:]
        for pod in inventory.pods { for ip in pod.ips { podsByIP[ip] = pod } }
        pods = inventory.pods.map { pod in
            var labels = pod.labels
            var owners: [OwnerReference]?
            if let workload = pod.workload {
                if workload.kind == "Deployment" {
                    let (setName, hash) = Self.replicaSetName(pod: pod.name, deployment: workload.name)
                    labels["pod-template-hash"] = hash
                    let key = "\(pod.namespace)/\(setName)"
                    let setUID = uid("ReplicaSet", key)
                    owners = [OwnerReference(apiVersion: "apps/v1", kind: "ReplicaSet", name: setName, uid: setUID)]
                    var entry =
                        replicaSets[key]
                        ?? (
                            AppsWorkload(
                                kind: "ReplicaSet",
                                metadata: ObjectMeta(
                                    name: setName, namespace: pod.namespace, uid: setUID, creationTimestamp: created,
                                    labels: pod.labels.merging(["pod-template-hash": hash]) { a, _ in a },
                                    ownerReferences: [
                                        OwnerReference(
                                            apiVersion: "apps/v1", kind: "Deployment", name: workload.name,
                                            uid: uid("Deployment", "\(pod.namespace)/\(workload.name)"))
                                    ]),
                                spec: WorkloadSpec(
                                    replicas: 0,
                                    selector: LabelSelector(
                                        matchLabels: pod.labels.merging(["pod-template-hash": hash]) { a, _ in a })),
                                status: WorkloadStatus(replicas: 0)), workload.name
                        )
                    entry.set.spec.replicas += 1
                    entry.set.status = WorkloadStatus(replicas: entry.set.spec.replicas)
                    replicaSets[key] = entry
                } else {
                    owners = [
                        OwnerReference(
                            apiVersion: "apps/v1", kind: workload.kind, name: workload.name,
                            uid: uid(workload.kind, "\(pod.namespace)/\(workload.name)"))
                    ]
                }
            }
            return Pod(
                metadata: ObjectMeta(
                    name: pod.name, namespace: pod.namespace,
                    uid: pod.uid.isEmpty ? uid("Pod", pod.qualifiedName) : pod.uid,
                    creationTimestamp: KubeTime.format(pod.createdAt), labels: labels, ownerReferences: owners),
                spec: Pod.Spec(nodeName: pod.node, containers: [Pod.Container(name: "main", image: nil)]),
                status: Pod.Status(
                    phase: "Running", podIP: pod.ips.first, podIPs: pod.ips.map(Pod.PodIP.init),
                    hostIP: inventory.nodes.first { $0.name == pod.node }?.internalIPs.first,
                    startTime: KubeTime.format(pod.createdAt)))
        }
        self.replicaSets = replicaSets.keys.sorted().compactMap { replicaSets[$0]?.set }
        var deployments: [String: AppsWorkload] = [:]
        for (key, entry) in replicaSets {
            let namespace = String(key.split(separator: "/")[0])
            let deploymentKey = "\(namespace)/\(entry.deployment)"
            var deployment =
                deployments[deploymentKey]
                ?? AppsWorkload(
                    kind: "Deployment",
                    metadata: ObjectMeta(
                        name: entry.deployment, namespace: namespace, uid: uid("Deployment", deploymentKey),
                        creationTimestamp: created,
                        labels: entry.set.metadata.labels?.filter { $0.key != "pod-template-hash" }),
                    spec: WorkloadSpec(
                        replicas: 0,
                        selector: LabelSelector(
                            matchLabels: entry.set.spec.selector.matchLabels.filter { $0.key != "pod-template-hash" })),
                    status: WorkloadStatus(replicas: 0))
            deployment.spec.replicas += entry.set.spec.replicas
            deployment.status = WorkloadStatus(replicas: deployment.spec.replicas)
            deployments[deploymentKey] = deployment
        }
        self.deployments = deployments.keys.sorted().compactMap { deployments[$0] }

        for service in inventory.services {
            let key = "\(service.namespace)/\(service.name)"
            services.append(
                Service(
                    metadata: ObjectMeta(
                        name: service.name, namespace: service.namespace, uid: uid("Service", key),
                        creationTimestamp: created),
                    spec: Service.Spec(
                        clusterIP: service.clusterIP, clusterIPs: service.addresses,
                        ports: service.ports.map {
                            Service.Port(
                                name: $0.name.isEmpty ? nil : $0.name, protocol: $0.protocol, port: Int($0.port),
                                targetPort: .int(Int($0.targetPort)))
                        }, selector: service.selector.isEmpty ? nil : service.selector)))
            // One slice per address family, as the EndpointSlice controller makes them.
            for family in ["IPv4", "IPv6"] {
                let addresses = service.endpoints.filter { ($0.contains(":") ? "IPv6" : "IPv4") == family }
                let familyIPs = service.addresses.filter { ($0.contains(":") ? "IPv6" : "IPv4") == family }
                guard !addresses.isEmpty || !familyIPs.isEmpty else { continue }
                let name = "\(service.name)-\(family.lowercased())"
                endpointSlices.append(
                    EndpointSlice(
                        metadata: ObjectMeta(
                            name: name, namespace: service.namespace, uid: uid("EndpointSlice", "\(key)/\(family)"),
                            creationTimestamp: created,
                            labels: [
                                EndpointSlice.serviceNameLabel: service.name,
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                            ]),
                        addressType: family,
                        endpoints: addresses.map { ip in
                            let pod = podsByIP[ip]
                            return EndpointSlice.Endpoint(
                                addresses: [ip], conditions: EndpointSlice.Conditions(ready: true), nodeName: pod?.node,
                                targetRef: pod.map {
                                    EndpointSlice.TargetRef(
                                        kind: "Pod", namespace: $0.namespace, name: $0.name,
                                        uid: $0.uid.isEmpty ? uid("Pod", $0.qualifiedName) : $0.uid)
                                })
                        },
                        ports: service.ports.map {
                            EndpointSlice.Port(
                                name: $0.name.isEmpty ? nil : $0.name, protocol: $0.protocol, port: Int($0.targetPort))
                        }))
            }
        }
    }

    /// The ReplicaSet of a Deployment's pod and its template hash: `<deployment>-<hash>-<suffix>`
    /// gives `<deployment>-<hash>`; a pod named otherwise gets a hash of the Deployment's name.
    static func replicaSetName(pod: String, deployment: String) -> (name: String, hash: String) {
        let rest = pod.dropFirst(deployment.count + 1).split(separator: "-")
        if pod.hasPrefix("\(deployment)-"), rest.count == 2 {
            return ("\(deployment)-\(rest[0])", String(rest[0]))
        }
        let hash = String(uid(deployment).filter(\.isLetter).prefix(10))
        return ("\(deployment)-\(hash)", hash)
    }

    /// A stable UUID-shaped identifier from a text (FNV-1a over two seeds).
    static func uid(_ text: String) -> String {
        func fnv(_ seed: UInt64) -> UInt64 {
            var hash = seed
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01b3
            }
            return hash
        }
        let hex = String(format: "%016llx%016llx", fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4))
        let chars = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(chars[$0]) }.joined(separator: "-")
    }
}

// MARK: - What the agent keeps of each object

extension ClusterInventory.Pod {
    /// What the enricher needs of a pod, or nil for a pod without an address of its own
    /// (pending, or host-network: those share their node's, and Hubble names them by node) or
    /// one that has finished.
    public init?(kubernetes pod: Pod) {
        let ips = pod.ips
        guard !ips.isEmpty, pod.spec?.hostNetwork != true, pod.status?.phase != "Succeeded",
            pod.status?.phase != "Failed"
        else { return nil }
        self.init(
            uid: pod.metadata.uid ?? pod.metadata.key, namespace: pod.metadata.namespace ?? "default",
            name: pod.metadata.name, node: pod.spec?.nodeName ?? "", ips: ips, labels: pod.metadata.labels ?? [:],
            workload: Workload.of(owners: pod.metadata.ownerReferences, labels: pod.metadata.labels),
            createdAt: pod.metadata.created ?? Date(timeIntervalSince1970: 0), netns: nil, hostInterface: nil)
    }
}

extension ClusterInventory.Service {
    /// A Service with its ClusterIPs and ports; its endpoints come from its EndpointSlices.
    /// Nil for a headless Service (no ClusterIP: its backends' own addresses are used).
    public init?(kubernetes service: Service) {
        let addresses = service.addresses
        guard let first = addresses.first else { return nil }
        self.init(
            namespace: service.metadata.namespace ?? "default", name: service.metadata.name, clusterIP: first,
            clusterIPs: addresses,
            ports: (service.spec.ports ?? []).map { port in
                var target = UInt16(clamping: port.port)
                if case .int(let number) = port.targetPort { target = UInt16(clamping: number) }
                return ServicePort(
                    name: port.name ?? "", protocol: port.protocol ?? "TCP", port: UInt16(clamping: port.port),
                    targetPort: target)
            }, selector: service.spec.selector ?? [:], endpoints: [])
    }
}

extension ClusterInventory.Node {
    public init(kubernetes node: Node) {
        self.init(
            name: node.metadata.name, internalIPs: node.internalIPs, podCIDRs: node.podCIDRs, uplink: "", netns: nil,
            zone: node.metadata.labels?[ClusterObjects.zoneLabel])
    }
}

/// What a Service's EndpointSlice adds to it: its ready addresses.
public struct SliceAddresses: Sendable, Equatable {
    /// The Service, `namespace/name`.
    public var service: String
    public var addresses: [String]

    public init?(kubernetes slice: EndpointSlice) {
        guard let service = slice.serviceKey else { return nil }
        self.service = service
        addresses = slice.readyAddresses
    }
}
