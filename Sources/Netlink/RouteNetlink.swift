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

/// A route netlink socket of the calling thread's network namespace: link dumps, link events
/// and namespace ids. Not thread-safe; use one per thread.
public final class RouteNetlink {
    // Values from linux/rtnetlink.h, linux/if_link.h and linux/net_namespace.h
    // (stable kernel ABI); the kernel's names are in the comments.
    static let netlinkRoute: Int32 = 0  // NETLINK_ROUTE
    static let groupLink: UInt32 = 0x1  // RTMGRP_LINK
    static let groupIPv4Route: UInt32 = 0x40  // RTMGRP_IPV4_ROUTE
    static let groupIPv6Route: UInt32 = 0x400  // RTMGRP_IPV6_ROUTE
    static let newLink: UInt16 = 16  // RTM_NEWLINK
    static let getLink: UInt16 = 18  // RTM_GETLINK
    static let newNSID: UInt16 = 88  // RTM_NEWNSID
    static let getNSID: UInt16 = 90  // RTM_GETNSID
    static let attrIfName: UInt16 = 3  // IFLA_IFNAME
    static let attrMaster: UInt16 = 10  // IFLA_MASTER
    static let attrLinkInfo: UInt16 = 18  // IFLA_LINKINFO
    static let attrInfoKind: UInt16 = 1  // IFLA_INFO_KIND
    static let attrLinkNetnsID: UInt16 = 37  // IFLA_LINK_NETNSID
    static let attrTargetNetnsID: UInt16 = 46  // IFLA_TARGET_NETNSID
    static let attrNSID: UInt16 = 1  // NETNSA_NSID
    static let attrNamespaceFD: UInt16 = 3  // NETNSA_FD
    static let flagUp: UInt32 = 0x1  // IFF_UP

    private let socket: NetlinkSocket

    /// Opens a socket; with `subscribeToChanges`, it also receives every link change and every
    /// route change (a default route that comes or goes moves the uplink).
    public init(subscribeToChanges: Bool = false) throws(NetlinkError) {
        socket = try NetlinkSocket(
            protocolNumber: Self.netlinkRoute,
            groups: subscribeToChanges ? Self.groupLink | Self.groupIPv4Route | Self.groupIPv6Route : 0)
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

    /// Blocks up to `timeout` seconds for link or route events; returns true if at least one
    /// arrived (all pending ones are consumed). Needs `subscribeToChanges`.
    public func waitForChange(timeout: Double) -> Bool {
        var pollFD = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollFD, 1, Int32(timeout * 1000)) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var changed = false
        while recv(socket.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 { changed = true }
        // ENOBUFS means events were lost: report a change so the caller resynchronizes.
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
