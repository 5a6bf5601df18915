import Foundation
import KubernetesSource
import Lab
import TestSupport
import Testing
import Yams

/// `deploy/kubernetes`, rendered by kubectl's kustomize as `kubectl apply -k` would: it must
/// render, and its RBAC must grant the agent exactly what the code reads.
@Suite("Deployment manifests")
struct DeployManifestTests {
    static let base = OspreyBinary.packageRoot + "/deploy/kubernetes"

    /// The objects `kubectl kustomize DIR` renders.
    static func render(_ directory: String) throws -> [[String: Any]] {
        let result = try Host().execute(["kubectl", "kustomize", directory])
        #expect(result.status == 0, "\(result.stderr)")
        return try Yams.load_all(yaml: result.stdout).compactMap { $0 as? [String: Any] }
    }

    static func named(_ objects: [[String: Any]], _ kind: String, _ name: String) -> [String: Any]? {
        objects.first {
            $0["kind"] as? String == kind && ($0["metadata"] as? [String: Any])?["name"] as? String == name
        }
    }

    @Test("the base renders: namespace, RBAC, the agent DaemonSet, the relay and its Services, all in osprey")
    func renders() throws {
        let objects = try Self.render(Self.base)
        let kinds = Set(
            objects.compactMap { object -> String? in
                guard let kind = object["kind"] as? String,
                    let name = (object["metadata"] as? [String: Any])?["name"] as? String
                else { return nil }
                return "\(kind)/\(name)"
            })
        for expected in [
            "Namespace/osprey", "ServiceAccount/osprey-agent", "ServiceAccount/osprey-relay",
            "ClusterRole/osprey-agent",
            "ClusterRoleBinding/osprey-agent", "DaemonSet/osprey-agent", "Deployment/osprey-relay",
            "Service/osprey-relay",
            "Service/osprey-ui", "Service/osprey-peer",
        ] {
            #expect(kinds.contains(expected), "\(expected) is not rendered")
        }
        for object in objects
        where !["Namespace", "ClusterRole", "ClusterRoleBinding"].contains(object["kind"] as? String) {
            #expect((object["metadata"] as? [String: Any])?["namespace"] as? String == "osprey")
        }
        // The relay finds the agents through their peer service, which lists the cluster's Nodes.
        let relay = try #require(Self.named(objects, "Deployment", "osprey-relay"))
        let relayYAML = try Yams.dump(object: relay)
        #expect(relayYAML.contains("--peer-service=osprey-peer.osprey.svc.cluster.local:4244"))
        #expect(!relayYAML.contains("--peers-dns"))
        // The Prometheus Operator's ServiceMonitor is an optional component.
        #expect(!kinds.contains("ServiceMonitor/osprey-agent"))
        let overlay = "/tmp/osp-kustomize-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: overlay, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: overlay) }
        let up = "../.." + Self.base  // kustomize takes relative paths only
        try "resources: [\(up)]\ncomponents: [\(up)/components/servicemonitor]\n".write(
            toFile: "\(overlay)/kustomization.yaml", atomically: true, encoding: .utf8)
        let withMonitor = try Self.render(overlay)
        #expect(Self.named(withMonitor, "ServiceMonitor", "osprey-agent") != nil)
    }

    @Test("the agent's ClusterRole grants list and watch on every resource the source watches, and nothing else")
    func rbacCoversTheSource() throws {
        let objects = try Self.render(Self.base)
        let daemonSet = try #require(Self.named(objects, "DaemonSet", "osprey-agent"))
        let podSpec = ((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        let account = try #require(podSpec?["serviceAccountName"] as? String)
        // The binding that gives the agent's ServiceAccount its role.
        let binding = try #require(
            objects.first { object in
                object["kind"] as? String == "ClusterRoleBinding"
                    && ((object["subjects"] as? [[String: Any]]) ?? []).contains {
                        $0["kind"] as? String == "ServiceAccount" && $0["name"] as? String == account
                            && $0["namespace"] as? String == "osprey"
                    }
            })
        let roleName = try #require((binding["roleRef"] as? [String: Any])?["name"] as? String)
        let role = try #require(Self.named(objects, "ClusterRole", roleName))
        let rules = (role["rules"] as? [[String: Any]]) ?? []
        var granted: Set<String> = []
        for rule in rules {
            let groups = (rule["apiGroups"] as? [Any])?.map { "\($0)" } ?? []
            let resources = (rule["resources"] as? [Any])?.map { "\($0)" } ?? []
            let verbs = (rule["verbs"] as? [Any])?.map { "\($0)" } ?? []
            #expect(Set(verbs).isSubset(of: ["get", "list", "watch"]), "the agent never writes: \(verbs)")
            for group in groups {
                for resource in resources { for verb in verbs { granted.insert("\(group)/\(resource)/\(verb)") } }
            }
        }
        var needed: Set<String> = []
        for permission in KubernetesMetadata.permissions {
            for verb in permission.verbs { needed.insert("\(permission.group)/\(permission.resource)/\(verb)") }
        }
        #expect(needed.isSubset(of: granted), "missing: \(needed.subtracting(granted).sorted())")
        #expect(granted == needed, "more than the code uses: \(granted.subtracting(needed).sorted())")
    }
}
