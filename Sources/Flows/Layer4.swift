import Foundation

/// The L4 part of a flow.
public enum Layer4: Sendable, Equatable {
    case tcp(sourcePort: UInt16, destinationPort: UInt16, flags: TCPFlags)
    case udp(sourcePort: UInt16, destinationPort: UInt16)
    case icmpv4(type: UInt8, code: UInt8)
    case icmpv6(type: UInt8, code: UInt8)
    case other(protocolNumber: UInt8)

    /// Hubble's protocol name for metrics (`TCP`, `UDP`, `ICMPv4`, `ICMPv6`, `Unknown L4`).
    public var protocolName: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .icmpv4: "ICMPv4"
        case .icmpv6: "ICMPv6"
        case .other: "Unknown L4"
        }
    }

    public var ports: (source: UInt16, destination: UInt16) {
        switch self {
        case .tcp(let s, let d, _), .udp(let s, let d): (s, d)
        default: (0, 0)
        }
    }

    /// The same L4 header with other ports (TCP and UDP; others have none).
    public func withPorts(source: UInt16, destination: UInt16) -> Layer4 {
        switch self {
        case .tcp(_, _, let flags): .tcp(sourcePort: source, destinationPort: destination, flags: flags)
        case .udp: .udp(sourcePort: source, destinationPort: destination)
        default: self
        }
    }

    /// An ICMP error about another packet (destination unreachable, time exceeded, parameter
    /// problem; ICMPv6's packet too big too): what Cilium's connection tracking calls related to
    /// the connection that packet belongs to.
    public var isICMPError: Bool {
        switch self {
        case .icmpv4(let type, _): type == 3 || type == 11 || type == 12
        case .icmpv6(let type, _): (1...4).contains(type)
        default: false
        }
    }

    /// The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    public var protocolNumber: UInt8 {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .icmpv4: 1
        case .icmpv6: 58
        case .other(let number): number
        }
    }
}

/// The TCP flags byte, with Hubble's names.
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)

    /// Names in the order Hubble prints them: SYN, ACK, RST, FIN, PSH, URG, ECE, CWR.
    public var names: [String] {
        [
            (TCPFlags.syn, "SYN"), (.ack, "ACK"), (.rst, "RST"), (.fin, "FIN"), (.psh, "PSH"), (.urg, "URG"),
            (.ece, "ECE"),
            (.cwr, "CWR"),
        ].compactMap { contains($0.0) ? $0.1 : nil }
    }
}
