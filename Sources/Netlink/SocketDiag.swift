import Foundation

/// An established TCP socket of this network namespace, with what the kernel measured of it.
public struct TCPSocketInfo: Sendable, Equatable {
    public var localAddress: String
    public var localPort: UInt16
    public var remoteAddress: String
    public var remotePort: UInt16
    /// The kernel's smoothed round-trip time (`tcpi_rtt`), in microseconds.
    public var rttMicroseconds: UInt32
    /// Segments retransmitted since the connection began (`tcpi_total_retrans`): sent and not
    /// acknowledged in time.
    public var totalRetransmissions: UInt32

    public init(
        localAddress: String, localPort: UInt16, remoteAddress: String, remotePort: UInt16, rttMicroseconds: UInt32,
        totalRetransmissions: UInt32
    ) {
        self.localAddress = localAddress
        self.localPort = localPort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.rttMicroseconds = rttMicroseconds
        self.totalRetransmissions = totalRetransmissions
    }
}

/// Socket diagnostics (sock_diag, what `ss -ti` reads) of the calling thread's network
/// namespace. Not thread-safe; use one per thread.
public final class SocketDiag {
    // Values from linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h and linux/tcp.h
    // (stable kernel ABI); the kernel's names are in the comments.
    static let netlinkSockDiag: Int32 = 4  // NETLINK_SOCK_DIAG
    static let byFamily: UInt16 = 20  // SOCK_DIAG_BY_FAMILY
    static let extensionInfo: UInt8 = 1 << (2 - 1)  // 1 << (INET_DIAG_INFO - 1)
    static let attributeInfo: UInt16 = 2  // INET_DIAG_INFO
    static let established: UInt32 = 1 << 1  // TCPF_ESTABLISHED
    /// Offsets in struct tcp_info.
    static let rttOffset = 68  // tcpi_rtt
    static let totalRetransOffset = 100  // tcpi_total_retrans

    private let socket: NetlinkSocket

    public init() throws(NetlinkError) {
        socket = try NetlinkSocket(protocolNumber: Self.netlinkSockDiag)
    }

    /// Every established TCP socket of this namespace connected to `remotePort` (IPv4 and IPv6).
    public func established(remotePort: UInt16) throws(NetlinkError) -> [TCPSocketInfo] {
        var sockets: [TCPSocketInfo] = []
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            // struct inet_diag_req_v2 { u8 family, protocol, ext, pad; u32 states;
            //   struct inet_diag_sockid { be16 sport, dport; be32 src[4], dst[4]; u32 if; u32 cookie[2]; } }
            var request = [UInt8](repeating: 0, count: 56)
            request[0] = family
            request[1] = UInt8(IPPROTO_TCP)
            request[2] = Self.extensionInfo
            request.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: Self.established, toByteOffset: 4, as: UInt32.self)
            }
            let messages = try socket.request(type: Self.byFamily, flags: NetlinkSocket.flagDump, payload: request)
            for message in messages where message.type == Self.byFamily {
                if let info = Self.parse(message.payload), info.remotePort == remotePort { sockets.append(info) }
            }
        }
        return sockets
    }

    /// One `inet_diag_msg` with its INET_DIAG_INFO attribute.
    static func parse(_ payload: [UInt8]) -> TCPSocketInfo? {
        // struct inet_diag_msg { u8 family, state, timer, retrans; struct inet_diag_sockid id;
        //   u32 expires, rqueue, wqueue, uid, inode; } — 72 bytes, then attributes.
        guard payload.count >= 72 else { return nil }
        let family = Int32(payload[0])
        let length = family == AF_INET6 ? 16 : 4
        func address(_ offset: Int) -> String {
            NetlinkSocket.addressText(Array(payload[offset..<(offset + length)]), family: family) ?? ""
        }
        func port(_ offset: Int) -> UInt16 { UInt16(payload[offset]) << 8 | UInt16(payload[offset + 1]) }
        guard
            let info = NetlinkSocket.attributes(payload, from: 72).first(where: { $0.0 == attributeInfo })?.1,
            info.count >= totalRetransOffset + 4
        else { return nil }
        return TCPSocketInfo(
            localAddress: address(8), localPort: port(4), remoteAddress: address(24), remotePort: port(6),
            rttMicroseconds: NetlinkSocket.load(UInt32.self, info, rttOffset),
            totalRetransmissions: NetlinkSocket.load(UInt32.self, info, totalRetransOffset))
    }
}
