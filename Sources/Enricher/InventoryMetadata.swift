import ClusterInventory
import Flows
import Foundation
import Synchronization

/// The metadata source of a cluster inventory (docs/inventory.md): in standalone mode a file,
/// re-read when it changes; in memory for tests and the bench (`replace(with:)` updates it).
/// Pods that leave the inventory are remembered for `retention` so that late flows of a deleted
/// pod, and addresses reused by a new pod, are attributed by time.
public final class InventoryMetadata: MetadataSource {
    /// The file it follows; nil when held in memory.
    public let path: String?
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

    /// An inventory held in memory.
    public init(inventory: Inventory, retention: Double = 300) {
        path = nil
        self.retention = retention
        replace(with: inventory)
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

    public func refresh() -> [String] {
        reloadIfChanged()
        return takeDeletedPods().map { "\($0.pod.namespace)/\($0.pod.name)" }
    }

    /// Re-reads the file if its modification time changed (checked at most once a second).
    /// Lookups never touch the file.
    public func reloadIfChanged(force: Bool = false) {
        guard let path else { return }
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
        replace(with: inventory, modified: modified)
    }

    /// Makes `inventory` the current one: pods missing from it end their tenure now.
    public func replace(with inventory: Inventory) { replace(with: inventory, modified: nil) }

    func replace(with inventory: Inventory, modified: Date?) {
        let now = Date()
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
