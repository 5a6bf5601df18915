/// One program to run to build the lab; `input` goes to its standard input.
public struct SetupStep: Sendable, Equatable {
    public var argv: [String]
    public var input: String?

    public static func run(_ argv: [String], input: String? = nil) -> SetupStep { SetupStep(argv: argv, input: input) }
}

/// The commands that wire a planned lab: namespaces, sysctls, veths, bridges, routes, nftables.
///
/// Links are configured with `ip -batch` (one process per namespace), so building a lab costs a
/// few dozen processes however many pods it has. Nothing here touches the host's own network
/// namespace: the fabric joining the nodes is itself a namespace.
public struct NetworkSetup: Sendable {
    public let plan: LabPlan

    public init(plan: LabPlan) { self.plan = plan }

    public var steps: [SetupStep] {
        var steps: [SetupStep] = [.run(["ip", "-batch", "-"], input: lines(plan.namespaces.map { "netns add \($0)" }))]
        steps += plan.namespaces.map(sysctls(for:))
        steps.append(.run(["ip", "-n", plan.fabricNamespace, "-batch", "-"], input: lines(fabricCommands)))
        for node in plan.nodes {
            steps.append(.run(["ip", "-n", node.netns, "-batch", "-"], input: lines(nodeCommands(node))))
            steps.append(fabricPortStep(node))
            let podSysctls = plan.pods(on: node).flatMap(hostInterfaceSysctls(for:))
            if !podSysctls.isEmpty {
                steps.append(.run(["ip", "netns", "exec", node.netns, "sysctl", "-q", "-w"] + podSysctls))
            }
            steps.append(.run(["ip", "netns", "exec", node.netns, "nft", "-f", "-"], input: nftRuleset(for: node)))
        }
        for pod in plan.pods {
            steps.append(.run(["ip", "-n", pod.netns, "-batch", "-"], input: lines(podCommands(pod))))
        }
        return steps
    }

