import Foundation

/// One direction of a tracked connection as netfilter's conntrack records it.
public struct ConntrackTuple: Sendable, Hashable {
    /// 4 or 6.
    public var family: Int
    public var protocolNumber: UInt8
    /// Network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var source: [UInt8]
    public var destination: [UInt8]
    public var sourcePort: UInt16
    public var destinationPort: UInt16

    public init(
        family: Int, protocolNumber: UInt8, source: [UInt8], destination: [UInt8], sourcePort: UInt16,
        destinationPort: UInt16
    ) {
        self.family = family
        self.protocolNumber = protocolNumber
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }
}

/// A conntrack entry: the tuple of the packets the connection's initiator sent (`original`)
/// and the tuple the answers carry (`reply`). With NAT the two differ: a connection to a
/// Service address DNATed to a backend has the backend as the reply's source.
public struct ConntrackEntry: Sendable, Equatable {
    public var original: ConntrackTuple
    public var reply: ConntrackTuple
}

/// Netfilter's connection table of the calling thread's network namespace, read through
/// ctnetlink (needs CAP_NET_ADMIN). One lookup is one request and one answer; not thread-safe.
public final class Conntrack {
    // Values from linux/netfilter/nfnetlink.h and nfnetlink_conntrack.h (stable kernel ABI).
    static let netlinkNetfilter: Int32 = 12  // NETLINK_NETFILTER
    static let getConntrack: UInt16 = 1 << 8 | 1  // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
    static let newConntrack: UInt16 = 1 << 8 | 0  // … | IPCTNL_MSG_CT_NEW (the answer)
    static let attrTupleOriginal: UInt16 = 1  // CTA_TUPLE_ORIG
    static let attrTupleReply: UInt16 = 2  // CTA_TUPLE_REPLY
    static let attrTupleIP: UInt16 = 1  // CTA_TUPLE_IP
    static let attrTupleProto: UInt16 = 2  // CTA_TUPLE_PROTO
    static let attrIPv4Source: UInt16 = 1  // CTA_IP_V4_SRC
    static let attrIPv4Destination: UInt16 = 2  // CTA_IP_V4_DST
    static let attrIPv6Source: UInt16 = 3  // CTA_IP_V6_SRC
    static let attrIPv6Destination: UInt16 = 4  // CTA_IP_V6_DST
    static let attrProtoNumber: UInt16 = 1  // CTA_PROTO_NUM
    static let attrProtoSourcePort: UInt16 = 2  // CTA_PROTO_SRC_PORT
    static let attrProtoDestinationPort: UInt16 = 3  // CTA_PROTO_DST_PORT

    private let socket: NetlinkSocket

    public init() throws(NetlinkError) {
        socket = try NetlinkSocket(protocolNumber: Self.netlinkNetfilter)
    }

    /// The entry whose original direction is `tuple`, or nil when the table has none (a
    /// connection never confirmed, e.g. its first packet was dropped, or one already expired).
    public func entry(original tuple: ConntrackTuple) throws(NetlinkError) -> ConntrackEntry? {
        try lookup(tuple, as: Self.attrTupleOriginal)
    }

    /// The entry whose reply direction is `tuple`.
    public func entry(reply tuple: ConntrackTuple) throws(NetlinkError) -> ConntrackEntry? {
        try lookup(tuple, as: Self.attrTupleReply)
    }

    private func lookup(_ tuple: ConntrackTuple, as direction: UInt16) throws(NetlinkError) -> ConntrackEntry? {
        // struct nfgenmsg { u8 family; u8 version (NFNETLINK_V0); __be16 res_id; }
        var payload: [UInt8] = [UInt8(tuple.family == 6 ? AF_INET6 : AF_INET), 0, 0, 0]
        payload += Self.encode(tuple, as: direction)
        let messages: [NetlinkSocket.Message]
        do {
            messages = try socket.request(type: Self.getConntrack, flags: 0, payload: payload)
        } catch .system(_, let code) where code == ENOENT {
            return nil
        }
        for message in messages where message.type == Self.newConntrack {
            var original: ConntrackTuple?
            var reply: ConntrackTuple?
            for (type, value) in NetlinkSocket.attributes(message.payload, from: 4) {
                if type == Self.attrTupleOriginal { original = Self.decode(value, family: tuple.family) }
                if type == Self.attrTupleReply { reply = Self.decode(value, family: tuple.family) }
            }
            if let original, let reply { return ConntrackEntry(original: original, reply: reply) }
        }
        throw .malformed("conntrack answer without both tuples")
    }

    static func encode(_ tuple: ConntrackTuple, as direction: UInt16) -> [UInt8] {
        let v6 = tuple.family == 6
        let addresses =
            NetlinkSocket.attribute(type: v6 ? attrIPv6Source : attrIPv4Source, bytes: tuple.source)
            + NetlinkSocket.attribute(type: v6 ? attrIPv6Destination : attrIPv4Destination, bytes: tuple.destination)
        let ports =
            NetlinkSocket.attribute(type: attrProtoNumber, bytes: [tuple.protocolNumber])
            + NetlinkSocket.attribute(type: attrProtoSourcePort, bytes: bigEndian(tuple.sourcePort))
            + NetlinkSocket.attribute(type: attrProtoDestinationPort, bytes: bigEndian(tuple.destinationPort))
        return NetlinkSocket.nested(
            type: direction,
            NetlinkSocket.nested(type: attrTupleIP, addresses) + NetlinkSocket.nested(type: attrTupleProto, ports))
    }

    static func decode(_ bytes: [UInt8], family: Int) -> ConntrackTuple? {
        var tuple = ConntrackTuple(
            family: family, protocolNumber: 0, source: [], destination: [], sourcePort: 0, destinationPort: 0)
        for (type, value) in NetlinkSocket.attributes(bytes, from: 0) {
            switch type {
            case attrTupleIP:
                for (kind, address) in NetlinkSocket.attributes(value, from: 0) {
                    switch kind {
                    case attrIPv4Source, attrIPv6Source: tuple.source = address
                    case attrIPv4Destination, attrIPv6Destination: tuple.destination = address
                    default: break
                    }
                }
            case attrTupleProto:
                for (kind, field) in NetlinkSocket.attributes(value, from: 0) {
                    switch kind {
                    case attrProtoNumber where field.count >= 1: tuple.protocolNumber = field[0]
                    case attrProtoSourcePort where field.count >= 2:
                        tuple.sourcePort = UInt16(field[0]) << 8 | UInt16(field[1])
                    case attrProtoDestinationPort where field.count >= 2:
                        tuple.destinationPort = UInt16(field[0]) << 8 | UInt16(field[1])
                    default: break
                    }
                }
            default: break
            }
        }
        let length = family == 6 ? 16 : 4
        guard tuple.source.count == length, tuple.destination.count == length else { return nil }
        return tuple
    }

    static func bigEndian(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
}
