import Foundation

/// What Hubble derives from a flow for display and filtering: its type, event type and the
/// one-line summary.
extension Flow {
    /// Hubble's flow type: L7 for DNS flows, L3_L4 otherwise.
    public var isL7: Bool { dns != nil }

    /// Monitor event type: 1 = drop, 4 = trace, 129 = L7.
    public var eventType: Int { verdict == .dropped ? 1 : (isL7 ? 129 : 4) }

    /// Monitor event sub-type: the drop reason for drops, the observation point for traces.
    public var eventSubType: Int { verdict == .dropped ? dropReason : observationPoint.traceSubType }

    /// The text Hubble prints in parentheses at the end of a flow line.
    public var summary: String {
        if let dns {
            let question = "\(dns.query) \(dns.qtypes.joined(separator: ","))"
            if dns.unanswered { return "DNS Query \(question) (no response)" }
            guard dns.isResponse else { return "DNS Query \(question)" }
            guard dns.rcode == 0 else { return "DNS Answer RCode: \(dns.rcodeName) (\(question))" }
            var text = "DNS Answer \"\(dns.ips.joined(separator: ","))\""
            if !dns.cnames.isEmpty { text += " CNAMEs: \"\(dns.cnames.joined(separator: ","))\"" }
            return text + " TTL: \(dns.ttl) (\(question))"
        }
        switch l4 {
        case .tcp(_, _, let flags): return "TCP Flags: \(flags.names.joined(separator: ", "))"
        case .udp: return "UDP"
        case .icmpv4(let type, _): return "ICMPv4 \(ICMPNames.v4[type] ?? "Type\(type)")"
        case .icmpv6(let type, _): return "ICMPv6 \(ICMPNames.v6[type] ?? "Type\(type)")"
        case .other(let number): return "IP protocol \(number)"
        }
    }
}

enum ICMPNames {
    static let v4: [UInt8: String] = [
        0: "EchoReply", 3: "DestinationUnreachable", 5: "Redirect", 8: "EchoRequest", 11: "TimeExceeded",
    ]
    static let v6: [UInt8: String] = [
        1: "DestinationUnreachable", 2: "PacketTooBig", 3: "TimeExceeded", 128: "EchoRequest", 129: "EchoReply",
        133: "RouterSolicitation", 134: "RouterAdvertisement", 135: "NeighborSolicitation",
        136: "NeighborAdvertisement",
    ]
}
