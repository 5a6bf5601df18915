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
}

extension MetadataSource {
    public func withLookups(_ body: (_ lookup: (_ ip: String, _ time: Date) -> AddressIdentity) -> Void) {
        body { ip, time in AddressIdentity(pod: pod(ip: ip, at: time), service: service(ip: ip)) }
    }
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

/// A backend a Service address was translated to.
public struct ServiceBackend: Sendable, Equatable {
    public var ip: String
    public var port: UInt16

    public init(ip: String, port: UInt16) {
        self.ip = ip
        self.port = port
    }
}

/// Where the node's NAT (kube-proxy's DNAT) sent a connection that a client opened to a
/// Service address: the narrow question the enricher asks about flows to and from ClusterIPs.
public protocol ServiceTranslation: Sendable {
    /// The backend of the connection `client:clientPort → service:servicePort`, or nil when the
    /// node did not translate it (yet, or ever: a first packet dropped before NAT was confirmed).
    func backend(
        client: String, clientPort: UInt16, service: String, servicePort: UInt16, protocolNumber: UInt8
    )
        -> ServiceBackend?
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

    public init(
        uid: String, namespace: String, name: String, node: String, labels: [String: String], workload: Workload?,
        clusterName: String = ""
    ) {
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.node = node
        self.labels = labels
        self.workload = workload
        let hubbleLabels = Self.hubbleLabels(labels, namespace: namespace)
        self.hubbleLabels = hubbleLabels
        endpoint = Endpoint(
            namespace: namespace, podName: name, labels: hubbleLabels,
            workloads: workload.map { [($0.kind, $0.name)] } ?? [], clusterName: clusterName)
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

/// Fills in a flow's source and destination endpoints and services.
///
/// A pod's packets to a Service carry its ClusterIP where Osprey sees them leave the pod (the
/// node translates them later); with a `ServiceTranslation` the enricher names the backend the
/// node chose instead — its address, port and pod — keeps the Service in `destination_service`
/// (`source_service` on replies) and the ClusterIP in `serviceAddress`, as Hubble shows a
/// Service's traffic on a Cilium cluster.
public struct Enricher: Sendable {
    let metadata: any MetadataSource
    let translation: (any ServiceTranslation)?
    let nodeName: String
    let clusterName: String

    public init(
        metadata: any MetadataSource, nodeName: String, clusterName: String,
        translation: (any ServiceTranslation)? = nil
    ) {
        self.metadata = metadata
        self.translation = translation
        self.nodeName = nodeName
        self.clusterName = clusterName
    }

    public func enrich(_ flow: inout Flow) {
        metadata.withLookups { lookup in apply(lookup, to: &flow) }
    }

    /// Enriches a whole batch (the metadata source's lock is taken once).
    public func enrich(_ flows: inout [Flow]) {
        metadata.withLookups { lookup in
            for index in flows.indices { apply(lookup, to: &flows[index]) }
        }
    }

    private func apply(_ lookup: (String, Date) -> AddressIdentity, to flow: inout Flow) {
        let time = flow.time
        var sourceAddress = lookup(flow.sourceIP, time)
        var destinationAddress = lookup(flow.destinationIP, time)
        let sourceService = sourceAddress.service
        let destinationService = destinationAddress.service
        if let translation, destinationAddress.isServiceAddress || sourceAddress.isServiceAddress {
            let ports = flow.l4.ports
            if destinationAddress.isServiceAddress,
                let backend = translation.backend(
                    client: flow.sourceIP, clientPort: ports.source, service: flow.destinationIP,
                    servicePort: ports.destination, protocolNumber: flow.l4.protocolNumber)
            {
                flow.serviceAddress = Self.hostPort(flow.destinationIP, ports.destination)
                flow.destinationIP = backend.ip
                flow.l4 = flow.l4.withPorts(source: ports.source, destination: backend.port)
                destinationAddress = lookup(backend.ip, time)
            } else if sourceAddress.isServiceAddress,
                let backend = translation.backend(
                    client: flow.destinationIP, clientPort: ports.destination, service: flow.sourceIP,
                    servicePort: ports.source, protocolNumber: flow.l4.protocolNumber)
            {
                flow.serviceAddress = Self.hostPort(flow.sourceIP, ports.source)
                flow.sourceIP = backend.ip
                flow.l4 = flow.l4.withPorts(source: backend.port, destination: ports.destination)
                sourceAddress = lookup(backend.ip, time)
            }
        }
        flow.setIdentities(
            source: endpoint(sourceAddress), destination: endpoint(destinationAddress),
            sourceService: sourceService, destinationService: destinationService)
        // A drop has no observation point; its direction follows the pod of this node it concerns.
        if flow.trafficDirection == .unknown {
            if sourceAddress.pod?.node == nodeName {
                flow.trafficDirection = .egress
            } else if destinationAddress.pod?.node == nodeName {
                flow.trafficDirection = .ingress
            }
        }
    }

    /// The flow endpoint of an address: its pod (named with this cluster when the source did
    /// not), a reserved identity for node and API server addresses, or what a Service's
    /// backends share; nil (world) for an address outside the cluster.
    func endpoint(_ address: AddressIdentity) -> Endpoint? {
        if let ready = address.endpoint { return ready }
        if var endpoint = address.pod?.endpoint {
            endpoint.clusterName = clusterName
            return endpoint
        }
        if let node = address.node, node == nodeName { return .host }
        if address.isKubeAPIServer { return .kubeAPIServer }
        if address.node != nil { return .remoteNode }
        return address.serviceBackends
    }

    /// `ip:port`, with brackets around an IPv6 address.
    static func hostPort(_ ip: String, _ port: UInt16) -> String {
        ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

/// The standalone metadata source: a cluster inventory file (docs/inventory.md), re-read when
/// it changes. Pods that leave the file are remembered for `retention` so that late flows of a
/// deleted pod, and addresses reused by a new pod, are attributed by time.
public final class InventoryMetadata: MetadataSource {
    public let path: String
    let retention: Double
    private let state = Mutex(State())

    struct Tenure {
        var pod: PodIdentity
        var from: Date
        var until: Date?
    }

    /// Slots of the direct-mapped cache in front of the address tables: flows repeat the same
    /// few addresses, and comparing two short strings is far cheaper than hashing one.
    static let cacheSlots = 1024

    struct State {
        /// Recent answers for addresses whose holder does not depend on time (one tenure):
        /// `cachedIPs[slot]` ("" when free) and its answer `cachedAnswers[slot]`.
        var cachedIPs = [String](repeating: "", count: InventoryMetadata.cacheSlots)
        var cachedAnswers = [AddressIdentity](repeating: .unknown, count: InventoryMetadata.cacheSlots)
        var modified: Date?
        var checked = Date.distantPast
        var byIP: [String: [Tenure]] = [:]
        var services: [String: ServiceAddress] = [:]
        /// Addresses of nodes (InternalIPs and pod network gateways) → node name.
        var nodeAddresses: [String: String] = [:]
        /// Endpoints of `default/kubernetes`: the API server.
        var apiServerAddresses: Set<String> = []
        var deleted: [(pod: PodIdentity, at: Date)] = []
        /// Pods of the last reading, by uid: who left shows as the difference.
        var known: [String: PodIdentity] = [:]
    }

    /// A Service's address: the Service, and what its backends share.
    struct ServiceAddress {
        var service: ServiceRef
        var backends: Endpoint?
    }

    public init(path: String, retention: Double = 300) {
        self.path = path
        self.retention = retention
        reloadIfChanged(force: true)
    }

    public func pod(ip: String, at time: Date) -> PodIdentity? {
        state.withLock { Self.holder($0.byIP[ip], at: time) }
    }

    public func service(ip: String) -> ServiceRef? {
        state.withLock { $0.services[ip]?.service }
    }

    public func withLookups(_ body: (_ lookup: (_ ip: String, _ time: Date) -> AddressIdentity) -> Void) {
        state.withLock { state in body { Self.resolve($0, at: $1, &state) } }
    }

    /// The pod and service of `ip`, from the cache when it holds the address.
    static func resolve(_ ip: String, at time: Date, _ state: inout State) -> AddressIdentity {
        // A short string's 16 bytes are its characters: a hash without hashing.
        let raw = unsafeBitCast(ip, to: (UInt64, UInt64).self)
        let slot = Int(truncatingIfNeeded: ((raw.0 &+ raw.1) &* 0x9E37_79B9_7F4A_7C15) >> 54) % cacheSlots
        if state.cachedIPs[slot] == ip { return state.cachedAnswers[slot] }
        let tenures = state.byIP[ip]
        let pod = holder(tenures, at: time)
        let service = state.services[ip]
        let node = pod == nil ? state.nodeAddresses[ip] : nil
        let apiServer = state.apiServerAddresses.contains(ip)
        let answer =
            pod == nil && service == nil && node == nil && !apiServer
            ? AddressIdentity.unknown
            : AddressIdentity(
                pod: pod, service: service?.service, node: node, isKubeAPIServer: apiServer,
                serviceBackends: service?.backends)
        if (tenures?.count ?? 0) <= 1 {
            state.cachedIPs[slot] = ip
            state.cachedAnswers[slot] = answer
        }
        return answer
    }

    /// The pod that held an address at that time; else the newest one.
    static func holder(_ tenures: [Tenure]?, at time: Date) -> PodIdentity? {
        guard let tenures, !tenures.isEmpty else { return nil }
        // One holder (almost every address): the answer whatever the time.
        if tenures.count == 1 { return tenures[0].pod }
        return tenures.last { $0.from <= time.addingTimeInterval(1) && ($0.until ?? .distantFuture) >= time }?.pod
            ?? tenures.last?.pod
    }

    /// Pods that left the inventory since the last call (for metric series expiry).
    public func takeDeletedPods() -> [(pod: PodIdentity, at: Date)] {
        state.withLock { state in
            defer { state.deleted.removeAll() }
            return state.deleted
        }
    }

    /// Re-reads the file if its modification time changed (checked at most once a second).
    /// The flow pipeline calls it once a second; lookups never touch the file.
    public func reloadIfChanged(force: Bool = false) {
        let now = Date()
        let due = state.withLock { state -> Bool in
            guard force || now.timeIntervalSince(state.checked) >= 1 else { return false }
            state.checked = now
            return true
        }
        guard due else { return }
        let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate]) as? Date
        guard force || modified != state.withLock({ $0.modified }) else { return }
        guard let inventory = try? Inventory.load(from: path) else { return }
        state.withLock { state in
            state.cachedIPs = [String](repeating: "", count: Self.cacheSlots)
            state.cachedAnswers = [AddressIdentity](repeating: .unknown, count: Self.cacheSlots)
            state.modified = modified
            var current: Set<String> = []
            var known: [String: PodIdentity] = [:]
            for pod in inventory.pods {
                let identity = PodIdentity(
                    uid: pod.uid, namespace: pod.namespace, name: pod.name, node: pod.node, labels: pod.labels,
                    workload: pod.workload, clusterName: inventory.cluster)
                current.insert(pod.uid)
                known[pod.uid] = identity
                for ip in pod.ips {
                    var tenures = state.byIP[ip] ?? []
                    if let index = tenures.firstIndex(where: { $0.pod.uid == pod.uid }) {
                        tenures[index].pod = identity
                        tenures[index].until = nil
                    } else {
                        // A new pod on this address: the previous holder's tenure ends now.
                        for index in tenures.indices where tenures[index].until == nil {
                            tenures[index].until = pod.createdAt
                        }
                        tenures.append(Tenure(pod: identity, from: pod.createdAt))
                    }
                    state.byIP[ip] = tenures
                }
            }
            for (ip, tenures) in state.byIP {
                var kept: [Tenure] = []
                for var tenure in tenures {
                    if tenure.until == nil && !current.contains(tenure.pod.uid) { tenure.until = now }
                    if let until = tenure.until, now.timeIntervalSince(until) > retention { continue }
                    kept.append(tenure)
                }
                state.byIP[ip] = kept.isEmpty ? nil : kept
            }
            for (uid, pod) in state.known where known[uid] == nil { state.deleted.append((pod, now)) }
            state.known = known
            state.services = [:]
            state.apiServerAddresses = []
            var podsByIP: [String: PodIdentity] = [:]
            for pod in inventory.pods { for ip in pod.ips { podsByIP[ip] = known[pod.uid] } }
            for service in inventory.services {
                let address = ServiceAddress(
                    service: ServiceRef(namespace: service.namespace, name: service.name),
                    backends: Self.backendsEndpoint(service, podsByIP: podsByIP, cluster: inventory.cluster))
                for ip in service.addresses where state.services[ip] == nil { state.services[ip] = address }
                if service.namespace == "default" && service.name == "kubernetes" {
                    state.apiServerAddresses.formUnion(service.endpoints)
                }
            }
            state.nodeAddresses = [:]
            for node in inventory.nodes {
                for ip in node.internalIPs + node.podCIDRs.compactMap(IPText.gateway(ofCIDR:)) {
                    state.nodeAddresses[ip] = node.name
                }
            }
        }
    }

    /// What a Service's backends share, as one endpoint without a pod name: their namespace,
    /// labels and workload when they all agree (the same identity), else the Service's
    /// namespace and selector.
    static func backendsEndpoint(_ service: Service, podsByIP: [String: PodIdentity], cluster: String) -> Endpoint {
        let backends = service.endpoints.compactMap { podsByIP[$0] }
        if let first = backends.first,
            backends.allSatisfy({ $0.hubbleLabels == first.hubbleLabels && $0.workload == first.workload })
        {
            return Endpoint(
                namespace: first.namespace, podName: "", labels: first.hubbleLabels,
                workloads: first.workload.map { [($0.kind, $0.name)] } ?? [], clusterName: cluster)
        }
        return Endpoint(
            namespace: service.namespace, podName: "",
            labels: PodIdentity.hubbleLabels(service.selector, namespace: service.namespace), workloads: [],
            clusterName: cluster)
    }
}
