import ClusterInventory
import Foundation
import KubernetesAPIServer
import KubernetesModel
import Lab
import TestSupport
import Testing

/// The real kubectl (`/usr/bin/kubectl`, which picks its release from the server's /version)
/// against the lab's API server: what a user types, and what they read back.
@Suite("kubectl against the lab's API server", .serialized)
struct KubectlTests {
    /// Runs kubectl on a thread of its own (the server answers on the cooperative pool).
    static func kubectl(
        _ kubeconfig: String, _ arguments: [String]
    ) async throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                do {
                    continuation.resume(returning: try Host().execute(Self.command(kubeconfig) + arguments))
                } catch { continuation.resume(throwing: error) }
            }.start()
        }
    }

    /// kubectl with the kubeconfig, caching discovery next to it (not in ~/.kube, which would outlive the test).
    static func command(_ kubeconfig: String) -> [String] {
        [
            "kubectl", "--kubeconfig", kubeconfig, "--cache-dir",
            (kubeconfig as NSString).deletingLastPathComponent + "/cache",
        ]
    }

    /// The rows of kubectl's table output, split on runs of spaces, header first.
    static func rows(_ output: String) -> [[String]] {
        output.split(separator: "\n").map { line in
            line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    @Test("get pods -A -o wide, get svc,endpointslices -A, get nodes, get deployments print the lab")
    func getPrintsTheLab() async throws {
        let (inventory, objects) = try KubernetesSourceTests.labObjects()
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            let kubeconfig = try fixture.kubeconfig()

            let pods = try await Self.kubectl(kubeconfig, ["get", "pods", "-A", "-o", "wide"])
            #expect(pods.status == 0, "\(pods.stderr)")
            let podRows = Self.rows(pods.stdout)
            #expect(
                podRows.first
                    == [
                        "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                        "READINESS GATES",
                    ])
            #expect(podRows.count == inventory.pods.count + 1)
            for pod in inventory.pods {
                let row = podRows.first { $0.count > 1 && $0[1] == pod.name }
                #expect(row?[0] == pod.namespace)
                #expect(row?[2] == "1/1" && row?[3] == "Running")
                #expect(row?[6] == pod.ips[0] && row?[7] == pod.node)
            }

            let services = try await Self.kubectl(kubeconfig, ["get", "svc,endpointslices", "-A"])
            #expect(services.status == 0, "\(services.stderr)")
            let serviceRows = Self.rows(services.stdout)
            let frontend = try #require(inventory.services.first { $0.name == "frontend" })
            let port = try #require(frontend.ports.first)
            #expect(
                serviceRows.contains {
                    $0.count >= 6 && $0[1] == "service/frontend" && $0[2] == "ClusterIP" && $0[3] == frontend.clusterIP
                        && $0[5] == "\(port.port)/\(port.protocol)"
                })
            let backends = frontend.endpoints.filter { !$0.contains(":") }
            #expect(
                serviceRows.contains {
                    $0.count >= 5 && $0[1] == "endpointslice.discovery.k8s.io/frontend-ipv4" && $0[2] == "IPv4"
                        && $0[3] == "\(port.targetPort)" && $0[4].hasPrefix(backends.prefix(3).joined(separator: ","))
                })

            let nodes = try await Self.kubectl(kubeconfig, ["get", "nodes"])
            #expect(nodes.status == 0, "\(nodes.stderr)")
            let nodeRows = Self.rows(nodes.stdout)
            #expect(nodeRows.first == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"])
            #expect(nodeRows.dropFirst().map { $0[0] } == inventory.nodes.map(\.name))
            #expect(nodeRows.dropFirst().allSatisfy { $0[1] == "Ready" && $0[4] == KubeAPIServer.version.gitVersion })

            let deployments = try await Self.kubectl(kubeconfig, ["get", "deployments", "-n", frontend.namespace])
            #expect(deployments.status == 0, "\(deployments.stderr)")
            let replicas = inventory.pods.filter { $0.workload?.name == "frontend" }.count
            #expect(
                Self.rows(deployments.stdout).contains { $0.first == "frontend" && $0[1] == "\(replicas)/\(replicas)" })

            // A name that does not exist, and a token the server rejects: kubectl's own words.
            let missing = try await Self.kubectl(kubeconfig, ["get", "pod", "nope", "-n", "default"])
            #expect(missing.status != 0 && missing.stderr.contains("pods \"nope\" not found"))
            let rejected = try await Self.kubectl(try fixture.kubeconfig(token: "wrong", name: "bad"), ["get", "pods"])
            #expect(rejected.status != 0 && rejected.stderr.contains("Unauthorized"))
        }
    }

    @Test("get pods -w shows a new pod as it is added, and its deletion")
    func watchShowsNewPods() async throws {
        let (inventory, objects) = try KubernetesSourceTests.labObjects()
        try await withAPIServer { fixture in
            fixture.server.apply(objects)
            let kubeconfig = try fixture.kubeconfig()
            let namespace = inventory.pods[0].namespace
            let log = "\(fixture.directory)/watch.log"
            let pid = try Host().launchDetached(
                Self.command(kubeconfig) + ["get", "pods", "-n", namespace, "-w"], logPath: log,
                pidPath: "\(fixture.directory)/watch.pid.osprey")
            defer { killProcessTree(pid) }
            func output() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            #expect(await until { output().contains(inventory.pods[0].name) })
            var pod = objects.pods[0]
            pod.metadata.name = "newcomer-7d4f9c8b6x-q2w5z"
            pod.metadata.uid = "newcomer"
            fixture.server.upsert(pod)
            #expect(await until { output().contains("newcomer-7d4f9c8b6x-q2w5z") })
            let header = output().split(separator: "\n").first.map(String.init) ?? ""
            #expect(header.hasPrefix("NAME") && header.contains("STATUS"))
            #expect(output().split(separator: "\n").filter { $0.hasPrefix("NAME") }.count == 1)
            #expect(fixture.server.delete(resource: "pods", key: "\(namespace)/newcomer-7d4f9c8b6x-q2w5z"))
            #expect(await until { output().split(separator: "\n").filter { $0.contains("newcomer") }.count >= 2 })
        }
    }
}
