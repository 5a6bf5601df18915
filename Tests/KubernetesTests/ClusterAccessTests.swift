import ClusterInventory
import Foundation
import KubernetesModel
import KubernetesSource
import Testing

@Suite("Kubernetes configuration and workload names")
struct ClusterAccessTests {
    static func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = "/tmp/osp-kcfg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(directory)
    }

    static let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

    @Test("a kubeconfig's current context: server, CA file relative to it, token or client certificate")
    func kubeconfig() throws {
        try Self.withDirectory { directory in
            try Self.pem.write(toFile: "\(directory)/ca.crt", atomically: true, encoding: .utf8)
            let path = "\(directory)/config"
            try """
            apiVersion: v1
            kind: Config
            current-context: prod
            clusters:
            - name: staging
              cluster: {server: "https://staging:6443"}
            - name: prod
              cluster:
                server: https://10.0.0.1:6443/
                certificate-authority: ca.crt
            users:
            - name: admin
              user:
                client-certificate-data: \(Data("cert".utf8).base64EncodedString())
                client-key-data: \(Data("key".utf8).base64EncodedString())
            - name: agent
              user: {token: abc}
            contexts:
            - name: staging
              context: {cluster: staging, user: agent}
            - name: prod
              context: {cluster: prod, user: admin, namespace: kube-system}
            """.write(toFile: path, atomically: true, encoding: .utf8)
            let access = try ClusterAccess.kubeconfig(path: path)
            #expect(access.server == "https://10.0.0.1:6443")
            #expect(access.certificateAuthority == Array(Self.pem.utf8))
            #expect(access.clientCertificate == Array("cert".utf8) && access.clientKey == Array("key".utf8))
            #expect(access.credential == .none)
            #expect(access.origin == "kubeconfig \(path) (context prod)")
        }
    }

    @Test("a bad kubeconfig is one sentence naming the file and the problem")
    func badKubeconfig() throws {
        try Self.withDirectory { directory in
            func error(_ contents: String?) -> String {
                let path = "\(directory)/config"
                if let contents { try? contents.write(toFile: path, atomically: true, encoding: .utf8) }
                do {
                    _ = try ClusterAccess.kubeconfig(path: contents == nil ? "\(directory)/absent" : path)
                    return "accepted"
                } catch { return error.description }
            }
            let absent = error(nil)
            #expect(absent.contains("\(directory)/absent") && absent.contains("no such file"))
            let yaml = error("clusters: [unclosed")
            #expect(yaml.contains("\(directory)/config") && yaml.contains("not valid YAML"), "\(yaml)")
            #expect(error("apiVersion: v1\nkind: Config\n").contains("it has no current-context"))
            let unknownContext = error("current-context: nope\ncontexts: []\n")
            #expect(unknownContext.contains("current-context nope is not among its contexts"))
            let noServer = error(
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\nclusters: [{name: c, cluster: {}}]\n"
            )
            #expect(noServer.contains("cluster c has no https:// server address"))
            let missingCA = error(
                "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: 'https://x', certificate-authority: gone.crt}}]\n"
            )
            #expect(missingCA.contains("certificate-authority file \(directory)/gone.crt cannot be read"))
            for sentence in [absent, yaml, unknownContext, noServer, missingCA] {
                #expect(!sentence.contains("\n"), "one sentence: \(sentence)")
            }
        }
    }

    @Test("in a pod: the service's address from the environment, the service account's token file and CA")
    func inCluster() throws {
        try Self.withDirectory { directory in
            try "token-1".write(toFile: "\(directory)/token", atomically: true, encoding: .utf8)
            try Self.pem.write(toFile: "\(directory)/ca.crt", atomically: true, encoding: .utf8)
            let environment = ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"]
            let access = try ClusterAccess.inCluster(environment: environment, directory: directory)
            #expect(access.server == "https://[fd00::1]:443")
            #expect(access.credential == .tokenFile("\(directory)/token"))
            #expect(ClusterAccess.inPod(environment: environment))
            #expect(!ClusterAccess.inPod(environment: [:]))
            #expect(throws: KubernetesConfigError.notInCluster) {
                try ClusterAccess.inCluster(environment: [:], directory: directory)
            }
        }
    }

    @Test("workloads are named from owner references as Hubble names them")
    func workloads() {
        func owner(_ kind: String, _ name: String, controller: Bool? = true) -> OwnerReference {
            OwnerReference(apiVersion: "apps/v1", kind: kind, name: name, uid: "u", controller: controller)
        }
        #expect(
            Workload.of(owners: [owner("ReplicaSet", "web-7d4f9c8b6x")], labels: ["pod-template-hash": "7d4f9c8b6x"])
                == Workload(kind: "Deployment", name: "web"))
        // A ReplicaSet of its own (no template hash) is the workload itself.
        #expect(
            Workload.of(owners: [owner("ReplicaSet", "web-abc")], labels: [:])
                == Workload(kind: "ReplicaSet", name: "web-abc"))
        #expect(
            Workload.of(owners: [owner("Job", "backup-29012345")], labels: nil)
                == Workload(kind: "CronJob", name: "backup"))
        #expect(
            Workload.of(owners: [owner("Job", "migrate-v2")], labels: nil) == Workload(kind: "Job", name: "migrate-v2"))
        #expect(
            Workload.of(owners: [owner("StatefulSet", "db")], labels: nil) == Workload(kind: "StatefulSet", name: "db"))
        #expect(Workload.of(owners: [owner("DaemonSet", "osprey-agent")], labels: nil)?.kind == "DaemonSet")
        // The controller wins over other owners.
        #expect(
            Workload.of(owners: [owner("ConfigMap", "x", controller: nil), owner("StatefulSet", "db")], labels: nil)?
                .name
                == "db")
        #expect(Workload.of(owners: nil, labels: nil) == nil)
    }

    @Test("objects from a real API server decode: unknown fields skipped, targetPort by name")
    func decodesFullObjects() throws {
        let json = """
            {"kind":"Service","apiVersion":"v1","metadata":{"name":"web","namespace":"shop","uid":"1",
             "resourceVersion":"42","managedFields":[{"manager":"kubectl"}],"annotations":{"a":"b"}},
             "spec":{"type":"ClusterIP","clusterIP":"None","ports":[{"name":"http","port":80,"targetPort":"http"}],
             "sessionAffinity":"None","ipFamilies":["IPv4"]},"status":{"loadBalancer":{}}}
            """
        let service = try JSONDecoder().decode(KubernetesModel.Service.self, from: Data(json.utf8))
        #expect(service.metadata.resourceVersion == "42")
        #expect(service.spec.ports?.first?.targetPort == .string("http"))
        #expect(service.addresses.isEmpty)  // headless
    }
}
