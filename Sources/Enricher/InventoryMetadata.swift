import ClusterInventory
import Flows
import Foundation
import Locking

/// The metadata source of a cluster inventory (docs/inventory.md): in standalone mode a file,
/// re-read when it changes; in memory for tests and the bench (`replace(with:)` updates it).
/// Pods that leave the inventory are remembered for `retention` so that late flows of a deleted
/// pod, and addresses reused by a new pod, are attributed by time.
public final class InventoryMetadata: MetadataSource {
    /// The file it follows; nil when held in memory.
    public let path: String?
    let retention: Double
    /// Told once when the file can no longer be read (a sentence saying why) and once when it
    /// is read again (nil). Meanwhile flows keep the identities read before.
    private let onReadProblem: @Sendable (String?) -> Void
    private let readProblem = Lock<String?>(nil)
    private let state = Lock(
        {
            var state = State()
            state.flushCache()
            return state
        }())

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
        /// Sized by `flushCache()` (a bare `State()` allocates nothing: `update` makes one per change).
        var cachedIPs: [String] = []
        var cachedAnswers: [AddressIdentity] = []
        var modified: Date?
        var checked = Date.distantPast
        var byIP: [String: [Tenure]] = [:]
        var services: [String: ServiceAddress] = [:]
        /// Addresses of nodes (InternalIPs and pod network gateways) → node name.
        var nodeAddresses: [String: String] = [:]
        /// Zones of the nodes that have one, by node name.
        var nodeZones: [String: String] = [:]
        /// Endpoints of `default/kubernetes`: the API server.
        var apiServerAddresses: Set<String> = []
        var deleted: [(pod: PodIdentity, at: Date)] = []
        /// Current pods by uid: who left shows as the difference.
        var known: [String: PodIdentity] = [:]
        /// Their addresses, and their own labels (without their namespace's), by uid.
        var addresses: [String: [String]] = [:]
        var rawLabels: [String: [String: String]] = [:]
        /// Labels of namespaces (Kubernetes source), which their pods carry.
        var namespaceLabels: [String: [String: String]] = [:]
        /// Label sets in use, shared by the pods that have them.
        var labelSets: [LabelSet: SharedLabels] = [:]
        var lastPrune: Date?

