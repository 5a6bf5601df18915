import ClusterInventory
import Enricher
import Flows
import Foundation
import KubernetesAPIServer
import KubernetesModel
import KubernetesSource
import Lab
import Synchronization
import TestSupport
import Testing

/// The agent's Kubernetes source against the lab's API server, over TLS with a bearer token:
/// what it learns, and how it rides out what real API servers do (streams that end, 410 Gone,
/// hangs, rotated tokens, RBAC refusals).
@Suite("Kubernetes metadata source", .serialized)
struct KubernetesSourceTests {
    /// The lab's cluster as the API server serves it.
    static func labObjects() throws -> (Inventory, ClusterObjects) {
        let plan = LabPlan(config: try LabConfig(name: "ospk"))
        let inventory = plan.inventory(
            uids: Dictionary(uniqueKeysWithValues: plan.pods.map { ($0.qualifiedName, UUID().uuidString) }))
        return (inventory, ClusterObjects(inventory: inventory))
    }

    static let fast: ReflectorTiming = {
        var timing = ReflectorTiming()
        timing.initialBackoff = .milliseconds(100)
        timing.maxBackoff = .milliseconds(500)
        timing.watchSeconds = 20...30
        timing.pageSize = 7
        return timing
    }()

    /// Runs a source against `kubeconfig` while `body` runs.
    static func withSource(
        _ kubeconfig: String, logs: LogLines = LogLines(), _ body: (KubernetesMetadata) async throws -> Void
    ) async throws {
        let source = try KubernetesMetadata(
            access: try ClusterAccess.kubeconfig(path: kubeconfig), cluster: "ospk", requestTimeout: .seconds(1),
            timing: fast, logger: logs.logger)
        let task = Task { await source.run() }
        defer { task.cancel() }
        try await body(source)
        task.cancel()
        await task.value
    }

    static func counter(_ source: KubernetesMetadata, _ name: String, kind: String) -> Double {
        source.families().first { $0.name == name }?.samples.first { $0.labels.contains { $0 == ("kind", kind) } }?
            .value ?? 0
    }

