import ClusterInventory
import Foundation
import Testing

@testable import Lab

@Suite("Lab configuration and naming")
struct LabConfigTests {
    @Test("node counts outside 1…4 are rejected with the allowed range", arguments: [0, 5, 9, -1])
    func invalidNodeCounts(count: Int) {
        #expect(throws: LabError.invalidNodeCount(count)) { try LabConfig(nodeCount: count) }
        #expect(LabError.invalidNodeCount(count).description == "--nodes must be between 1 and 4, not \(count).")
    }

    @Test("topologies parse by name; anything else names the choices")
    func topologies() throws {
        #expect(try LabConfig.topology(named: "bridge") == .bridge)
        #expect(try LabConfig.topology(named: "ROUTED") == .routed)
        #expect(throws: LabError.unknownTopology("mesh")) { try LabConfig.topology(named: "mesh") }
        #expect(LabError.unknownTopology("mesh").description == "Unknown topology 'mesh'; use one of: bridge, routed.")
    }

    @Test("lab names carry the osp prefix and fit interface names", arguments: ["osp", "osp2", "ospab12c"])
    func validNames(name: String) throws {
        #expect(try LabConfig(name: name).name == name)
    }

    @Test("bad lab names are rejected", arguments: ["lab", "osp-x", "OSP", "osp123456", "ospA", ""])
    func invalidNames(name: String) {
        #expect(throws: LabError.invalidName(name)) { try LabConfig(name: name) }
    }

    @Test("pod names look like a Deployment's and are stable")
    func podNames() {
        let name = LabNames.deploymentPodName(lab: "osp", namespace: "shop", deployment: "frontend", replica: 0)
        #expect(
            name.wholeMatch(of: /frontend-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}/) != nil)
        #expect(name == LabNames.deploymentPodName(lab: "osp", namespace: "shop", deployment: "frontend", replica: 0))
        let second = LabNames.deploymentPodName(lab: "osp", namespace: "shop", deployment: "frontend", replica: 1)
        #expect(second != name)
        #expect(second.dropLast(6) == name.dropLast(6), "replicas share the pod-template hash")
    }

    @Test("host-side veth names fit IFNAMSIZ, carry the prefix and differ per pod")
    func hostInterfaces() {
        let names = (0..<200).map { LabNames.hostInterface(namespace: "ns\($0 % 7)", pod: "pod-\($0)") }
        #expect(names.allSatisfy { $0.count == 14 && $0.hasPrefix("osp") })
        #expect(Set(names).count == names.count)
    }
}

@Suite("Address plan")
struct AddressPlanTests {
    @Test("nodes, pods and services get the documented addresses")
    func addresses() {
        #expect(AddressPlan.nodeIPv4(1) == "10.240.0.11")
        #expect(AddressPlan.nodeIPv6(2) == "fd00:240::12")
        #expect(AddressPlan.podCIDRv4(3) == "10.244.3.0/24")
        #expect(AddressPlan.podCIDRv6(3) == "fd00:10:244:3::/64")
        #expect(AddressPlan.podIPs(node: 2, slot: 0) == ("10.244.2.2", "fd00:10:244:2::2"))
        #expect(AddressPlan.serviceIP(0) == "10.96.0.10")
        #expect(AddressPlan.podDNSName(ipv4: "10.244.1.5", namespace: "shop") == "10-244-1-5.shop.pod.cluster.local")
    }
}

@Suite("Lab plan")
struct LabPlanTests {
    @Test("pods spread over nodes; addresses are unique and inside their node's CIDR", arguments: 1...4)
    func placement(nodes: Int) throws {
        let plan = LabPlan(config: try LabConfig(nodeCount: nodes))
        #expect(plan.nodes.count == nodes)
        #expect(plan.pods.count == Catalog.workloads.reduce(0) { $0 + $1.replicas })
        #expect(Set(plan.pods.map(\.ipv4)).count == plan.pods.count)
        #expect(Set(plan.pods.map(\.ipv6)).count == plan.pods.count)
        #expect(Set(plan.pods.map(\.netns)).count == plan.pods.count)
        for pod in plan.pods {
            #expect(pod.ipv4.hasPrefix("10.244.\(pod.node.index)."))
            #expect(pod.ipv6.hasPrefix("fd00:10:244:\(pod.node.index)::"))
            #expect(pod.netns.hasPrefix("osp-"))
        }
        let frontendNodes = Set(plan.pods(of: "frontend", in: "shop").map(\.node.index))
        #expect(frontendNodes.count == min(nodes, 2), "frontend replicas on different nodes when there are two")
        #expect(plan.namespaces.count == 1 + nodes + plan.pods.count)
    }

