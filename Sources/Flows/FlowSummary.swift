import Foundation

/// What Hubble derives from a flow for display and filtering: its type, event type and the
/// one-line summary.
extension Flow {
    /// Hubble's flow type: L7 for DNS flows, L3_L4 otherwise.
    public var isL7: Bool { dns != nil }

    /// Monitor event type: 1 = drop, 4 = trace, 129 = L7.
    public var eventType: Int { verdict == .dropped ? 1 : (isL7 ? 129 : 4) }

    /// Monitor event sub-type: the drop reason for drops, the observation point for traces, none
    /// for L7 records (Cilium's access-log events have no sub-type).
    public var eventSubType: Int {
        verdict == .dropped ? dropReason : (isTrace ? observationPoint.traceSubType : 0)
    }

    /// Whether the flow is a trace event, which alone names an observation point on the wire:
    /// Cilium's drops and L7 records carry none (an L7 record's veth is in `interface`, its way
    /// in `traffic_direction`).
    public var isTrace: Bool { verdict != .dropped && !isL7 }

    /// The text Hubble prints in parentheses at the end of a flow line.
    public var summary: String {
        if let dns {
            let question = "\(dns.query) \(dns.qtypes.joined(separator: ","))"
            if dns.unanswered { return "DNS Query \(question) (no response)" }
            guard dns.isResponse else { return "DNS Query \(question)" }
            // As Cilium's L7 parser words an answer: the rcode's name, else the addresses and
            // CNAMEs that are there (nothing for an empty answer); then the TTL, and the
            // question after "Query" (Cilium writes "Proxy" only for its DNS proxy's records).
            var answer: [String] = []
            if dns.rcode != 0 {
                answer.append("RCode: \(dns.rcodeName)")
            } else {
                if !dns.ips.isEmpty { answer.append(goQuoted(dns.ips.joined(separator: ","))) }
                if !dns.cnames.isEmpty { answer.append("CNAMEs: " + goQuoted(dns.cnames.joined(separator: ","))) }
            }
            return "DNS Answer \(answer.joined(separator: " ")) TTL: \(dns.ttl) (Query \(question))"
        }
        switch l4 {
        case .tcp(_, _, let flags): return "TCP Flags: \(flags.names.joined(separator: ", "))"
        case .udp: return "UDP"
        case .icmpv4(let type, let code): return "ICMPv4 " + ICMPNames.text(type, code, in: ICMPNames.v4)
        case .icmpv6(let type, let code): return "ICMPv6 " + ICMPNames.text(type, code, in: ICMPNames.v6)
        case .other(let number): return "IP protocol \(number)"
        }
    }
}

/// `text` in double quotes as Go's `%q` writes it: quotes and backslashes escaped, control
/// characters as `\n`-style or `\xNN` escapes (Cilium's summary quotes DNS answers so, and
/// hubble a relay's node error). Names come in presentation format, whose bytes are printable
/// ASCII; other Unicode is kept as is.
public func goQuoted(_ text: String) -> String {
    var quoted = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        case "\u{07}": quoted += "\\a"
        case "\u{08}": quoted += "\\b"
        case "\u{0C}": quoted += "\\f"
        case "\n": quoted += "\\n"
        case "\r": quoted += "\\r"
        case "\t": quoted += "\\t"
        case "\u{0B}": quoted += "\\v"
        case "\u{00}"..."\u{1F}", "\u{7F}":
            let hex = String(scalar.value, radix: 16)
            quoted += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        default: quoted.unicodeScalars.append(scalar)
        }
    }
    return quoted + "\""
}

/// ICMP types and codes as Cilium's parser writes them in a flow's summary (gopacket's
/// `ICMPv4TypeCode.String()` and `ICMPv6TypeCode.String()`): the type's name, with the code's in
/// parentheses for types that name their codes (`DestinationUnreachable(Port)`),
/// `Name(Code: N)` for a code the type does not name, and `type(code)` in numbers for a type
/// without a name (`143(0)`, MLDv2's report).
enum ICMPNames {
    struct Kind {
        let name: String
        let codes: [UInt8: String]?
        init(_ name: String, _ codes: [UInt8: String]? = nil) {
            self.name = name
            self.codes = codes
        }
    }

    static func text(_ type: UInt8, _ code: UInt8, in kinds: [UInt8: Kind]) -> String {
        guard let kind = kinds[type] else { return "\(type)(\(code))" }
        guard let codes = kind.codes else { return code == 0 ? kind.name : "\(kind.name)(Code: \(code))" }
        return "\(kind.name)(\(codes[code] ?? "Code: \(code)"))"
    }

    static let v4: [UInt8: Kind] = [
        0: Kind("EchoReply"),
        3: Kind(
            "DestinationUnreachable",
            [
                0: "Net", 1: "Host", 2: "Protocol", 3: "Port", 4: "FragmentationNeeded", 5: "SourceRoutingFailed",
                6: "NetUnknown", 7: "HostUnknown", 8: "SourceIsolated", 9: "NetAdminProhibited",
                10: "HostAdminProhibited", 11: "NetTOS", 12: "HostTOS", 13: "CommAdminProhibited",
                14: "HostPrecedence", 15: "PrecedenceCutoff",
            ]),
        4: Kind("SourceQuench"),
        5: Kind("Redirect", [0: "Net", 1: "Host", 2: "TOS+Net", 3: "TOS+Host"]),
        8: Kind("EchoRequest"),
        9: Kind("RouterAdvertisement"),
        10: Kind("RouterSolicitation"),
        11: Kind("TimeExceeded", [0: "TTLExceeded", 1: "FragmentReassemblyTimeExceeded"]),
        12: Kind("ParameterProblem", [0: "PointerIndicatesError", 1: "MissingOption", 2: "BadLength"]),
        13: Kind("TimestampRequest"), 14: Kind("TimestampReply"),
        15: Kind("InfoRequest"), 16: Kind("InfoReply"),
        17: Kind("AddressMaskRequest"), 18: Kind("AddressMaskReply"),
    ]

    static let v6: [UInt8: Kind] = [
        1: Kind(
            "DestinationUnreachable",
            [
                0: "NoRouteToDst", 1: "AdminProhibited", 2: "BeyondScopeOfSrc", 3: "AddressUnreachable",
                4: "PortUnreachable", 5: "SrcAddressFailedPolicy", 6: "RejectRouteToDst",
            ]),
        2: Kind("PacketTooBig"),
        3: Kind("TimeExceeded", [0: "HopLimitExceeded", 1: "FragmentReassemblyTimeExceeded"]),
        4: Kind(
            "ParameterProblem",
            [0: "ErroneousHeaderField", 1: "UnrecognizedNextHeader", 2: "UnrecognizedIPv6Option"]),
        128: Kind("EchoRequest"), 129: Kind("EchoReply"),
        133: Kind("RouterSolicitation"), 134: Kind("RouterAdvertisement"),
        135: Kind("NeighborSolicitation"), 136: Kind("NeighborAdvertisement"),
        137: Kind("Redirect"),
    ]
}
