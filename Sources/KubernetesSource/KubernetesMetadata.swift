import ClusterInventory
import Enricher
import Flows
import Foundation
import KubernetesModel
import Locking
import Logging
import PrometheusExposition

/// The agent's metadata source on a cluster: lists and watches Pods, Services, EndpointSlices,
/// Nodes and Namespaces, and keeps the enricher's address tables equal to what it has seen.
///
/// Pods go straight into the enricher's tables, one event at a time (a cluster's pods are kept
/// once, there); Services, their EndpointSlices and Nodes — a few thousand objects — are kept
/// here and published together after a burst of changes, never taking more than a third of a
/// core: after a publication that took `t`, the next waits `2t`. Pod addresses are attributed
/// by time as with the inventory file: a deleted pod's IP is its own until the deletion, then
/// the new holder's.
public final class KubernetesMetadata: MetadataSource {
    public let cluster: String
    let client: APIClient
    let timing: ReflectorTiming
    let logger: Logger
    let health = SourceHealth()
    /// The enricher's tables, rebuilt from the caches.
    let tables: InventoryMetadata
    private let caches = Lock(Caches())
    private let changed: AsyncStream<Void>.Continuation
    private let changes: AsyncStream<Void>
    private let published = Lock(Published())

    struct Caches {
        var services: [String: ClusterInventory.Service] = [:]
        var endpointSlices: [String: SliceAddresses] = [:]
        var nodes: [String: ClusterInventory.Node] = [:]
        /// Namespace labels by namespace.
        var namespaces: [String: [String: String]] = [:]
        /// Kinds whose first list has arrived.
        var synced: Set<String> = []
    }

    struct Published {
        var nodes: [ClusterInventory.Node] = []
        var generation = 0
        /// Whether a publication has included every kind's first list (Services' backends are
        /// computed from the pods known then).
        var complete = false
    }