        /// Empties the cache of answers (sizing it the first time).
        mutating func flushCache() {
            cachedIPs = [String](repeating: "", count: InventoryMetadata.cacheSlots)
            cachedAnswers = [AddressIdentity](repeating: .unknown, count: InventoryMetadata.cacheSlots)
        }
    }

    /// A pod's own labels in its namespace.
    struct LabelSet: Hashable {
        var namespace: String
        var labels: [String: String]
    }

    /// One label set's dictionaries and Hubble labels, shared by its pods.
    struct SharedLabels {
        var own: [String: String]
        var merged: [String: String]
        var hubble: [String]
    }

    /// A Service's address: the Service, and what its backends share.
    struct ServiceAddress {
        var service: ServiceRef
        var backends: Endpoint?
    }

    public init(path: String, retention: Double = 300, onReadProblem: @escaping @Sendable (String?) -> Void = { _ in })
    {
        self.path = path
        self.retention = retention
        self.onReadProblem = onReadProblem
        reloadIfChanged(force: true)
    }

    /// An inventory held in memory.
    public init(inventory: Inventory, retention: Double = 300) {
        path = nil
        self.retention = retention
        onReadProblem = { _ in }
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

    /// How many pods the tables hold now.
    public var podCount: Int { state.withLock { $0.known.count } }

    /// Pods that left the inventory since the last call (for metric series expiry).
    public func takeDeletedPods() -> [(pod: PodIdentity, at: Date)] {
        state.withLock { state in
            defer { state.deleted.removeAll() }
            return state.deleted
        }
    }

    public func nodeZones() -> [String: String] { state.withLock { $0.nodeZones } }

    public func refresh() -> [String] {
        reloadIfChanged()
        update { _ in }  // prunes tenures past their retention
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
        let inventory: Inventory
        do { inventory = try Inventory.load(from: path) } catch {
            return noteReadProblem("\(error) Flows keep the identities read before until it can be read again.")
        }
        replace(with: inventory, modified: modified)
        noteReadProblem(nil)
    }

    /// Tells `onReadProblem` when the problem changes (so a file gone for an hour is said once).
    private func noteReadProblem(_ problem: String?) {
        let changed = readProblem.withLock { current in
            defer { current = problem }
            return current != problem
        }
        if changed { onReadProblem(problem) }
    }

    /// Makes `inventory` the current one: pods missing from it end their tenure now.
    public func replace(with inventory: Inventory) { replace(with: inventory, modified: nil) }

    func replace(with inventory: Inventory, modified: Date?) {
        update { batch in
            batch.replacePods(inventory.pods, cluster: inventory.cluster)
            batch.setServices(inventory.services, cluster: inventory.cluster)
            batch.setNodes(inventory.nodes)
        }
        state.withLock { $0.modified = modified }
    }

    /// Changes the tables in one step (one lock, one cache flush), for sources that follow
    /// changes as they come (the Kubernetes API) instead of re-reading a whole inventory.
    public func update(_ body: (inout Batch) -> Void) {
        state.withLock { state in
            var batch = Batch(state: state, now: Date(), retention: retention)
            state = State()  // the batch holds the only reference: no copy on write
            body(&batch)
            batch.prune()
            state = batch.state
            // Answers may have changed: forget the cached ones (only then: refresh() prunes
            // every second, mostly with nothing to do).
            if batch.changed { state.flushCache() }
        }
    }

    /// Changes to the tables, applied by `update`.
    public struct Batch {
        var state: State
        let now: Date
        let retention: Double
        /// Whether anything an answer depends on changed.
        var changed = false

        /// Adds or changes a pod: a new pod on an address ends the previous holder's tenure
        /// there at its creation; addresses it no longer has end its own now.
        public mutating func upsert(_ pod: Pod, cluster: String) {
            changed = true
            let labels = sharedLabels(pod.labels, namespace: pod.namespace)
            let identity = PodIdentity(
                uid: pod.uid, namespace: pod.namespace, name: pod.name, node: pod.node, labels: labels.merged,
                workload: pod.workload, clusterName: cluster, hubbleLabels: labels.hubble)
            for ip in state.addresses[pod.uid] ?? [] where !pod.ips.contains(ip) { end(pod.uid, at: ip) }
            for ip in pod.ips {
                var tenures = state.byIP[ip] ?? []
                if let index = tenures.firstIndex(where: { $0.pod.uid == pod.uid }) {
                    tenures[index].pod = identity
                    tenures[index].until = nil
                } else {
                    for index in tenures.indices where tenures[index].until == nil {
                        tenures[index].until = pod.createdAt
                    }
                    tenures.append(Tenure(pod: identity, from: pod.createdAt))
                }
                state.byIP[ip] = tenures
            }
            state.known[pod.uid] = identity
            state.rawLabels[pod.uid] = labels.own
            state.addresses[pod.uid] = pod.ips
        }

        /// A pod's labels (its own, with its namespace's, as Hubble shows them), the same
        /// copies for every pod that has the same ones: a ReplicaSet's pods share one set.
        mutating func sharedLabels(_ own: [String: String], namespace: String) -> SharedLabels {
            let key = LabelSet(namespace: namespace, labels: own)
            if let shared = state.labelSets[key] { return shared }
            var merged = own
            for (name, value) in state.namespaceLabels[namespace] ?? [:] {
                let key = InventoryMetadata.namespaceLabelPrefix + name
                if merged[key] == nil { merged[key] = value }
            }
            let shared = SharedLabels(
                own: own, merged: merged, hubble: PodIdentity.hubbleLabels(merged, namespace: namespace))
            state.labelSets[key] = shared
            return shared
        }

        /// A pod that went away: its tenures end now and its metric series expire.
        public mutating func remove(uid: String) {
            guard let identity = state.known.removeValue(forKey: uid) else { return }
            for ip in state.addresses.removeValue(forKey: uid) ?? [] { end(uid, at: ip) }
            state.rawLabels.removeValue(forKey: uid)
            state.deleted.append((identity, now))
        }

        /// Exactly these pods exist now (a fresh list): the others are removed — after the new
        /// ones are in, so that a pod that took over an address ends its predecessor's tenure at
        /// its own creation, not now.
        public mutating func replacePods(_ pods: [Pod], cluster: String) {
            let current = Set(pods.map(\.uid))
            for pod in pods { upsert(pod, cluster: cluster) }
            for uid in state.known.keys.filter({ !current.contains($0) }) { remove(uid: uid) }
        }

        /// A namespace's labels, which its pods carry as `io.cilium.k8s.namespace.labels.*`.
        public mutating func setNamespaceLabels(_ labels: [String: String], of namespace: String, cluster: String) {
            guard state.namespaceLabels[namespace] ?? [:] != labels else { return }
            state.namespaceLabels[namespace] = labels.isEmpty ? nil : labels
            state.labelSets = state.labelSets.filter { $0.key.namespace != namespace }
            for (uid, identity) in state.known.filter({ $0.value.namespace == namespace }) {
                guard let ips = state.addresses[uid] else { continue }
                let created = ips.first.flatMap { ip in state.byIP[ip]?.first { $0.pod.uid == uid }?.from } ?? now
                upsert(
                    Pod(
                        uid: uid, namespace: namespace, name: identity.name, node: identity.node, ips: ips,
                        labels: state.rawLabels[uid] ?? [:], workload: identity.workload, createdAt: created,
                        netns: nil,
                        hostInterface: nil), cluster: cluster)
            }
        }

        /// The cluster's Services (their addresses, and what their backends share).
        public mutating func setServices(_ services: [Service], cluster: String) {
            changed = true
            state.services = [:]
            state.apiServerAddresses = []
            for service in services {
                let backends = service.endpoints.compactMap { InventoryMetadata.holder(state.byIP[$0], at: now) }
                let address = ServiceAddress(
                    service: ServiceRef(namespace: service.namespace, name: service.name),
                    backends: InventoryMetadata.backendsEndpoint(service, backends: backends, cluster: cluster))
                for ip in service.addresses where state.services[ip] == nil { state.services[ip] = address }
                if service.namespace == "default" && service.name == "kubernetes" {
                    state.apiServerAddresses.formUnion(service.endpoints)
                }
            }
        }

        /// The cluster's nodes: their InternalIPs and pod network gateways.
        public mutating func setNodes(_ nodes: [Node]) {
            changed = true
            state.nodeAddresses = [:]
            state.nodeZones = [:]
            for node in nodes {
                if let zone = node.zone { state.nodeZones[node.name] = zone }
                for ip in node.internalIPs + node.podCIDRs.compactMap(IPText.gateway(ofCIDR:)) {
                    state.nodeAddresses[ip] = node.name
                }
            }
        }

        mutating func end(_ uid: String, at ip: String) {
            changed = true
            guard var tenures = state.byIP[ip] else { return }
            for index in tenures.indices where tenures[index].pod.uid == uid && tenures[index].until == nil {
                tenures[index].until = now
            }
            state.byIP[ip] = tenures
        }

        /// Forgets tenures that ended more than `retention` ago, and label sets no pod has
        /// (when they are more than twice the pods).
        mutating func prune() {
            guard state.lastPrune.map({ now.timeIntervalSince($0) >= 1 }) ?? true else { return }
            state.lastPrune = now
            if state.labelSets.count > 2 * max(state.known.count, 64) {
                var used: [LabelSet: SharedLabels] = [:]
                for (uid, identity) in state.known {
                    let key = LabelSet(namespace: identity.namespace, labels: state.rawLabels[uid] ?? [:])
                    used[key] = state.labelSets[key]
                }
                state.labelSets = used
            }
            for ip in Array(state.byIP.keys) {
                guard let tenures = state.byIP[ip],
                    tenures.contains(where: { $0.until.map { now.timeIntervalSince($0) > retention } ?? false })
                else { continue }
                let kept = tenures.filter { $0.until.map { now.timeIntervalSince($0) <= retention } ?? true }
                state.byIP[ip] = kept.isEmpty ? nil : kept
                changed = true
            }
        }
    }

    /// Pods carry their namespace's labels under this prefix, as Cilium's label source has them.
    public static let namespaceLabelPrefix = "io.cilium.k8s.namespace.labels."

    /// What a Service's backends share, as one endpoint without a pod name: their namespace,
    /// labels and workload when they all agree (the same identity), else the Service's
    /// namespace and selector.
    static func backendsEndpoint(_ service: Service, backends: [PodIdentity], cluster: String) -> Endpoint {
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
