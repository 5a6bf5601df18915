import Foundation

/// A network interface as rtnetlink reports it.
public struct Link: Sendable, Equatable, Hashable {
    public var index: Int32
    public var name: String
    /// `IFLA_INFO_KIND`: `veth`, `bridge`, … (nil for physical devices and loopback).
    public var kind: String?
    /// For a veth whose peer lives in another network namespace: that namespace's id as this
    /// namespace numbers it (`IFLA_LINK_NETNSID`).
    public var peerNamespaceID: Int32?
    /// Index of the bridge this link is a port of (`IFLA_MASTER`).
    public var master: Int32?
    /// For a veth: its peer's index, in the peer's namespace (`IFLA_LINK`).
    public var peerIndex: Int32?
    public var isUp: Bool

    public init(
        index: Int32, name: String, kind: String?, peerNamespaceID: Int32?, master: Int32? = nil, isUp: Bool = true
    ) {
        self.index = index
        self.name = name
        self.kind = kind
        self.peerNamespaceID = peerNamespaceID
        self.master = master
        self.isUp = isUp
    }
}

/// A route netlink socket of the calling thread's network namespace: link and address dumps,
/// link, route and address events, and namespace ids. Not thread-safe; use one per thread.
public final class RouteNetlink {
    // Values from linux/rtnetlink.h, linux/if_link.h and linux/net_namespace.h
    // (stable kernel ABI); the kernel's names are in the comments.
    static let netlinkRoute: Int32 = 0  // NETLINK_ROUTE
    static let groupLink: UInt32 = 0x1  // RTMGRP_LINK
    static let groupIPv4Route: UInt32 = 0x40  // RTMGRP_IPV4_ROUTE
    static let groupIPv6Route: UInt32 = 0x400  // RTMGRP_IPV6_ROUTE
    static let groupIPv4Address: UInt32 = 0x10  // RTMGRP_IPV4_IFADDR
    static let groupIPv6Address: UInt32 = 0x100  // RTMGRP_IPV6_IFADDR
    static let optionListenAllNamespaces: Int32 = 8  // NETLINK_LISTEN_ALL_NSID
    static let newLink: UInt16 = 16  // RTM_NEWLINK
    static let getLink: UInt16 = 18  // RTM_GETLINK
    static let newNSID: UInt16 = 88  // RTM_NEWNSID
    static let getNSID: UInt16 = 90  // RTM_GETNSID
    static let newAddress: UInt16 = 20  // RTM_NEWADDR
    static let getAddress: UInt16 = 22  // RTM_GETADDR
    static let attrIfName: UInt16 = 3  // IFLA_IFNAME
    static let attrLink: UInt16 = 5  // IFLA_LINK
    static let attrAddress: UInt16 = 1  // IFA_ADDRESS
    static let attrLocal: UInt16 = 2  // IFA_LOCAL
    static let attrAddressTargetNetnsID: UInt16 = 10  // IFA_TARGET_NETNSID
    static let socketLevelNetlink: Int32 = 270  // SOL_NETLINK
    static let optionStrictCheck: Int32 = 12  // NETLINK_GET_STRICT_CHK
    static let attrMaster: UInt16 = 10  // IFLA_MASTER
    static let attrLinkInfo: UInt16 = 18  // IFLA_LINKINFO
    static let attrInfoKind: UInt16 = 1  // IFLA_INFO_KIND
    static let attrLinkNetnsID: UInt16 = 37  // IFLA_LINK_NETNSID
    static let attrTargetNetnsID: UInt16 = 46  // IFLA_TARGET_NETNSID
    static let attrNSID: UInt16 = 1  // NETNSA_NSID
    static let attrNamespaceFD: UInt16 = 3  // NETNSA_FD
    static let flagUp: UInt32 = 0x1  // IFF_UP

    private let socket: NetlinkSocket
    /// Whether the kernel checks this socket's dump requests strictly (set at the first
    /// address dump, which needs it to honour a target namespace and an interface filter).
    private var strict = false

    /// Opens a socket; with `subscribeToChanges`, it also receives every link change and every
    /// route change (a default route that comes or goes moves the uplink).
    public convenience init(subscribeToChanges: Bool = false) throws(NetlinkError) {
        try self.init(groups: subscribeToChanges ? Self.groupLink | Self.groupIPv4Route | Self.groupIPv6Route : 0)
    }

    private init(groups: UInt32) throws(NetlinkError) {
        socket = try NetlinkSocket(protocolNumber: Self.netlinkRoute, groups: groups)
    }

    /// A socket that receives every address change of this namespace and of each namespace it
    /// numbers (a pod's, once a veth joins the two): `NETLINK_LISTEN_ALL_NSID`, which needs
    /// CAP_NET_BROADCAST. Wait on it with `waitForChange` or `waitForChanges`.
    public static func addressChanges() throws(NetlinkError) -> RouteNetlink {
        let netlink = try RouteNetlink(groups: groupIPv4Address | groupIPv6Address)
        var on: Int32 = 1
        guard
            setsockopt(
                netlink.socket.fd, socketLevelNetlink, optionListenAllNamespaces, &on,
                socklen_t(MemoryLayout<Int32>.size)) == 0
        else { throw .system(operation: "setsockopt NETLINK_LISTEN_ALL_NSID", errno: errno) }
        return netlink
    }

