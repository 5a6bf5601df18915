/// Every address of a lab, derived from node and pod indexes so that a plan is reproducible.
///
/// Nodes sit on a shared fabric (10.240.0.0/24, fd00:240::/64) whose router (.1) silently drops
/// anything leaving the cluster. Node *i* (1-based) owns pod CIDRs 10.244.*i*.0/24 and
/// fd00:10:244:*i*::/64; service VIPs come from 10.96.0.0/16 (and fd00:10:96::/112) with the
/// cluster DNS at 10.96.0.10,
/// as kubeadm clusters have it. All labs use the same plan: they live in separate namespaces.
public enum AddressPlan {
    public static let fabricIPv4Prefix = "10.240.0"
    public static let fabricIPv6Prefix = "fd00:240:"
    public static let fabricPrefixLength = (v4: 24, v6: 64)
    /// The fabric's router: the nodes' default gateway, a black hole for everything outside.
    public static let fabricRouter = (v4: "10.240.0.1", v6: "fd00:240::1")
    public static let clusterPodCIDR = (v4: "10.244.0.0/16", v6: "fd00:10:244::/48")
    public static let serviceCIDR = (v4: "10.96.0.0/16", v6: "fd00:10:96::/112")
    /// Address of a DNS server that never answers (TEST-NET-1, RFC 5737; routed into the black hole).
    public static let unreachableDNS = "192.0.2.53"
    /// The gateway routed-topology pods use; the node answers for it by proxy ARP (like Calico).
    public static let routedGateway = (v4: "169.254.1.1", v6: "fe80::1")

    public static func nodeIPv4(_ node: Int) -> String { "\(fabricIPv4Prefix).\(10 + node)" }
    public static func nodeIPv6(_ node: Int) -> String { "\(fabricIPv6Prefix):\(10 + node)" }

    public static func podCIDRv4(_ node: Int) -> String { "10.244.\(node).0/24" }
    public static func podCIDRv6(_ node: Int) -> String { "fd00:10:244:\(node)::/64" }

    /// The bridge's address in the node's pod subnet: the bridge-topology pods' gateway.
    public static func bridgeGateway(_ node: Int) -> (v4: String, v6: String) {
        ("10.244.\(node).1", "fd00:10:244:\(node)::1")
    }

    /// Addresses of the `slot`-th pod (0-based) on a node; .0 and .1 are network and gateway.
    public static func podIPs(node: Int, slot: Int) -> (v4: String, v6: String) {
        precondition(slot >= 0 && slot < 250, "a lab node holds at most 250 pods")
        return ("10.244.\(node).\(slot + 2)", "fd00:10:244:\(node)::\(slot + 2)")
    }

    /// The VIP of the `index`-th service (0-based): the first is the cluster DNS, 10.96.0.10.
    public static func serviceIP(_ index: Int) -> String {
        precondition(index >= 0 && index < 240, "a lab holds at most 240 services")
        return "10.96.0.\(10 + index)"
    }

    /// The IPv6 VIP of the `index`-th service: `fd00:10:96::a` for the cluster DNS (dual-stack
    /// services, as a dual-stack cluster's service CIDR `fd00:10:96::/112` gives them).
    public static func serviceIPv6(_ index: Int) -> String {
        precondition(index >= 0 && index < 240, "a lab holds at most 240 services")
        return "\(serviceIPv6Prefix)\(String(10 + index, radix: 16))"
    }

    public static let serviceIPv6Prefix = "fd00:10:96::"

    /// Kubernetes' DNS name for a pod IPv4 address: `10-244-1-2.<namespace>.pod.cluster.local`.
    public static func podDNSName(
        ipv4: String, namespace: String, clusterDomain: String = "cluster.local"
    )
        -> String
    {
        "\(ipv4.replacingOccurrences(of: ".", with: "-")).\(namespace).pod.\(clusterDomain)"
    }
}
