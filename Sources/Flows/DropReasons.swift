/// The Hubble DropReason that means the same as a kernel drop reason, so that Hubble users'
/// filters (`--drop-reason-desc POLICY_DENIED`), `hubble_drop_total{reason}` and the CLIs'
/// "Policy denied" work; the kernel's own name stays on the flow as well. Every kernel reason
/// gets a Hubble reason: a DROPPED flow never carries 0 (which Hubble prints as "Success").
public enum DropReasons {
    /// One Hubble reason (a flow.DropReason value; its name is the proto's, see HubbleWire's
    /// `ProtoNames`) and the kernel reasons (names without `SKB_DROP_REASON_`) it stands for.
    struct Mapping {
        var code: Int
        var kernel: [String]
    }

    /// Osprey's choice of the closest Hubble reason for each kernel reason (Linux 6.18's list).
    static let mappings: [Mapping] = [
        Mapping(
            code: 133 /* POLICY_DENIED */,
            kernel: [
                "NETFILTER_DROP", "BPF_CGROUP_EGRESS", "TC_EGRESS", "TC_INGRESS", "XDP", "XDP_DROP", "TC_DROP",
                "SECURITY_HOOK", "XFRM_POLICY", "TAP_FILTER", "TAP_TXFILTER",
            ]),
        Mapping(
            code: 178 /* SOCKET_LOOKUP_FAILED */,
            kernel: ["NO_SOCKET", "SOCKET_FILTER", "UNIX_DISCONNECT", "UNIX_SKIP_OOB", "PACKET_SOCK_ERROR"]),
        Mapping(
            code: 198 /* DROP_RATE_LIMITED */,
            kernel: [
                "SOCKET_RCVBUFF", "PROTO_MEM", "SOCKET_BACKLOG", "TCP_LISTEN_OVERFLOW", "TCP_OFO_QUEUE_PRUNE",
                "QDISC_DROP", "QDISC_OVERLIMIT", "QDISC_CONGESTED", "CAKE_FLOOD", "FQ_BAND_LIMIT", "FQ_HORIZON_LIMIT",
                "FQ_FLOW_LIMIT", "CPU_BACKLOG", "FULL_RING", "NOMEM", "PFMEMALLOC", "NEIGH_QUEUEFULL",
                "DUALPI2_STEP_DROP", "RECURSION_LIMIT",
            ]),
        Mapping(
            code: 169 /* FIB_LOOKUP_FAILED */,
            kernel: [
                "IP_NOROUTE", "IP_OUTNOROUTES", "IP_INNOROUTES", "IP_INADDRERRORS", "IP_INVALID_DEST",
                "NEIGH_CREATEFAIL",
                "NEIGH_FAILED", "NEIGH_DEAD", "NEIGH_HH_FILLFAIL", "NO_TX_TARGET", "IPV6DISABLED", "TUNNEL_TXINFO",
            ]),
        Mapping(
            code: 132 /* INVALID_SOURCE_IP */,
            kernel: ["IP_RPFILTER", "IP_LOCAL_SOURCE", "IP_INVALID_SOURCE", "IP_LOCALNET"]),
        Mapping(code: 153 /* ERROR_WHILE_CORRECTING_L3_CHECKSUM */, kernel: ["IP_CSUM"]),
        Mapping(
            code: 154 /* ERROR_WHILE_CORRECTING_L4_CHECKSUM */,
            kernel: ["TCP_CSUM", "UDP_CSUM", "ICMP_CSUM", "SKB_CSUM"]),
        Mapping(code: 142 /* UNKNOWN_L4_PROTOCOL */, kernel: ["UNHANDLED_PROTO", "IP_NOPROTO", "INVALID_PROTO"]),
        Mapping(
            code: 166 /* UNSUPPORTED_L2_PROTOCOL */,
            kernel: ["OTHERHOST", "UNICAST_IN_L2_MULTICAST", "MAC_IEEE_MAC_CONTROL"]),
        Mapping(code: 130 /* INVALID_SOURCE_MAC */, kernel: ["MAC_INVALID_SOURCE", "LOCAL_MAC"]),
        Mapping(code: 156 /* INVALID_IPV6_EXTENSION_HEADER */, kernel: ["IPV6_BAD_EXTHDR"]),
        Mapping(
            code: 176 /* FORBIDDEN_ICMPV6_MESSAGE */,
            kernel: ["IPV6_NDISC_FRAG", "IPV6_NDISC_BAD_CODE", "IPV6_NDISC_BAD_OPTIONS", "IPV6_NDISC_NS_OTHERHOST"]),
        Mapping(code: 196 /* TTL_EXCEEDED */, kernel: ["TCP_MINTTL", "IPV6_NDISC_HOP_LIMIT"]),
        Mapping(
            code: 182 /* VLAN_FILTERED */, kernel: ["BRIDGE_INGRESS_STP_STATE", "ARP_PVLAN_DISABLE"]),
        Mapping(
            code: 183 /* INVALID_VNI */,
            kernel: ["VXLAN_INVALID_HDR", "VXLAN_VNI_NOT_FOUND", "VXLAN_ENTRY_EXISTS", "IP_TUNNEL_ECN"]),
        Mapping(
            code: 189 /* AUTH_REQUIRED */,
            kernel: [
                "TCP_AUTH_HDR", "TCP_MD5NOTFOUND", "TCP_MD5UNEXPECTED", "TCP_MD5FAILURE", "TCP_AONOTFOUND",
                "TCP_AOUNEXPECTED", "TCP_AOKEYNOTFOUND", "TCP_AOFAILURE", "PSP_INPUT", "PSP_OUTPUT",
            ]),
        // Malformed, truncated or out-of-window packets, and whatever the kernel leaves
        // unspecified: "Invalid packet" is the closest Hubble has (see `fallback`).
        Mapping(code: 134 /* INVALID_PACKET_DROPPED */, kernel: []),
    ]

    /// The reason for a kernel reason no mapping names: "Invalid packet".
    public static let fallback = 134

    static let byKernel: [String: Int] = {
        var table: [String: Int] = [:]
        for mapping in mappings { for kernel in mapping.kernel { table[kernel] = mapping.code } }
        return table
    }()

    /// Kernel drop reason (without `SKB_DROP_REASON_`) → Hubble DropReason value, never 0.
    public static func hubbleReason(forKernel reason: String) -> Int { byKernel[reason] ?? fallback }

    /// Every Hubble reason Osprey produces.
    public static var codes: [Int] { mappings.map(\.code) }
}
