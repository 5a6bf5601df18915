import ClusterInventory
import Foundation
import Lab
import TestSupport
import Testing

/// The lab on real namespaces, veths, nftables and workloads: every scenario an operator will
/// later look for in Osprey's flows must really happen, on both topologies.
@Suite("Lab scenarios (root)")
struct LabScenarioTests {
    @Test("every client's traffic does what the scenario says", arguments: Topology.allCases)
    func scenarios(topology: Topology) async throws {
        let config = try LabConfig(
            name: LabFixture.uniqueName(topology == .bridge ? "b" : "r"), nodeCount: 2, topology: topology)
        try await LabFixture.withLab(config) { plan, inventory in
            let loadgen = try #require(plan.pods(of: "loadgen", in: "shop").first)
            let ledger = try #require(plan.pods(of: "ledger", in: "billing").first)
            let frontends = plan.pods(of: "frontend", in: "shop")
            #expect(Set(frontends.map(\.node.name)).count == 2, "the frontend replicas run on different nodes")
            #expect(
                inventory.pods.allSatisfy { !$0.processes.isEmpty && !$0.uid.isEmpty },
                "every pod runs a tracked process")

            // A client reaches a server on the other node by service name, without NAT in between.
            #expect(loadgen.node != ledger.node)
            let viaService = try LabFixture.curl(from: loadgen.netns, "http://ledger.billing/")
            #expect(viaService.status == 0)
            #expect(viaService.body == "\(ledger.qualifiedName) on \(ledger.node.name)\n")

            // Pod IPs are routable across nodes, over IPv4 and IPv6.
            let remoteFrontend = try #require(frontends.first { $0.node != loadgen.node })
            for url in ["http://\(remoteFrontend.ipv4)/", "http://[\(remoteFrontend.ipv6)]/"] {
                let direct = try LabFixture.curl(from: loadgen.netns, url)
                #expect(direct.status == 0, "\(url) from \(loadgen.qualifiedName)")
                #expect(direct.body.hasPrefix(remoteFrontend.qualifiedName), "\(url) answered by the right pod")
            }

            // The frontend service VIP balances over both replicas.
            var responders = Set<String>()
            for _ in 0..<40 where responders.count < frontends.count {
                let reply = try LabFixture.curl(from: loadgen.netns, "http://frontend/")
                #expect(reply.status == 0)
                responders.insert(String(reply.body.split(separator: " ").first ?? ""))
            }
            #expect(responders == Set(frontends.map(\.qualifiedName)))

            // The cluster DNS answers service and pod names, and NXDOMAIN for unknown names.
            let dns = plan.clusterDNS.clusterIP
            let service = try DNSProbe.query(
                "frontend.shop.svc.cluster.local", server: dns, fromNamespace: loadgen.netns)
            #expect(service == DNSAnswer(rcode: 0, addresses: [plan.services[1].clusterIP]))
            let podName = AddressPlan.podDNSName(ipv4: ledger.ipv4, namespace: "billing")
            let pod = try DNSProbe.query(podName, server: dns, fromNamespace: loadgen.netns)
            #expect(pod == DNSAnswer(rcode: 0, addresses: [ledger.ipv4]))
            let missing = try DNSProbe.query(
                "catalog.shop.svc.cluster.local", server: dns, fromNamespace: loadgen.netns)
            #expect(missing?.rcode == 3, "NXDOMAIN for a service that does not exist")
            // The reporter's configured DNS server never answers.
            let reporter = try #require(plan.pods(of: "reporter", in: "shop").first)
            let unanswered = try DNSProbe.query(
                "ledger.billing.svc.cluster.local", server: AddressPlan.unreachableDNS, fromNamespace: reporter.netns,
                timeout: 1.5)
            #expect(unanswered == nil)

            // The policy-blocked client times out on the frontend while others get through,
            // and the drop is the nftables policy rule's doing.
            let untrusted = try #require(plan.pods(of: "untrusted", in: "shop").first)
            let blocked = try LabFixture.curl(from: untrusted.netns, "http://frontend/")
            #expect(blocked.status == 28, "curl timed out (exit 28), got \(blocked.status)")
            let ruleset = try LabFixture.exec(untrusted.node.netns, ["nft", "list", "table", "inet", "osp_policy"])
                .stdout
            let dropped = ruleset.firstMatch(of: /counter packets (\d+)/).flatMap { Int($0.1) } ?? 0
            #expect(dropped > 0, "the policy rule on \(untrusted.node.name) counted the dropped packets")

            // The closed-port client's connection is refused by a RST (curl exit 7), not timed out.
            let checkout = try #require(plan.pods(of: "checkout", in: "shop").first)
            let refused = try LabFixture.curl(from: checkout.netns, "http://ledger.billing:8080/")
            #expect(refused.status == 7, "connection refused (exit 7), got \(refused.status)")
        }
    }

    @Test("lab down leaves nothing behind, and a second down is harmless")
    func downRemovesEverything() async throws {
        try await onOwnThread {
            let config = try LabConfig(name: LabFixture.uniqueName("d"), nodeCount: 2)
            let controller = LabController()
            defer { _ = try? controller.down(name: config.name) }
            let inventory = try controller.up(config)
            let inodes = LabFixture.namespaceInodes(of: config.name)
            #expect(inodes.count == 1 + config.nodeCount + inventory.pods.count)
            #expect(!LabFixture.leftovers(of: config.name, inodes: inodes).isEmpty, "the check sees a running lab")

            let report = try controller.down(name: config.name)
            #expect(report.namespaces.count == inodes.count)
            #expect(report.processes >= inventory.pods.count)
            #expect(LabFixture.leftovers(of: config.name, inodes: inodes) == [])
            #expect(try controller.down(name: config.name).isEmpty)
        }
    }

    @Test("lab up on an existing lab refuses clearly and leaves it running")
    func upTwiceRefuses() async throws {
        let config = try LabConfig(name: LabFixture.uniqueName("u"), nodeCount: 1)
        try await LabFixture.withLab(config) { plan, _ in
            let error = #expect(throws: LabError.self) { try LabController().up(config) }
            #expect(error?.description.hasPrefix("A lab named '\(config.name)' is already up") == true)
            let status = try LabStatus(name: config.name)
            #expect(status.isHealthy)
            #expect(status.inventory.pods.map(\.name) == plan.pods.map(\.name))
        }
    }

    @Test("lab down cleans up after a crash half-way through lab up")
    func downAfterHalfFinishedUp() async throws {
        try await onOwnThread {
            let config = try LabConfig(name: LabFixture.uniqueName("h"), nodeCount: 2, topology: .routed)
            let controller = LabController()
            defer { _ = try? controller.down(name: config.name) }
            // Do what `up` does until it is half done — namespaces, links, some workloads — as if
            // the process had been killed there.
            let plan = LabPlan(config: config)
            let steps = NetworkSetup(plan: plan).steps
            for step in steps.prefix(steps.count / 2) { try controller.host.run(step.argv, input: step.input) }
            let workloads = Workloads(plan: plan)
            for launch in workloads.launches().prefix(2) {
                try FileManager.default.createDirectory(
                    atPath: workloads.directory(of: launch.pod), withIntermediateDirectories: true)
                for file in launch.files {
                    try FileManager.default.createDirectory(
                        atPath: (file.path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try file.contents.write(toFile: file.path, atomically: true, encoding: .utf8)
                }
                _ = try controller.host.launchDetached(launch.command, logPath: launch.logPath, pidPath: launch.pidPath)
            }
            let inodes = LabFixture.namespaceInodes(of: config.name)
            #expect(LabFixture.leftovers(of: config.name, inodes: inodes).contains { $0.hasPrefix("process") })

            try controller.down(name: config.name)
            #expect(LabFixture.leftovers(of: config.name, inodes: inodes) == [])
        }
    }
}