    @Test("syncs every kind, then follows adds, updates and deletes of each")
    func syncAndFollow() async throws {
        let (inventory, objects) = try Self.labObjects()
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            try await Self.withSource(try fixture.kubeconfig()) { source in
                // A generous window: beside the lab suites on a loaded 2-core machine, the first
                // sync has been seen to take longer than 15 s.
                #expect(await until(within: 60) { source.hasSynced })
                // Pods: name, node, labels (with the namespace's, as Cilium's label source), workload.
                let frontend = try #require(inventory.pods.first { $0.workload?.name == "frontend" })
                let pod = try #require(source.pod(ip: frontend.ips[0], at: Date()))
                #expect(pod.name == frontend.name && pod.namespace == frontend.namespace && pod.node == frontend.node)
                #expect(pod.workload == Workload(kind: "Deployment", name: "frontend"))
                #expect(pod.labels["app"] == frontend.labels["app"])
                #expect(
                    pod.hubbleLabels.contains(
                        "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=\(frontend.namespace)"))
                #expect(source.pod(ip: frontend.ips[1], at: Date())?.name == frontend.name)  // IPv6 too
                // Services, both families, and their backends.
                let service = try #require(inventory.services.first { $0.name == "frontend" })
                #expect(source.service(ip: service.clusterIP)?.name == "frontend")
                #expect(source.service(ip: try #require(service.clusterIPs?.last))?.name == "frontend")
                var backends: Endpoint?
                source.withLookups { lookup in backends = lookup(service.clusterIP, Date()).serviceBackends }
                #expect(backends?.workloads.first?.name == "frontend")
                // Nodes, for the peer service.
                #expect(source.nodes.map(\.name) == inventory.nodes.map(\.name))
                #expect(source.nodes.first?.internalIPs == inventory.nodes.first?.internalIPs)

                // Add a pod of a StatefulSet and a Job of a CronJob.
                let added = KubernetesModel.Pod(
                    metadata: ObjectMeta(
                        name: "db-0", namespace: "shop", uid: "uid-db-0", creationTimestamp: KubeTime.format(Date()),
                        labels: ["app": "db"],
                        ownerReferences: [
                            OwnerReference(apiVersion: "apps/v1", kind: "StatefulSet", name: "db", uid: "s")
                        ]
                    ), spec: .init(nodeName: inventory.nodes[0].name),
                    status: .init(phase: "Running", podIP: "10.244.1.250", podIPs: [.init(ip: "10.244.1.250")]))
                fixture.server.upsert(added)
                var job = added
                job.metadata = ObjectMeta(
                    name: "report-29000000-x7k2p", namespace: "shop", uid: "uid-job", labels: ["app": "report"],
                    ownerReferences: [
                        OwnerReference(apiVersion: "batch/v1", kind: "Job", name: "report-29000000", uid: "j")
                    ])
                job.status = .init(phase: "Running", podIP: "10.244.1.251", podIPs: nil)
                fixture.server.upsert(job)
                #expect(await until { source.pod(ip: "10.244.1.250", at: Date())?.name == "db-0" })
                #expect(
                    source.pod(ip: "10.244.1.250", at: Date())?.workload == Workload(kind: "StatefulSet", name: "db"))
                #expect(await until { source.pod(ip: "10.244.1.251", at: Date()) != nil })
                #expect(
                    source.pod(ip: "10.244.1.251", at: Date())?.workload == Workload(kind: "CronJob", name: "report"))
                // Update its labels.
                var relabelled = added
                relabelled.metadata.labels = ["app": "db", "tier": "storage"]
                fixture.server.upsert(relabelled)
                #expect(await until { source.pod(ip: "10.244.1.250", at: Date())?.labels["tier"] == "storage" })
                // Delete it: its series expire (refresh names it) and the cache no longer holds it.
                let podsBefore = Self.counter(source, "osprey_agent_kubernetes_objects", kind: "pods")
                #expect(fixture.server.delete(resource: "pods", key: "shop/db-0"))
                var deleted: [String] = []
                #expect(
                    await until {
                        deleted += source.refresh(); return deleted.contains("shop/db-0")
                    })
                #expect(Self.counter(source, "osprey_agent_kubernetes_objects", kind: "pods") == podsBefore - 1)

                // A Service: added, its EndpointSlice changed, deleted.
                let newService = KubernetesModel.Service(
                    metadata: ObjectMeta(name: "db", namespace: "shop", uid: "svc-db"),
                    spec: .init(
                        clusterIP: "10.96.0.200", clusterIPs: ["10.96.0.200"],
                        ports: [.init(name: "pg", protocol: "TCP", port: 5432, targetPort: .int(5432))],
                        selector: ["app": "db"]))
                fixture.server.upsert(newService)
                #expect(await until { source.service(ip: "10.96.0.200")?.name == "db" })
                fixture.server.upsert(
                    EndpointSlice(
                        metadata: ObjectMeta(
                            name: "db-abcde", namespace: "shop", labels: [EndpointSlice.serviceNameLabel: "db"]),
                        addressType: "IPv4",
                        endpoints: [
                            .init(
                                addresses: ["10.244.1.251"], conditions: .init(ready: true), nodeName: nil,
                                targetRef: nil)
                        ],
                        ports: nil))
                #expect(
                    await until {
                        var workload: String?
                        source.withLookups {
                            workload = $0("10.96.0.200", Date()).serviceBackends?.workloads.first?.name
                        }
                        return workload == "report"
                    })
                #expect(fixture.server.delete(resource: "services", key: "shop/db"))
                #expect(await until { source.service(ip: "10.96.0.200") == nil })

                // A node joins and leaves; a namespace's labels change.
                var node = objects.nodes[0]
                node.metadata.name = "ospk-node-9"
                node.status?.addresses = [.init(type: "InternalIP", address: "192.168.77.19")]
                fixture.server.upsert(node)
                #expect(await until { source.nodes.contains { $0.name == "ospk-node-9" } })
                #expect(fixture.server.delete(resource: "nodes", key: "ospk-node-9"))
                #expect(await until { !source.nodes.contains { $0.name == "ospk-node-9" } })
                var namespace = try #require(objects.namespaces.first { $0.metadata.name == frontend.namespace })
                namespace.metadata.labels?["team"] = "web"
                fixture.server.upsert(namespace)
                #expect(
                    await until {
                        source.pod(ip: frontend.ips[0], at: Date())?.hubbleLabels.contains(
                            "k8s:io.cilium.k8s.namespace.labels.team=web") ?? false
                    })
            }
        }
    }

    @Test("a watch broken mid-stream resumes from its resourceVersion and misses nothing")
    func brokenWatch() async throws {
        let (_, objects) = try Self.labObjects()
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            try await Self.withSource(try fixture.kubeconfig()) { source in
                #expect(await until { source.hasSynced && fixture.server.watchCount == 5 })
                fixture.server.endAllWatches()
                // Changes made while no watch is open arrive once the watch resumes.
                var pod = objects.pods[0]
                pod.metadata.name = "late-pod"
                pod.metadata.uid = "late"
                pod.status?.podIPs = [.init(ip: "10.244.2.240")]
                fixture.server.upsert(pod)
                #expect(await until { source.pod(ip: "10.244.2.240", at: Date())?.name == "late-pod" })
                #expect(Self.counter(source, "osprey_agent_kubernetes_watch_restarts_total", kind: "pods") >= 1)
                #expect(Self.counter(source, "osprey_agent_kubernetes_relists_total", kind: "pods") == 0)
            }
        }
    }

    @Test("410 Gone lists again, and the cache ends equal to the server's state")
    func gone() async throws {
        let (_, objects) = try Self.labObjects()
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            try await Self.withSource(try fixture.kubeconfig()) { source in
                #expect(await until { source.hasSynced && fixture.server.watchCount == 5 })
                fixture.server.hang(true)
                fixture.server.endAllWatches()
                // While the agent cannot see it: a pod and a service go away, and history is compacted.
                let victim = objects.pods[1]
                #expect(fixture.server.delete(resource: "pods", key: victim.metadata.key))
                #expect(fixture.server.delete(resource: "services", key: objects.services[1].metadata.key))
                fixture.server.compact()
                fixture.server.hang(false)
                #expect(
                    await until(within: 20) {
                        Self.counter(source, "osprey_agent_kubernetes_relists_total", kind: "pods") >= 1
                            && Self.counter(source, "osprey_agent_kubernetes_objects", kind: "pods")
                                == Double(objects.pods.count - 1)
                            && source.service(ip: objects.services[1].spec.clusterIP ?? "") == nil
                    })
                var deleted: [String] = []
                #expect(
                    await until {
                        deleted += source.refresh(); return deleted.contains(victim.metadata.key)
                    })
            }
        }
    }

    @Test("a server that hangs times out, is counted and retried; the source recovers")
    func hangingServer() async throws {
        let (_, objects) = try Self.labObjects()
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            fixture.server.hang(true)
            let logs = LogLines()
            try await Self.withSource(try fixture.kubeconfig(), logs: logs) { source in
                #expect(
                    await until { Self.counter(source, "osprey_agent_kubernetes_errors_total", kind: "pods") >= 2 })
                #expect(!source.hasSynced)
                #expect(logs.all.contains { $0.contains("pods") && $0.contains("got no answer in time") })
                fixture.server.hang(false)
                #expect(await until { source.hasSynced })
                #expect(source.pod(ip: objects.pods[0].ips[0], at: Date())?.name == objects.pods[0].metadata.name)
            }
        }
    }

    @Test("a rotated service account token is read again from its file")
    func tokenRotation() async throws {
        let (_, objects) = try Self.labObjects()
        try await withAPIServer(tokens: ["old-token"]) { fixture in
            fixture.server.apply(objects)
            let tokenFile = "\(fixture.directory)/token"
            try "old-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            try await Self.withSource(try fixture.kubeconfig(tokenFile: tokenFile)) { source in
                #expect(await until { source.hasSynced && fixture.server.watchCount == 5 })
                // The cluster rotates the token: the old one stops working, the file has the new one.
                try "new-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
                fixture.accept(["new-token"])
                fixture.server.endAllWatches()
                var pod = objects.pods[0]
                pod.metadata.name = "after-rotation"
                pod.metadata.uid = "rotated"
                pod.status?.podIPs = [.init(ip: "10.244.2.241")]
                fixture.server.upsert(pod)
                #expect(await until { source.pod(ip: "10.244.2.241", at: Date())?.name == "after-rotation" })
                #expect(Self.counter(source, "osprey_agent_kubernetes_errors_total", kind: "pods") == 0)
            }
        }
    }

    @Test("RBAC refusing one kind: one clear log line naming verb and resource, the rest still served")
    func forbiddenKind() async throws {
        let (inventory, objects) = try Self.labObjects()
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            fixture.server.forbid(["endpointslices"])
            let logs = LogLines()
            try await Self.withSource(try fixture.kubeconfig(), logs: logs) { source in
                #expect(await until { source.pod(ip: inventory.pods[0].ips[0], at: Date()) != nil })
                #expect(
                    await until {
                        Self.counter(source, "osprey_agent_kubernetes_errors_total", kind: "endpointslices") >= 2
                    })
                let refusals = logs.all.filter { $0.contains("RBAC forbids") }
                #expect(refusals.count == 1)  // said once, not at every retry
                let line = try #require(refusals.first)
                #expect(
                    line.contains("list and watch endpointslices")
                        && line.contains("cannot list resource \"endpointslices\""))
                #expect(!source.hasSynced)
                #expect(source.service(ip: inventory.services[0].clusterIP) != nil)
                fixture.server.forbid([])
                #expect(await until { source.hasSynced })
            }
        }
    }
}

