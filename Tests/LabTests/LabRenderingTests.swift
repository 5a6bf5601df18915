import Foundation
import Testing

@testable import Lab

@Suite("Lab network setup and workload rendering")
struct LabRenderingTests {
    @Test("bridge topology: pod veths join the node bridge; br_netfilter on for services and policy")
    func bridge() throws {
        let plan = LabPlan(config: try LabConfig(nodeCount: 2, topology: .bridge))
        let setup = NetworkSetup(plan: plan)
        let node = plan.nodes[0]
        let commands = setup.nodeCommands(node)
        for pod in plan.pods(on: node) {
            #expect(commands.contains("link set \(pod.hostInterface) master cbr0 up"))
            // Hairpin, so that a pod can reach itself through a Service.
            #expect(commands.contains("link set \(pod.hostInterface) type bridge_slave hairpin on"))
        }
        #expect(commands.contains("route add 10.244.2.0/24 via 10.240.0.12 dev eth0"))
        #expect(setup.sysctls(for: node.netns).argv.contains("net.bridge.bridge-nf-call-iptables=1"))
        let pod = plan.pods(on: node)[0]
        #expect(setup.podCommands(pod).contains("addr add \(pod.ipv4)/24 dev eth0"))
        #expect(setup.podCommands(pod).contains("route add default via 10.244.1.1 dev eth0"))
    }

    @Test("routed topology: a /32 and /128 route per pod, proxy ARP, no bridge")
    func routed() throws {
        let plan = LabPlan(config: try LabConfig(nodeCount: 2, topology: .routed))
        let setup = NetworkSetup(plan: plan)
        let node = plan.nodes[1]
        let commands = setup.nodeCommands(node)
        #expect(!commands.contains { $0.contains("cbr0") })
        for pod in plan.pods(on: node) {
            #expect(commands.contains("route add \(pod.ipv4)/32 dev \(pod.hostInterface)"))
            #expect(commands.contains("route add \(pod.ipv6)/128 dev \(pod.hostInterface)"))
            #expect(setup.hostInterfaceSysctls(for: pod).contains("net.ipv4.conf.\(pod.hostInterface).proxy_arp=1"))
            #expect(setup.podCommands(pod).contains("route add default via 169.254.1.1 dev eth0"))
        }
    }

