import ClusterInventory
import Flows
import Foundation
import Synchronization

/// Kubernetes identity of an address at a given time: the narrow question the enricher asks.
public protocol MetadataSource: Sendable {
    /// The pod that had `ip` at `time`, if any.
    func pod(ip: String, at time: Date) -> PodIdentity?
    /// The service whose cluster IP is `ip`, if any.
    func service(ip: String) -> ServiceRef?
    /// Runs `body` with a lookup that a batch calls for each address of its flows (sources may
    /// take their lock once for the whole batch, and hand out one shared answer per address).
    func withLookups(_ body: (_ lookup: (_ ip: String, _ time: Date) -> AddressIdentity) -> Void)
    /// Picks up changes (called about once a second, off the flow path) and returns the pods that
    /// went away since the last call, as `namespace/name` (their metric series expire).
    func refresh() -> [String]
    /// The zone of each node that has one, by node name.
    func nodeZones() -> [String: String]
}

extension MetadataSource {
    public func withLookups(_ body: (_ lookup: (_ ip: String, _ time: Date) -> AddressIdentity) -> Void) {
        body { ip, time in AddressIdentity(pod: pod(ip: ip, at: time), service: service(ip: ip)) }
    }

    public func refresh() -> [String] { [] }

    public func nodeZones() -> [String: String] { [:] }
}

/// What a metadata source knows about one address. A class: every flow carrying the address
/// shares one answer, so handing it to a flow costs one reference count.
public final class AddressIdentity: Sendable {
    public let pod: PodIdentity?
    public let service: ServiceRef?
    /// The node this address belongs to (an InternalIP, or its pod network's gateway), when no
    /// pod has it: `host` on that node, `remote-node` elsewhere.
    public let node: String?
    /// An endpoint of the Kubernetes API server (`default/kubernetes`): `kube-apiserver`.
    public let isKubeAPIServer: Bool
    /// For a Service address: what its backends share (namespace, labels, workload; no pod
    /// name), shown when the node's NAT cannot say which backend a packet went to — e.g. a
    /// connection whose first packet a policy dropped.
    public let serviceBackends: Endpoint?
    /// The pod's endpoint when it names its cluster (else the enricher adds its own cluster's name).
    let endpoint: Endpoint?

    public init(
        pod: PodIdentity?, service: ServiceRef?, node: String? = nil, isKubeAPIServer: Bool = false,
        serviceBackends: Endpoint? = nil
    ) {
        self.pod = pod
        self.service = service
        self.node = node
        self.isKubeAPIServer = isKubeAPIServer
        self.serviceBackends = serviceBackends
        endpoint = pod.flatMap { $0.endpoint.clusterName.isEmpty ? nil : $0.endpoint }
    }

    /// A Service's own address (a ClusterIP), which no pod holds.
    public var isServiceAddress: Bool { service != nil && pod == nil }

    /// An address nobody in the cluster holds.
    public static let unknown = AddressIdentity(pod: nil, service: nil)
}

/// What a flow needs to know about a pod. A class: every flow of the pod shares one instance,
/// so handing it along costs one reference count, not one per field.
public final class PodIdentity: Sendable, Equatable {
    public let uid: String
    public let namespace: String
    public let name: String
    public let node: String
    public let labels: [String: String]
    public let workload: Workload?
    /// Labels as Hubble shows them: `k8s:key=value`, plus the pod's namespace label, sorted.
    /// Computed once: every flow of the pod carries them.
    public let hubbleLabels: [String]
    /// The pod as a flow endpoint, built once for all its flows.
    public let endpoint: Endpoint

    /// `hubbleLabels`, when given, must be `hubbleLabels(labels, namespace:)`: pods with the same
    /// labels share one array (most pods come in such sets: a ReplicaSet's pods).
    public init(
        uid: String, namespace: String, name: String, node: String, labels: [String: String], workload: Workload?,
        clusterName: String = "", hubbleLabels: [String]? = nil
    ) {
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.node = node
        self.labels = labels
        self.workload = workload
        let hubbleLabels = hubbleLabels ?? Self.hubbleLabels(labels, namespace: namespace)
        self.hubbleLabels = hubbleLabels
        endpoint = Endpoint(
            namespace: namespace, podName: name, labels: hubbleLabels,
            workloads: workload.map { [($0.kind, $0.name)] } ?? [], clusterName: clusterName, nodeName: node)
    }

    /// Kubernetes labels as Hubble shows them: `k8s:key=value` and the namespace label, sorted.
    static func hubbleLabels(_ labels: [String: String], namespace: String) -> [String] {
        (labels.map { "k8s:\($0.key)=\($0.value)" } + ["k8s:io.kubernetes.pod.namespace=\(namespace)"]).sorted()
    }

    public static func == (a: PodIdentity, b: PodIdentity) -> Bool {
        a.uid == b.uid && a.namespace == b.namespace && a.name == b.name && a.node == b.node && a.labels == b.labels
            && a.workload == b.workload
    }
}