    /// Per-namespace sysctls set before any interface exists, so new interfaces inherit them.
    func sysctls(for netns: String) -> SetupStep {
        var settings = [
            // Lab addresses are unique by construction: skip duplicate address detection, which
            // would otherwise drop IPv6 traffic for the first second of every interface.
            "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.default.accept_ra=0",
        ]
        if netns == plan.fabricNamespace {
            // The fabric is a plain switch: keep bridged frames out of netfilter there.
            settings += ["net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0"]
        } else if plan.nodes.contains(where: { $0.netns == netns }) {
            settings += ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]
            if plan.config.topology == .bridge {
                // Like kubenet with br_netfilter: bridged pod-to-pod traffic passes the node's
                // nftables, so service DNAT is undone on replies and policies see same-node traffic.
                settings += ["net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1"]
            }
        }
        return .run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w"] + settings)
    }

    var fabricCommands: [String] {
        let router = AddressPlan.fabricRouter
        return [
            "link set lo up",
            "link add \(LabNames.fabricBridge) type bridge",
            "addr add \(router.v4)/\(AddressPlan.fabricPrefixLength.v4) dev \(LabNames.fabricBridge)",
            "addr add \(router.v6)/\(AddressPlan.fabricPrefixLength.v6) dev \(LabNames.fabricBridge) nodad",
            "link set \(LabNames.fabricBridge) up",
            // Traffic leaving the cluster goes nowhere and gets no ICMP error: an unreachable
            // upstream, as the `reporter` client's DNS server is.
            "route add blackhole default",
            "route add blackhole ::/0",
        ]
    }

    /// What (re)creates a node's uplink: its veth to the fabric with addresses and routes, and
    /// the fabric's end on the fabric bridge (also what puts back an uplink a test deleted).
    public func uplinkSteps(for node: PlannedNode) -> [SetupStep] {
        [.run(["ip", "-n", node.netns, "-batch", "-"], input: lines(uplinkCommands(node))), fabricPortStep(node)]
    }

    func fabricPortStep(_ node: PlannedNode) -> SetupStep {
        .run([
            "ip", "-n", plan.fabricNamespace, "link", "set", LabNames.fabricPort(node: node.index),
            "master", LabNames.fabricBridge, "up",
        ])
    }

    func nodeCommands(_ node: PlannedNode) -> [String] {
        var commands = ["link set lo up"] + uplinkCommands(node)
        let pods = plan.pods(on: node)
        switch plan.config.topology {
        case .bridge:
            let bridge = LabNames.nodeBridge
            let gateway = AddressPlan.bridgeGateway(node.index)
            commands += [
                "link add \(bridge) type bridge",
                "addr add \(gateway.v4)/24 dev \(bridge)",
                "addr add \(gateway.v6)/64 dev \(bridge) nodad",
                "link set \(bridge) up",
            ]
        case .routed: break
        }
        return commands + pods.flatMap(hostSideCommands(for:))
    }

    /// The node's uplink in its namespace: the veth (its peer in the fabric), addresses, the
    /// default routes and the other nodes' pod CIDRs through their node address, without NAT.
    func uplinkCommands(_ node: PlannedNode) -> [String] {
        let uplink = LabNames.nodeUplink
        var commands = [
            "link add \(uplink) type veth peer name \(LabNames.fabricPort(node: node.index)) netns \(plan.fabricNamespace)",
            "addr add \(node.ipv4)/\(AddressPlan.fabricPrefixLength.v4) dev \(uplink)",
            "addr add \(node.ipv6)/\(AddressPlan.fabricPrefixLength.v6) dev \(uplink) nodad",
            "link set \(uplink) up",
            "route add default via \(AddressPlan.fabricRouter.v4) dev \(uplink)",
            "route add ::/0 via \(AddressPlan.fabricRouter.v6) dev \(uplink)",
        ]
        for peer in plan.nodes where peer.index != node.index {
            commands.append("route add \(AddressPlan.podCIDRv4(peer.index)) via \(peer.ipv4) dev \(uplink)")
            commands.append("route add \(AddressPlan.podCIDRv6(peer.index)) via \(peer.ipv6) dev \(uplink)")
        }
        return commands
    }

    /// The node's side of a pod: its veth (the other end moved into the pod), on the bridge or
    /// routed to.
    func hostSideCommands(for pod: PlannedPod) -> [String] {
        let veth = "link add \(pod.hostInterface) type veth peer name \(LabNames.podInterface) netns \(pod.netns)"
        switch plan.config.topology {
        case .bridge:
            // Hairpin, as the kubelet sets it for kubenet's bridge: a pod's packet to a Service
            // that chose the pod itself is bridged back out of the port it came in on.
            return [
                veth, "link set \(pod.hostInterface) master \(LabNames.nodeBridge) up",
                "link set \(pod.hostInterface) type bridge_slave hairpin on",
            ]
        case .routed:
            return [
                veth,
                // The node end has no address but the pods' IPv6 gateway; IPv4 by proxy ARP.
                "addr add \(AddressPlan.routedGateway.v6)/64 dev \(pod.hostInterface) nodad",
                "link set \(pod.hostInterface) up",
                "route add \(pod.ipv4)/32 dev \(pod.hostInterface)",
                "route add \(pod.ipv6)/128 dev \(pod.hostInterface)",
            ]
        }
    }

    /// The steps that add pods to a running lab: namespaces, both ends of their veths, sysctls.
    public func podSteps(_ pods: [PlannedPod]) -> [SetupStep] {
        var steps: [SetupStep] = [.run(["ip", "-batch", "-"], input: lines(pods.map { "netns add \($0.netns)" }))]
        steps += pods.map { sysctls(for: $0.netns) }
        for node in plan.nodes {
            let here = pods.filter { $0.node.index == node.index }
            guard !here.isEmpty else { continue }
            steps.append(
                .run(["ip", "-n", node.netns, "-batch", "-"], input: lines(here.flatMap(hostSideCommands(for:)))))
            let podSysctls = here.flatMap(hostInterfaceSysctls(for:))
            if !podSysctls.isEmpty {
                steps.append(.run(["ip", "netns", "exec", node.netns, "sysctl", "-q", "-w"] + podSysctls))
            }
        }
        for pod in pods { steps.append(.run(["ip", "-n", pod.netns, "-batch", "-"], input: lines(podCommands(pod)))) }
        return steps
    }

    /// Replaces a node's nftables tables with the plan's (services' endpoints changed): one
    /// transaction, so no packet sees a half-written ruleset.
    public func nftReplace(for node: PlannedNode) -> SetupStep {
        let reset = [LabNames.nftServicesTable, LabNames.nftPolicyTable].map {
            "table inet \($0)\ndelete table inet \($0)\n"
        }.joined()
        return .run(["ip", "netns", "exec", node.netns, "nft", "-f", "-"], input: reset + nftRuleset(for: node))
    }

    /// Routed topology: the node answers ARP for the pods' gateway on each pod's veth, at once.
    func hostInterfaceSysctls(for pod: PlannedPod) -> [String] {
        guard plan.config.topology == .routed else { return [] }
        return ["net.ipv4.conf.\(pod.hostInterface).proxy_arp=1", "net.ipv4.neigh.\(pod.hostInterface).proxy_delay=0"]
    }

    func podCommands(_ pod: PlannedPod) -> [String] {
        let eth = LabNames.podInterface
        var commands = ["link set lo up"]
        switch plan.config.topology {
        case .bridge:
            let gateway = AddressPlan.bridgeGateway(pod.node.index)
            commands += [
                "addr add \(pod.ipv4)/24 dev \(eth)",
                "addr add \(pod.ipv6)/64 dev \(eth) nodad",
                "link set \(eth) up",
                "route add default via \(gateway.v4) dev \(eth)",
                "route add ::/0 via \(gateway.v6) dev \(eth)",
            ]
        case .routed:
            let gateway = AddressPlan.routedGateway
            commands += [
                "addr add \(pod.ipv4)/32 dev \(eth)",
                "addr add \(pod.ipv6)/128 dev \(eth) nodad",
                "link set \(eth) up",
                "route add \(gateway.v4) dev \(eth) scope link",
                "route add default via \(gateway.v4) dev \(eth)",
                "route add ::/0 via \(gateway.v6) dev \(eth)",
            ]
        }
        return commands
    }

    /// nftables' address families and each pod's address in them.
    static let families: [(family: String, address: any KeyPath<PlannedPod, String> & Sendable)] = [
        ("ip", \PlannedPod.ipv4), ("ip6", \PlannedPod.ipv6),
    ]

    /// The node's nftables: kube-proxy-style DNAT of every service VIP to its pods (random
    /// choice among endpoints, in prerouting for pods and output for the node itself), the
    /// rejection of a new connection to a Service without endpoints (ICMP port unreachable, as
    /// kube-proxy's filter rules answer: the client is refused at once), the masquerade of a pod
    /// reaching itself through a Service, and the policy drops in the forward hook.
    public func nftRuleset(for node: PlannedNode) -> String {
        var services: [String] = []
        var noEndpoints: [String] = []
        for service in plan.services {
            for port in service.spec.ports {
                let proto = port.protocol.lowercased()
                for (family, vip, address) in [
                    ("ip", service.clusterIP, \PlannedPod.ipv4), ("ip6", service.clusterIPv6, \PlannedPod.ipv6),
                ] {
                    guard !service.endpoints.isEmpty else {
                        noEndpoints.append(
                            "    \(family) daddr \(vip) \(proto) dport \(port.port) reject "
                                + "comment \"\(service.spec.namespace)/\(service.spec.name):\(port.name) has no endpoints\""
                        )
                        continue
                    }
                    let targets = service.endpoints.enumerated()
                        .map { "\($0.offset) : \($0.element[keyPath: address]) . \(port.targetPort)" }
                        .joined(separator: ", ")
                    services.append(
                        "    \(family) daddr \(vip) \(proto) dport \(port.port) "
                            + "dnat \(family) to numgen random mod \(service.endpoints.count) map { \(targets) } "
                            + "comment \"\(service.spec.namespace)/\(service.spec.name):\(port.name)\"")
                }
            }
        }
        // A pod that reached itself through a Service is answered through the node, as
        // kube-proxy masquerades such hairpin connections: from itself it would take the
        // packet as a martian and the reply would never be translated back.
        let local = plan.pods(on: node)
        let hairpin: [String] =
            local.isEmpty
            ? []
            : Self.families.map { family, address in
                let pairs = local.map { "\($0[keyPath: address]) . \($0[keyPath: address])" }.joined(separator: ", ")
                return "    ct status dnat \(family) saddr . \(family) daddr { \(pairs) } masquerade "
                    + "comment \"a pod reaching itself through a Service\""
            }
        var policy: [String] = []
        for rule in plan.policies where !rule.from.isEmpty && !rule.to.isEmpty {
            for (family, address) in Self.families {
                let sources = rule.from.map { $0[keyPath: address] }.joined(separator: ", ")
                let destinations = rule.to.map { $0[keyPath: address] }.joined(separator: ", ")
                policy.append(
                    "    \(family) saddr { \(sources) } \(family) daddr { \(destinations) } tcp dport \(rule.spec.port) "
                        + "counter drop comment \"\(rule.spec.name)\"")
            }
        }
        return """
            table inet \(LabNames.nftServicesTable) {
              chain services {
            \(services.joined(separator: "\n"))
              }
              chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                jump services
              }
              chain output {
                type nat hook output priority -100; policy accept;
                jump services
              }
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
            \(hairpin.joined(separator: "\n"))
              }
              chain no-endpoints {
            \(noEndpoints.joined(separator: "\n"))
              }
              chain filter-forward {
                type filter hook forward priority filter - 10; policy accept;
                ct state new jump no-endpoints
              }
              chain filter-output {
                type filter hook output priority filter - 10; policy accept;
                ct state new jump no-endpoints
              }
            }
            table inet \(LabNames.nftPolicyTable) {
              chain forward {
                type filter hook forward priority filter; policy accept;
            \(policy.joined(separator: "\n"))
              }
            }

            """
    }

    private func lines(_ commands: [String]) -> String { commands.joined(separator: "\n") + "\n" }
}
