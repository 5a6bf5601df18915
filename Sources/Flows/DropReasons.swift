/// The Hubble DropReason that means the same as a kernel drop reason, so that Hubble users'
/// filters (`--drop-reason-desc POLICY_DENIED`) and `hubble_drop_total{reason}` work; the
/// kernel's own name stays on the flow as well.
public enum DropReasons {
    /// Hubble DropReason names by value (flow.DropReason), for the ones Osprey produces.
    public static let hubbleNames: [Int: String] = [
        0: "DROP_REASON_UNKNOWN", 133: "POLICY_DENIED", 134: "INVALID_PACKET_DROPPED",
        135: "CT_TRUNCATED_OR_INVALID_HEADER", 139: "UNSUPPORTED_L3_PROTOCOL", 142: "UNKNOWN_L4_PROTOCOL",
        153: "ERROR_WHILE_CORRECTING_L3_CHECKSUM", 154: "ERROR_WHILE_CORRECTING_L4_CHECKSUM",
        164: "LOCAL_HOST_IS_UNREACHABLE", 169: "FIB_LOOKUP_FAILED", 178: "SOCKET_LOOKUP_FAILED", 196: "TTL_EXCEEDED",
        198: "DROP_RATE_LIMITED",
    ]

    /// Hubble's text for a drop reason (as the CLI prints it), e.g. "Policy denied".
    public static let hubbleText: [Int: String] = [
        133: "Policy denied", 134: "Invalid packet", 169: "FIB lookup failed", 178: "Socket lookup failed",
    ]

    /// Kernel drop reason (without `SKB_DROP_REASON_`) → Hubble DropReason value.
    public static func hubbleReason(forKernel reason: String) -> Int {
        switch reason {
        case "NETFILTER_DROP", "TC_DROP", "BPF_CGROUP_EGRESS", "XDP_DROP": return 133
        case "NO_SOCKET", "SOCKET_FILTER", "SOCKET_RCVBUFF", "PROTO_MEM", "SOCKET_BACKLOG": return 178
        case "PKT_TOO_SMALL", "PKT_TOO_BIG", "HDR_TRUNC", "IP_INHDR", "IP_INADDRERRORS", "IP_OUTNOROUTES",
            "INVALID_PROTO",
            "TCP_INVALID_SEQUENCE", "TCP_RESET", "TCP_INVALID_SYN", "TCP_CLOSE", "TCP_FLAGS", "TCP_ZEROWINDOW",
            "TCP_OLD_DATA", "TCP_OVERWINDOW", "TCP_OFOMERGE", "TCP_OLD_SEQUENCE", "TCP_INVALID_ACK_SEQUENCE":
            return 134
        case "IP_CSUM", "TCP_CSUM", "UDP_CSUM", "ICMP_CSUM": return 153
        case "IP_NOROUTE", "IPV6_NDISC_NS_OTHERHOST", "NEIGH_FAILED", "NEIGH_QUEUEFULL", "NEIGH_DEAD": return 169
        case "UNHANDLED_PROTO": return 142
        case "IP_RPFILTER", "IP_LOCAL_SOURCE", "IP_INVALID_SOURCE": return 164
        case "QDISC_DROP", "CPU_BACKLOG", "FULL_RING", "TC_EGRESS": return 198
        default: return 0
        }
    }

    public static func name(_ value: Int) -> String { hubbleNames[value] ?? "DROP_REASON_UNKNOWN" }
}