    @Test("nftables: every service port is DNATed over its endpoints, the policy drops in forward")
    func nftables() throws {
        let plan = LabPlan(config: try LabConfig(nodeCount: 2))
        let rules = NetworkSetup(plan: plan).nftRuleset(for: plan.nodes[0])
        let frontend = plan.pods(of: "frontend", in: "shop")
        #expect(
            rules.contains(
                "ip daddr 10.96.0.11 tcp dport 80 dnat ip to numgen random mod 2 map { 0 : \(frontend[0].ipv4) . 80, 1 : \(frontend[1].ipv4) . 80 }"
            ))
        #expect(rules.contains("ip daddr 10.96.0.10 udp dport 53 dnat ip to numgen random mod 1"))
        #expect(rules.contains("ip daddr 10.96.0.12 tcp dport 8080 dnat"))
        // Dual stack: the IPv6 VIP goes to the same pods' IPv6 addresses.
        #expect(
            rules.contains(
                "ip6 daddr fd00:10:96::b tcp dport 80 dnat ip6 to numgen random mod 2 map { 0 : \(frontend[0].ipv6) . 80, 1 : \(frontend[1].ipv6) . 80 }"
            ))
        let untrusted = plan.pods(of: "untrusted", in: "shop")[0]
        #expect(
            rules.contains(
                "ip saddr { \(untrusted.ipv4) } ip daddr { \(frontend[0].ipv4), \(frontend[1].ipv4) } tcp dport 80 counter drop"
            ))
        #expect(
            rules.contains(
                "ip6 saddr { \(untrusted.ipv6) } ip6 daddr { \(frontend[0].ipv6), \(frontend[1].ipv6) } tcp dport 80 counter drop"
            ))
        #expect(rules.contains("type filter hook forward priority filter"))
        #expect(!rules.contains("has no endpoints"), "every Service of the catalog has endpoints")
        // A pod reaching itself through a Service is masqueraded, on the node it lives on.
        let local = plan.pods(on: plan.nodes[0])
        #expect(
            rules.contains(
                "ct status dnat ip saddr . ip daddr { \(local.map { "\($0.ipv4) . \($0.ipv4)" }.joined(separator: ", ")) } masquerade"
            ))
        #expect(rules.contains("ct status dnat ip6 saddr . ip6 daddr { \(local[0].ipv6) . \(local[0].ipv6)"))
        #expect(rules.contains("type nat hook postrouting priority srcnat"))
        let remote = plan.pods(on: plan.nodes[1])
        #expect(!rules.contains("\(remote[0].ipv4) . \(remote[0].ipv4)"))
    }

    @Test("nftables: a Service without endpoints rejects new connections, as kube-proxy does")
    func nftablesWithoutEndpoints() throws {
        let config = try LabConfig(nodeCount: 2)
        let before = LabPlan(config: config)
        let ledger = try #require(Catalog.workloads.first { $0.name == "ledger" })
        let plan = LabPlan(config: config, scale: before.scale.scaling(ledger, to: 0, in: before))
        let index = try #require(plan.services.firstIndex { $0.spec.name == "ledger" })
        #expect(plan.services[index].endpoints.isEmpty)
        let rules = NetworkSetup(plan: plan).nftRuleset(for: plan.nodes[0])
        #expect(!rules.contains("ip daddr 10.96.0.12 tcp dport 8080 dnat"))
        #expect(
            rules.contains(
                "ip daddr 10.96.0.12 tcp dport 8080 reject comment \"billing/ledger:metrics has no endpoints\""))
        #expect(rules.contains("ip6 daddr \(plan.services[index].clusterIPv6) tcp dport 8080 reject"))
        #expect(
            rules.contains(
                "type filter hook forward priority filter - 10; policy accept;\n    ct state new jump no-endpoints"))
        #expect(rules.contains("ip daddr 10.96.0.11 tcp dport 80 dnat"), "the others still DNAT")
    }

    @Test("pods get the kubelet's resolv.conf; the DNS server knows services and pods")
    func dns() throws {
        let plan = LabPlan(config: try LabConfig())
        let workloads = Workloads(plan: plan)
        let loadgen = plan.pods(of: "loadgen", in: "shop")[0]
        #expect(
            workloads.resolvConf(for: loadgen)
                == "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5 timeout:1 attempts:2\n"
        )
        let reporter = plan.pods(of: "reporter", in: "shop")[0]
        #expect(workloads.resolvConf(for: reporter).hasPrefix("nameserver 192.0.2.53\n"))
        let hosts = workloads.clusterHosts()
        #expect(hosts.contains("10.96.0.11 frontend.shop.svc.cluster.local\n"))
        let ledger = plan.pods(of: "ledger", in: "billing")[0]
        #expect(
            hosts.contains(
                "\(ledger.ipv4) \(ledger.ipv4.replacingOccurrences(of: ".", with: "-")).billing.pod.cluster.local\n"))
        #expect(Workloads.resolvConfPath(netns: loadgen.netns) == "/etc/netns/\(loadgen.netns)/resolv.conf")
    }

    @Test("each pod runs its program inside its namespace, with readiness for servers")
    func launches() throws {
        let plan = LabPlan(config: try LabConfig())
        let launches = Workloads(plan: plan).launches()
        #expect(launches.count == plan.pods.count)
        for launch in launches {
            #expect(launch.command.prefix(4) == ["ip", "netns", "exec", launch.pod.netns][...])
            #expect(launch.logPath.hasPrefix("/run/osprey/labs/osp/pods/"))
            switch launch.pod.spec.role {
            case .httpServer: #expect(launch.program == "nginx" && launch.readiness! == ("tcp", 80))
            case .dnsServer: #expect(launch.program == "dnsmasq" && launch.readiness! == ("udp", 53))
            case .client: #expect(launch.program == "sh" && launch.readiness == nil)
            }
        }
        let checkout = launches.first { $0.pod.spec.name == "checkout" }!
        #expect(
            checkout.podCommand.last
                == "while :; do curl -s -o /dev/null -m 2 http://ledger.billing:8080/; sleep 1; done")
    }
}