extension KubernetesSourceTests {
    @Test("100,000 pods: listed in pages, every one resolves by its address")
    func hundredThousandPods() async throws {
        var objects = ClusterObjects()
        let created = KubeTime.format(Date())
        objects.pods = (0..<100_000).map { index in
            KubernetesModel.Pod(
                metadata: ObjectMeta(
                    name: "app-\(index / 10)-\(index)", namespace: "ns-\(index % 50)", uid: "uid-\(index)",
                    creationTimestamp: created, labels: ["app": "app-\(index / 10)"]),
                spec: .init(nodeName: "node-\(index % 100)"),
                status: .init(
                    phase: "Running", podIP: "10.\(64 + index / 65536).\((index / 256) % 256).\(index % 256)",
                    podIPs: nil))
        }
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            var timing = Self.fast
            timing.pageSize = 500
            let source = try KubernetesMetadata(
                access: try ClusterAccess.kubeconfig(path: try fixture.kubeconfig()), cluster: "ospk",
                requestTimeout: .seconds(30), timing: timing)
            let task = Task { await source.run() }
            defer { task.cancel() }
            #expect(await until(within: 120) { source.hasSynced && source.pod(ip: "10.65.134.159", at: Date()) != nil })
            #expect(Self.counter(source, "osprey_agent_kubernetes_objects", kind: "pods") == 100_000)
            for index in stride(from: 0, to: 100_000, by: 997) {
                let ip = "10.\(64 + index / 65536).\((index / 256) % 256).\(index % 256)"
                #expect(source.pod(ip: ip, at: Date())?.name == "app-\(index / 10)-\(index)")
            }
            task.cancel()
            await task.value
        }
    }
}

/// Waits (without blocking a thread) until `condition` holds or `within` seconds pass.
func until(within timeout: Double = 60, _ condition: () throws -> Bool) async rethrows -> Bool {
    try await eventually(within: timeout) { () async throws -> Bool in try condition() }
}
