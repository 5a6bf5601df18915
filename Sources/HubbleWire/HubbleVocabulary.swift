import Flows
import HubbleAPI

/// Names and small derivations Hubble clients share (printing flows, building filters).
public enum HubbleVocabulary {
    /// Cilium's reserved identities by number (`(world)`, `--identity host`).
    public static let reservedIdentities: [UInt32: String] = [
        1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init", 6: "remote-node", 7: "kube-apiserver",
        8: "ingress", 9: "world-ipv4", 10: "world-ipv6",
    ]
    /// The same by name (`world` → 2).
    public static let reservedIdentityNumbers = Dictionary(
        uniqueKeysWithValues: reservedIdentities.map { ($0.value, $0.key) })

    /// The text Hubble's CLI prints for a drop's reason code (`event_type.sub_type` of a drop),
    /// as Cilium's monitor API spells it.
    public static let dropReasonTexts = DropReasons.texts

    /// Policy match types of policy verdict events, as Cilium's monitor names them.
    public static let policyMatchTypes: [Int: String] = [
        0: "none", 1: "L3-Only", 2: "L3-L4", 3: "L4-Only", 4: "all", 5: "L3-Proto", 6: "Proto-Only",
    ]

    /// Monitor trace sub-types (CiliumEventType.sub_type of trace events) by their CLI names.
    public static let traceSubTypeNames: [Int: String] = [
        0: "to-endpoint", 1: "to-proxy", 2: "to-host", 3: "to-stack", 4: "to-overlay", 5: "from-endpoint",
        6: "from-proxy", 7: "from-host", 8: "from-stack", 9: "from-overlay", 10: "from-network", 11: "to-network",
        12: "from-crypto", 13: "to-crypto",
    ]
}

extension Flow_Flow {
    /// Source and destination ports of TCP, UDP and SCTP flows; nil for others.
    public var ports: (source: UInt32, destination: UInt32)? {
        switch l4.protocol {
        case .tcp(let tcp): (tcp.sourcePort, tcp.destinationPort)
        case .udp(let udp): (udp.sourcePort, udp.destinationPort)
        case .sctp(let sctp): (sctp.sourcePort, sctp.destinationPort)
        default: nil
        }
    }
}