    @Test("services select their pods; the policy resolves to the untrusted client and the frontends")
    func servicesAndPolicy() throws {
        let plan = LabPlan(config: try LabConfig())
        #expect(plan.clusterDNS.spec.name == "kube-dns")
        #expect(plan.clusterDNS.clusterIP == "10.96.0.10")
        let frontend = try #require(plan.services.first { $0.spec.name == "frontend" })
        #expect(frontend.endpoints.map(\.spec.name) == ["frontend", "frontend"])
        let policy = try #require(plan.policies.first)
        #expect(policy.from.map(\.spec.name) == ["untrusted"])
        #expect(policy.to.map(\.spec.name) == ["frontend", "frontend"])
    }

    @Test("the inventory describes every node, pod and service with Kubernetes identity")
    func inventory() throws {
        let plan = LabPlan(config: try LabConfig(name: "osp7", nodeCount: 3, topology: .routed))
        let inventory = plan.inventory(
            uids: ["shop/\(plan.pods[1].name)": "uid-1"],
            processes: ["shop/\(plan.pods[1].name)": [ProcessRecord(command: "nginx", pid: 42)]])
        #expect(inventory.cluster == "osp7")
        #expect(inventory.topology == "routed")
        #expect(inventory.nodes.map(\.name) == ["osp7-node-1", "osp7-node-2", "osp7-node-3"])
        let pod = inventory.pods[1]
        #expect(pod.namespace == "shop")
        #expect(pod.labels == ["app": "frontend", "tier": "web"])
        #expect(pod.workload == Workload(kind: "Deployment", name: "frontend"))
        #expect(pod.uid == "uid-1")
        #expect(pod.processes == [ProcessRecord(command: "nginx", pid: 42)])
        #expect(pod.ips == [plan.pods[1].ipv4, plan.pods[1].ipv6])
        #expect(pod.hostInterface == plan.pods[1].hostInterface)
        let ledger = try #require(inventory.services.first { $0.name == "ledger" })
        #expect(ledger.ports.map(\.port) == [80, 8080])
        #expect(ledger.endpoints == plan.pods(of: "ledger", in: "billing").flatMap { [$0.ipv4, $0.ipv6] })
        #expect(ledger.addresses == ["10.96.0.12", "fd00:10:96::c"])
        #expect(ledger.dnsName() == "ledger.billing.svc.cluster.local")
    }
}

@Suite("Inventory format")
struct InventoryFormatTests {
    @Test("encodes to the documented JSON and decodes back unchanged")
    func roundTrip() throws {
        let plan = LabPlan(config: try LabConfig())
        let original = plan.inventory(now: Date(timeIntervalSince1970: 1_800_000_000))
        let data = try original.encoded()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""apiVersion" : "osprey.dev/v1alpha1""#))
        #expect(text.contains(#""kind" : "ClusterInventory""#))
        #expect(text.contains(#""generatedAt" : "2027-01-15T08:00:00Z""#))
        #expect(text.contains(#""clusterIP" : "10.96.0.10""#))
        #expect(try Inventory.decode(data) == original)
    }

    @Test("malformed or foreign files are rejected with a sentence naming the problem")
    func rejects() throws {
        #expect(throws: InventoryError.self) { try Inventory.decode(Data("{".utf8), path: "x.json") }
        do {
            _ = try Inventory.decode(Data(#"{"apiVersion":"osprey.dev/v1alpha1"}"#.utf8), path: "x.json")
            Issue.record("decoding a file without kind succeeded")
        } catch {
            #expect(error.description.contains("missing key 'kind'"))
        }
        var other = LabPlan(config: try LabConfig()).inventory()
        other.apiVersion = "osprey.dev/v9"
        #expect(throws: InventoryError.unsupportedVersion(path: "x.json", found: "osprey.dev/v9 ClusterInventory")) {
            try Inventory.decode(other.encoded(), path: "x.json")
        }
        #expect(throws: InventoryError.self) { try Inventory.load(from: "/nonexistent/inventory.json") }
    }
}