    /// Every link of this namespace, or of the namespace it numbers `namespaceID` (a pod's, as
    /// its veth's `peerNamespaceID` names it; Linux 4.20 and later).
    public func links(inNamespaceID namespaceID: Int32? = nil) throws(NetlinkError) -> [Link] {
        // struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; }
        var payload = [UInt8](repeating: 0, count: 16)
        if let namespaceID {
            payload += NetlinkSocket.attribute(type: Self.attrTargetNetnsID, value: UInt32(bitPattern: namespaceID))
        }
        let messages = try socket.request(type: Self.getLink, flags: NetlinkSocket.flagDump, payload: payload)
        return messages.compactMap { $0.type == Self.newLink ? Self.parseLink($0.payload) : nil }
    }

    /// The global addresses of one interface, as their bytes (4 for IPv4, 16 for IPv6), of this namespace
    /// or of the one it numbers `namespaceID` (a pod's: its end of a veth, whose index is the
    /// node-side veth's `peerIndex`). Link-local and host addresses are left out.
    public func addresses(
        inNamespaceID namespaceID: Int32? = nil, interfaceIndex: Int32
    ) throws(NetlinkError)
        -> [[UInt8]]
    {
        if !strict {
            var on: Int32 = 1
            guard
                setsockopt(
                    socket.fd, Self.socketLevelNetlink, Self.optionStrictCheck, &on, socklen_t(MemoryLayout<Int32>.size)
                )
                    == 0
            else { throw .system(operation: "setsockopt NETLINK_GET_STRICT_CHK", errno: errno) }
            strict = true
        }
        var result: [[UInt8]] = []
        for family in [AF_INET, AF_INET6] {
            // struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }
            var payload: [UInt8] = [UInt8(family), 0, 0, 0]
            withUnsafeBytes(of: interfaceIndex.littleEndian) { payload += $0 }
            if let namespaceID {
                payload += NetlinkSocket.attribute(
                    type: Self.attrAddressTargetNetnsID, value: UInt32(bitPattern: namespaceID))
            }
            let messages = try socket.request(type: Self.getAddress, flags: NetlinkSocket.flagDump, payload: payload)
            for message in messages where message.type == Self.newAddress && message.payload.count >= 8 {
                let scope = message.payload[3]  // RT_SCOPE_UNIVERSE is 0
                guard scope == 0, Self.load(Int32.self, message.payload, 4) == interfaceIndex else { continue }
                var address: [UInt8]?
                for (type, value) in NetlinkSocket.attributes(message.payload, from: 8) {
                    if type == Self.attrLocal || (type == Self.attrAddress && address == nil) { address = value }
                }
                guard let address, address.count == (family == AF_INET6 ? 16 : 4) else { continue }
                result.append(address)
            }
        }
        return result
    }

    /// The id this namespace gives the namespace open at `namespaceFD`, or nil if it has none
    /// (a namespace gets one when a veth peer or similar link connects the two).
    public func namespaceID(ofNamespaceFD namespaceFD: Int32) throws(NetlinkError) -> Int32? {
        var payload: [UInt8] = [UInt8(AF_UNSPEC), 0, 0, 0]  // struct rtgenmsg, padded
        payload += NetlinkSocket.attribute(type: Self.attrNamespaceFD, value: UInt32(bitPattern: namespaceFD))
        let messages = try socket.request(type: Self.getNSID, flags: 0, payload: payload)
        for message in messages where message.type == Self.newNSID {
            for (type, value) in NetlinkSocket.attributes(message.payload, from: 4) where type == Self.attrNSID {
                let id = value.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                return id < 0 ? nil : id
            }
        }
        return nil
    }

    /// Blocks up to `timeout` seconds for the events this socket subscribed to; returns true if
    /// at least one arrived (all pending ones are consumed). Needs `subscribeToChanges` or
    /// `addressChanges()`.
    public func waitForChange(timeout: Double) -> Bool {
        Self.waitForChanges([self], timeout: timeout)[0]
    }

    /// Blocks up to `timeout` seconds for events on any of `sockets`; says for each whether
    /// events arrived on it (all pending ones are consumed).
    public static func waitForChanges(_ sockets: [RouteNetlink], timeout: Double) -> [Bool] {
        var pollFDs = sockets.map { pollfd(fd: $0.socket.fd, events: Int16(POLLIN), revents: 0) }
        guard poll(&pollFDs, nfds_t(pollFDs.count), Int32(timeout * 1000)) > 0 else {
            return Array(repeating: false, count: sockets.count)
        }
        return zip(sockets, pollFDs).map { netlink, pollFD in pollFD.revents != 0 && netlink.drain() }
    }

    /// Consumes every pending event; true if there was one, or if some were lost (ENOBUFS: the
    /// caller must read the state again).
    private func drain() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var changed = false
        while recv(socket.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 { changed = true }
        return changed || errno == ENOBUFS
    }

    static func parseLink(_ payload: [UInt8]) -> Link? {
        guard payload.count >= 16 else { return nil }
        let index = load(Int32.self, payload, 4)
        let flags = load(UInt32.self, payload, 8)
        var link = Link(index: index, name: "", kind: nil, peerNamespaceID: nil, isUp: flags & flagUp != 0)
        for (type, value) in NetlinkSocket.attributes(payload, from: 16) {
            switch type {
            case attrIfName: link.name = NetlinkSocket.string(value)
            case attrMaster where value.count >= 4: link.master = load(Int32.self, value, 0)
            case attrLink where value.count >= 4: link.peerIndex = load(Int32.self, value, 0)
            case attrLinkNetnsID where value.count >= 4:
                let id = load(Int32.self, value, 0)
                link.peerNamespaceID = id < 0 ? nil : id
            case attrLinkInfo:
                for (infoType, info) in NetlinkSocket.attributes(value, from: 0) where infoType == attrInfoKind {
                    link.kind = NetlinkSocket.string(info)
                }
            default: break
            }
        }
        return link
    }

    static func load<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        NetlinkSocket.load(T.self, bytes, offset)
    }
}
