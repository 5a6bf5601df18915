// `make bench`: the agent's Kubernetes source at cluster scale (scripts/bench-kubernetes.sh).
//
//   osprey-bench kube-server PODS SERVICES DIR   the lab's API server (TLS, a token) serving a
//                                                synthetic cluster; writes DIR/kubeconfig, then
//                                                DIR/ready, and serves until killed
//   osprey-bench kube-sync KUBECONFIG PODS SERVICES [EVENTS]
//                                                the source from start to a full cache: seconds,
//                                                RSS; then the pipeline with it behind the enricher
import ClusterInventory
import Enricher
import FlowMetrics
import FlowPipeline
import Foundation
import KubernetesAPIServer
import KubernetesModel
import KubernetesSource
import Lab
import Logging
import Observer

enum KubernetesBench {
    /// A cluster of `pods` pods on 100 nodes, in Deployments of 10 (each in one of 50
    /// namespaces), and `services` Services, one per Deployment, of 3 ready backends each. Pods
    /// 0–63 have 10.244.1.2–65, the addresses the pipeline bench's events use.
    static func cluster(pods: Int, services: Int) -> Inventory {
        let created = Date()
        let nodes = (0..<100).map { index in
            ClusterInventory.Node(
                name: "node-\(index)", internalIPs: ["10.240.\(index / 250).\(index % 250 + 2)"], podCIDRs: [],
                uplink: "",
                netns: nil)
        }
        let podList = (0..<pods).map { index in
            ClusterInventory.Pod(
                uid: "uid-\(index)", namespace: "ns-\((index / 10) % 50)",
                name: "app-\(index / 10)-7d4f9c8b6x-\(index)",
                node: "node-\(index % 100)", ips: [podIP(index)],
                labels: ["app": "app-\(index / 10)", "tier": index % 2 == 0 ? "web" : "backend"],
                workload: Workload(kind: "Deployment", name: "app-\(index / 10)"), createdAt: created, netns: nil,
                hostInterface: nil)
        }
        let serviceList = (0..<services).map { index in
            ClusterInventory.Service(
                namespace: "ns-\(index % 50)", name: "svc-\(index)",
                clusterIP: "10.96.\(index / 250).\(index % 250 + 2)",
                ports: [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: 8080)],
                selector: ["app": "app-\(index)"],
                endpoints: (0..<3).map { podIP((index * 10 + $0) % max(pods, 1)) })
        }
        return Inventory(
            cluster: "bench", topology: "kubernetes", generatedAt: created, nodes: nodes, pods: podList,
            services: serviceList)
    }

    static func serve(_ arguments: [String]) throws {
        guard arguments.count == 3, let pods = Int(arguments[0]), let services = Int(arguments[1]) else {
            throw BenchError("osprey-bench kube-server PODS SERVICES DIR")
        }
        let directory = arguments[2]
        let certificates = LabCertificates(directory: directory, cluster: "bench")
        try certificates.create(with: Host())
        var logger = Logger(label: "bench-kube-api")
        logger.logLevel = .warning
        let server = KubeAPIServer(tokens: { ["bench-token"] }, logger: logger)
        let started = Date()
        server.apply(ClusterObjects(inventory: cluster(pods: pods, services: services)))
        let loaded = Date().timeIntervalSince(started)
        let app = try server.application(
            address: .hostname("127.0.0.1", port: 0), certificateFile: certificates.apiServerCertificate.cert,
            keyFile: certificates.apiServerCertificate.key
        ) { channel in
            let port = channel.localAddress?.port ?? 0
            let kubeconfig = Kubeconfig.render(
                name: "bench", server: "https://127.0.0.1:\(port)", certificateAuthority: certificates.caFile,
                credential: .token("bench-token"))
            try? kubeconfig.write(toFile: "\(directory)/kubeconfig", atomically: true, encoding: .utf8)
            try? String(format: "%.1f\n", loaded).write(toFile: "\(directory)/ready", atomically: true, encoding: .utf8)
        }
        let done = DispatchSemaphore(value: 0)
        Task {
            try? await app.runService()
            done.signal()
        }
        done.wait()
    }

    static func sync(_ arguments: [String]) throws {
        guard arguments.count >= 3, let pods = Int(arguments[1]), let services = Int(arguments[2]) else {
            throw BenchError("osprey-bench kube-sync KUBECONFIG PODS SERVICES [EVENTS]")
        }
        let events = arguments.count > 3 ? Int(arguments[3]) ?? 2_000_000 : 2_000_000
        FlowAllocator.configure()  // as osprey-agent does
        let before = residentMiB()
        var logger = Logger(label: "bench-kube-source")
        logger.logLevel = .warning
        let source = try KubernetesMetadata(
            access: try ClusterAccess.kubeconfig(path: arguments[0]), cluster: "bench", logger: logger)
        let started = Date()
        let task = Task { await source.run() }
        // Synced: every kind listed, and the last pod and Service resolve.
        let lastPod = podIP(pods - 1)
        let lastService = "10.96.\((services - 1) / 250).\((services - 1) % 250 + 2)"
        while !(source.hasSynced && source.pod(ip: lastPod, at: Date()) != nil
            && (services == 0 || source.service(ip: lastService) != nil))
        {
            guard Date().timeIntervalSince(started) < 120 else { throw BenchError("no sync within 120 s") }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let seconds = Date().timeIntervalSince(started)
        Thread.sleep(forTimeInterval: 1)  // let the last rebuild's garbage go
        let after = residentMiB()
        print(
            String(
                format: "| Kubernetes source: list and cache %d pods and %d Services (TLS, pages of 500) | %.2f s |",
                pods, services, seconds))
        print(
            String(
                format: "| the source's process RSS: before / with the cache (peak) | %.0f / %.0f MiB (%.0f) |",
                before, after, peakMiB()))
        // The same cluster from an inventory file's source: what differs is only the source.
        let baseline = try PipelineBench.measure(
            metadata: InventoryMetadata(inventory: cluster(pods: pods, services: services)), count: events,
            capacity: Observer.defaultCapacity)
        let kubernetes = try PipelineBench.measure(metadata: source, count: events, capacity: Observer.defaultCapacity)
        let rate = { (run: (processed: Int, seconds: Double)) in Double(run.processed) / run.seconds }
        print(
            String(
                format:
                    "| pipeline events/s on one core, the same cluster from an inventory / from this Kubernetes cache | %.0f / %.0f (%.2f) |",
                rate((baseline.processed, baseline.seconds)), rate((kubernetes.processed, kubernetes.seconds)),
                rate((kubernetes.processed, kubernetes.seconds)) / rate((baseline.processed, baseline.seconds))))
        task.cancel()
    }

    /// The address of the synthetic cluster's pod `index`.
    static func podIP(_ index: Int) -> String {
        index < 64 ? "10.244.1.\(index + 2)" : "10.\(64 + index / 65536).\((index / 256) % 256).\(index % 256)"
    }

    static func residentMiB() -> Double { statusMiB("VmRSS:") }
    static func peakMiB() -> Double { statusMiB("VmHWM:") }

    static func statusMiB(_ field: String) -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field) } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }
}
