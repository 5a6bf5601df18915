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
                "SOCKET_RCVBUFF", "PROTO_MEM", "SOCKET_BACKLOG", "TCP_ZEROWINDOW", "TCP_LISTEN_OVERFLOW",
                "TCP_OFO_QUEUE_PRUNE",
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

    /// Each drop reason code as Cilium's monitor API spells it: what Hubble's CLI prints
    /// ("Policy denied") and the `reason` label of Cilium's `cilium_drop_count_total`.
    public static let texts: [Int: String] = [
        0: "Success", 2: "Invalid packet", 3: "Interface", 4: "Interface Decrypted",
        5: "LB, sock cgroup: No backend slot entry found", 6: "LB, sock cgroup: No backend entry found",
        7: "LB, sock cgroup: Reverse entry update failed", 8: "LB, sock cgroup: Reverse entry stale",
        9: "Fragmented packet", 10: "Fragmented packet entry update failed", 11: "Missed tail call to custom program",
        12: "Interface Decrypting", 13: "Interface Encrypting", 14: "LB: sock cgroup: Reverse entry delete succeeded",
        15: "MTU error message",
        130: "Invalid source mac", 131: "Invalid destination mac", 132: "Invalid source ip", 133: "Policy denied",
        134: "Invalid packet", 135: "CT: Truncated or invalid header", 136: "Fragmentation needed",
        137: "CT: Unknown L4 protocol", 138: "CT: Can't create entry from packet", 139: "Unsupported L3 protocol",
        140: "Missed tail call", 141: "Error writing to packet", 142: "Unknown L4 protocol",
        143: "Unknown ICMPv4 code", 144: "Unknown ICMPv4 type", 145: "Unknown ICMPv6 code", 146: "Unknown ICMPv6 type",
        147: "Error retrieving tunnel key", 148: "Error retrieving tunnel options", 149: "Invalid Geneve option",
        150: "Unknown L3 target address", 151: "Stale or unroutable IP", 152: "No matching local container found",
        153: "Error while correcting L3 checksum", 154: "Error while correcting L4 checksum",
        155: "CT: Map insertion failed", 156: "Invalid IPv6 extension header", 157: "IP fragmentation not supported",
        158: "Service backend not found", 160: "No tunnel/encapsulation endpoint (datapath BUG!)",
        161: "NAT 46/64 not enabled", 162: "Reached EDT rate-limiting drop horizon",
        163: "Unknown connection tracking state", 164: "Local host is unreachable",
        165: "No configuration available to perform policy decision", 166: "Unsupported L2 protocol",
        167: "No mapping for NAT masquerade", 168: "Unsupported protocol for NAT masquerade", 169: "FIB lookup failed",
        170: "Encapsulation traffic is prohibited", 171: "Invalid identity", 172: "Unknown sender",
        173: "NAT not needed", 174: "Is a ClusterIP", 175: "First logical datagram fragment not found",
        176: "Forbidden ICMPv6 message", 177: "Denied by LB src range check", 178: "Socket lookup failed",
        179: "Socket assign failed", 180: "Proxy redirection not supported for protocol",
        181: "Policy denied by denylist", 182: "VLAN traffic disallowed by VLAN filter", 183: "Incorrect VNI from VTEP",
        184: "Failed to update or lookup TC buffer", 185: "No SID was found for the IP address",
        186: "SRv6 state was removed during tail call", 187: "L3 translation from IPv4 to IPv6 failed (NAT46)",
        188: "L3 translation from IPv6 to IPv4 failed (NAT64)", 189: "Authentication required",
        190: "No conntrack map found", 191: "No nat map found", 192: "Invalid ClusterID",
        193: "Unsupported packet protocol for DSR encapsulation", 194: "No egress gateway found",
        195: "Traffic is unencrypted", 196: "TTL exceeded", 197: "No node ID found", 198: "Rate limited",
        199: "IGMP handled", 200: "IGMP subscribed", 201: "Multicast handled", 202: "Host datapath not ready",
        203: "Endpoint policy program not available", 204: "No Egress IP configured", 205: "Punt to proxy",
    ]

    /// Every Hubble reason Osprey produces.
    public static var codes: [Int] { mappings.map(\.code) }
}