    public init(
        access: ClusterAccess, cluster: String, requestTimeout: Duration = .seconds(30),
        timing: ReflectorTiming = ReflectorTiming(), logger: Logger = Logger(label: "osprey-kubernetes")
    ) throws {
        self.cluster = cluster
        client = try APIClient(access: access, requestTimeout: requestTimeout)
        self.timing = timing
        self.logger = logger
        tables = InventoryMetadata(
            inventory: Inventory(cluster: cluster, topology: "kubernetes", nodes: [], pods: [], services: []))
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: - Running

    /// Lists and watches until cancelled.
    public func run() async {
        logger.info(
            "following the Kubernetes API",
            metadata: ["server": "\(client.access.server)", "from": "\(client.access.origin)"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.podReflector().run() }
            group.addTask {
                await self.reflector(.services, ClusterInventory.Service.init(kubernetes:)) {
                    Self.apply($1, to: &$0.services)
                }.run()
            }
            group.addTask {
                await self.reflector(.endpointSlices, SliceAddresses.init(kubernetes:)) {
                    Self.apply($1, to: &$0.endpointSlices)
                }.run()
            }
            group.addTask {
                await self.reflector(.nodes, ClusterInventory.Node.init(kubernetes:)) { Self.apply($1, to: &$0.nodes) }
                    .run()
            }
            group.addTask { await self.namespaceReflector().run() }
            group.addTask { await self.publishChanges() }
            await group.waitForAll()
        }
        client.shutdown()
    }

    func reflector<Object: KubeObject, Cached: Sendable>(
        _ kind: WatchedKind, _ convert: @escaping @Sendable (Object) -> Cached?,
        _ store: @escaping @Sendable (inout Caches, CacheUpdate<Cached>) -> Int
    ) -> Reflector<Object, Cached> {
        Reflector(kind: kind, client: client, timing: timing, health: health, logger: logger, convert: convert) {
            [self] update in
            let count = caches.withLock { caches -> Int in
                if case .replace = update { caches.synced.insert(kind.resource) }
                return store(&caches, update)
            }
            health.cached(kind.resource, count)
            changed.yield()
        }
    }

    /// Pods go to the enricher's tables as they come.
    func podReflector() -> Reflector<KubernetesModel.Pod, ClusterInventory.Pod> {
        Reflector(
            kind: .pods, client: client, timing: timing, health: health, logger: logger,
            convert: ClusterInventory.Pod.init(kubernetes:)
        ) { [self] update in
            tables.update { batch in
                switch update {
                case .replace(let pods): batch.replacePods(Array(pods.values), cluster: cluster)
                case .upsert(_, _, let pod?): batch.upsert(pod, cluster: cluster)
                case .upsert(_, let uid, nil), .delete(_, let uid): batch.remove(uid: uid)
                }
            }
            if case .replace = update { caches.withLock { _ = $0.synced.insert(WatchedKind.pods.resource) } }
            health.cached(WatchedKind.pods.resource, tables.podCount)
            changed.yield()  // Services' backends may have changed
        }
    }

    /// Namespace labels are kept here and given to the tables, whose pods carry them.
    func namespaceReflector() -> Reflector<Namespace, [String: String]> {
        reflector(.namespaces, { (namespace: Namespace) in namespace.metadata.labels ?? [:] }) {
            [self] caches, update in
            let before = caches.namespaces
            let count = Self.apply(update, to: &caches.namespaces)
            let changed = Set(before.keys).union(caches.namespaces.keys).filter { before[$0] != caches.namespaces[$0] }
            if !changed.isEmpty {
                let labels = caches.namespaces
                tables.update { batch in
                    for namespace in changed {
                        batch.setNamespaceLabels(labels[namespace] ?? [:], of: namespace, cluster: cluster)
                    }
                }
            }
            return count
        }
    }

    /// Applies an update to one kind's cache; returns how many objects it holds.
    static func apply<Cached>(_ update: CacheUpdate<Cached>, to cache: inout [String: Cached]) -> Int {
        switch update {
        case .replace(let objects): cache = objects
        case .upsert(let key, _, let object): cache[key] = object
        case .delete(let key, _): cache.removeValue(forKey: key)
        }
        return cache.count
    }

    /// Publishes Services and Nodes after changes, at most at a third of a core.
    func publishChanges() async {
        for await _ in changes {
            // Let a burst of events (a list, a rollout) arrive before rebuilding.
            try? await Task.sleep(for: .milliseconds(20))
            let started = ContinuousClock.now
            publish()
            let cost = ContinuousClock.now - started
            try? await Task.sleep(for: cost * 2)
        }
    }

    /// Makes the enricher's Services and Nodes match the caches now.
    func publish() {
        let (services, nodes, complete) = caches.withLock { caches in
            var endpoints: [String: [String]] = [:]
            for slice in caches.endpointSlices.values { endpoints[slice.service, default: []] += slice.addresses }
            let services = caches.services.map { key, service in
                var service = service
                service.endpoints = endpoints[key] ?? []
                return service
            }
            return (services, Array(caches.nodes.values), caches.synced.count == WatchedKind.all.count)
        }
        tables.update { batch in
            batch.setServices(services, cluster: cluster)
            batch.setNodes(nodes)
        }
        published.withLock {
            $0.nodes = nodes.sorted { $0.name < $1.name }
            $0.generation += 1
            $0.complete = $0.complete || complete
        }
    }

    // MARK: - What others ask

    /// What the source reads, as RBAC names it: (API group, resource, verbs). The deployment's
    /// ClusterRole must grant exactly this (a test checks the rendered manifests).
    public static let permissions: [(group: String, resource: String, verbs: [String])] = WatchedKind.all.map {
        ($0.group, $0.resource, ["list", "watch"])
    }

    /// True once every kind has been listed and published together (the enricher's tables have
    /// the whole cluster, Services' backends included).
    public var hasSynced: Bool { published.withLock { $0.complete } }

    /// How many times the enricher's tables were rebuilt.
    public var generation: Int { published.withLock { $0.generation } }

    /// The cluster's nodes (for the peer service), as of the last rebuild.
    public var nodes: [ClusterInventory.Node] { published.withLock { $0.nodes } }

    public func pod(ip: String, at time: Date) -> PodIdentity? { tables.pod(ip: ip, at: time) }
    public func service(ip: String) -> ServiceRef? { tables.service(ip: ip) }
    public func withLookups(_ body: (_ lookup: (_ ip: String, _ time: Date) -> AddressIdentity) -> Void) {
        tables.withLookups(body)
    }
    public func refresh() -> [String] { tables.refresh() }
    public func nodeZones() -> [String: String] { tables.nodeZones() }

    /// The source's health for /metrics.
    public func families() -> [MetricFamily] {
        let snapshot = health.snapshot.sorted { $0.key < $1.key }
        func family(
            _ name: String, _ help: String, _ kind: MetricFamily.Kind, _ value: (SourceHealth.Counts) -> Double?
        )
            -> MetricFamily
        {
            MetricFamily(
                name: name, help: help, kind: kind,
                samples: snapshot.compactMap { entry in value(entry.value).map { .init([("kind", entry.key)], $0) } })
        }
        return [
            family("osprey_agent_kubernetes_objects", "Objects cached from the Kubernetes API, by kind.", .gauge) {
                Double($0.objects)
            },
            family("osprey_agent_kubernetes_events_total", "Watch events received, by kind.", .counter) {
                Double($0.events)
            },
            family(
                "osprey_agent_kubernetes_watch_restarts_total",
                "Watches the server ended and the agent resumed from the last resourceVersion, by kind.", .counter
            ) { Double($0.watchRestarts) },
            family(
                "osprey_agent_kubernetes_relists_total",
                "Full lists after the server answered 410 Gone (a resourceVersion too old), by kind.", .counter
            ) { Double($0.relists) },
            family(
                "osprey_agent_kubernetes_errors_total",
                "Failed lists and watches (refused, forbidden, timed out, undecodable), by kind.", .counter
            ) { Double($0.errors) },
            family(
                "osprey_agent_kubernetes_last_sync_timestamp_seconds",
                "When a list or a watch of the kind last completed (Unix time).", .gauge
            ) { $0.lastSync.map { $0.timeIntervalSince1970 } },
        ]
    }
}
