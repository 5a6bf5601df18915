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

/// Errors talking rtnetlink.
public enum NetlinkError: Error, Equatable, CustomStringConvertible {
    case system(operation: String, errno: Int32)
    case malformed(String)

    public var description: String {
        switch self {
        case .system(let operation, let code): "netlink \(operation) failed: \(String(cString: strerror(code)))"
        case .malformed(let what): "netlink answer malformed: \(what)"
        }
    }
}

/// A route netlink socket of the calling thread's network namespace: link dumps, link events
/// and namespace ids. Not thread-safe; use one per thread.
public final class RouteNetlink {
    // Values from linux/netlink.h, linux/rtnetlink.h, linux/if_link.h and linux/net_namespace.h
    // (stable kernel ABI); the kernel's names are in the comments.
    static let netlinkRoute: Int32 = 0  // NETLINK_ROUTE
    static let groupLink: UInt32 = 1  // RTMGRP_LINK
    static let messageError: UInt16 = 2  // NLMSG_ERROR
    static let messageDone: UInt16 = 3  // NLMSG_DONE
    static let flagRequest: UInt16 = 0x1  // NLM_F_REQUEST
    static let flagAck: UInt16 = 0x4  // NLM_F_ACK
    static let flagDump: UInt16 = 0x300  // NLM_F_DUMP
    static let newLink: UInt16 = 16  // RTM_NEWLINK
    static let getLink: UInt16 = 18  // RTM_GETLINK
    static let newNSID: UInt16 = 88  // RTM_NEWNSID
    static let getNSID: UInt16 = 90  // RTM_GETNSID
    static let attrIfName: UInt16 = 3  // IFLA_IFNAME
    static let attrMaster: UInt16 = 10  // IFLA_MASTER
    static let attrLinkInfo: UInt16 = 18  // IFLA_LINKINFO
    static let attrInfoKind: UInt16 = 1  // IFLA_INFO_KIND
    static let attrLinkNetnsID: UInt16 = 37  // IFLA_LINK_NETNSID
    static let attrNSID: UInt16 = 1  // NETNSA_NSID
    static let attrNamespaceFD: UInt16 = 3  // NETNSA_FD
    static let flagUp: UInt32 = 0x1  // IFF_UP

    private let fd: Int32
    private var sequence: UInt32 = 1

    /// Opens a socket; with `subscribeToLinks`, it also receives every link change.
    public init(subscribeToLinks: Bool = false) throws(NetlinkError) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.netlinkRoute)
        guard fd >= 0 else { throw .system(operation: "socket", errno: errno) }
        // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups; }
        var address = [UInt8](repeating: 0, count: 12)
        address.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_NETLINK), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: subscribeToLinks ? Self.groupLink : 0, toByteOffset: 8, as: UInt32.self)
        }
        let status = address.withUnsafeBytes {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12)
        }
        guard status == 0 else {
            let code = errno
            close(fd)
            throw .system(operation: "bind", errno: code)
        }
        var bufferSize: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Every link of this namespace.
    public func links() throws(NetlinkError) -> [Link] {
        // struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; }
        let messages = try request(
            type: Self.getLink, flags: Self.flagDump, payload: [UInt8](repeating: 0, count: 16))
        return messages.compactMap { $0.type == Self.newLink ? Self.parseLink($0.payload) : nil }
    }

    /// The id this namespace gives the namespace open at `namespaceFD`, or nil if it has none
    /// (a namespace gets one when a veth peer or similar link connects the two).
    public func namespaceID(ofNamespaceFD namespaceFD: Int32) throws(NetlinkError) -> Int32? {
        var payload: [UInt8] = [UInt8(AF_UNSPEC), 0, 0, 0]  // struct rtgenmsg, padded
        payload += Self.attribute(type: Self.attrNamespaceFD, value: UInt32(bitPattern: namespaceFD))
        let messages = try request(type: Self.getNSID, flags: 0, payload: payload)
        for message in messages where message.type == Self.newNSID {
            for (type, value) in Self.attributes(message.payload, from: 4) where type == Self.attrNSID {
                let id = value.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                return id < 0 ? nil : id
            }
        }
        return nil
    }

    /// Blocks up to `timeout` seconds for link events; returns true if at least one arrived
    /// (all pending ones are consumed). Needs `subscribeToLinks`.
    public func waitForLinkChange(timeout: Double) -> Bool {
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollFD, 1, Int32(timeout * 1000)) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var changed = false
        while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 { changed = true }
        // ENOBUFS means events were lost: report a change so the caller resynchronizes.
        return changed || errno == ENOBUFS
    }

    // MARK: - Messages

    struct Message {
        var type: UInt16
        var payload: [UInt8]
    }

    private func request(type: UInt16, flags: UInt16, payload: [UInt8]) throws(NetlinkError) -> [Message] {
        sequence &+= 1
        let seq = sequence
        var message = [UInt8](repeating: 0, count: 16)
        message.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(16 + payload.count), toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: type, toByteOffset: 4, as: UInt16.self)
            raw.storeBytes(of: Self.flagRequest | Self.flagAck | flags, toByteOffset: 6, as: UInt16.self)
            raw.storeBytes(of: seq, toByteOffset: 8, as: UInt32.self)
        }
        message += payload
        guard send(fd, message, message.count, 0) == message.count else {
            throw .system(operation: "send", errno: errno)
        }
        var replies: [Message] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else {
                if errno == EINTR { continue }
                throw .system(operation: "recv", errno: errno)
            }
            var offset = 0
            while offset + 16 <= count {
                let length = Int(Self.load(UInt32.self, buffer, offset))
                let kind = Self.load(UInt16.self, buffer, offset + 4)
                let replySeq = Self.load(UInt32.self, buffer, offset + 8)
                guard length >= 16, offset + length <= count else { throw .malformed("message length \(length)") }
                defer { offset += (length + 3) & ~3 }
                guard replySeq == seq else { continue }  // an event, or an answer to an older request
                if kind == Self.messageDone { return replies }
                if kind == Self.messageError {
                    let code = Self.load(Int32.self, buffer, offset + 16)
                    if code == 0 {
                        if flags & Self.flagDump == 0 { return replies }  // the ACK ends a plain request
                        continue
                    }
                    throw .system(operation: "request \(type)", errno: -code)
                }
                replies.append(Message(type: kind, payload: Array(buffer[(offset + 16)..<(offset + length)])))
            }
        }
    }

    static func parseLink(_ payload: [UInt8]) -> Link? {
        guard payload.count >= 16 else { return nil }
        let index = load(Int32.self, payload, 4)
        let flags = load(UInt32.self, payload, 8)
        var link = Link(index: index, name: "", kind: nil, peerNamespaceID: nil, isUp: flags & flagUp != 0)
        for (type, value) in attributes(payload, from: 16) {
            switch type {
            case attrIfName: link.name = string(value)
            case attrMaster where value.count >= 4: link.master = load(Int32.self, value, 0)
            case attrLinkNetnsID where value.count >= 4:
                let id = load(Int32.self, value, 0)
                link.peerNamespaceID = id < 0 ? nil : id
            case attrLinkInfo:
                for (infoType, info) in attributes(value, from: 0) where infoType == attrInfoKind {
                    link.kind = string(info)
                }
            default: break
            }
        }
        return link
    }

    /// rtattr list: `{u16 length; u16 type; value; padding to 4}`.
    static func attributes(_ bytes: [UInt8], from start: Int) -> [(UInt16, [UInt8])] {
        var result: [(UInt16, [UInt8])] = []
        var offset = start
        while offset + 4 <= bytes.count {
            let length = Int(load(UInt16.self, bytes, offset))
            let type = load(UInt16.self, bytes, offset + 2) & 0x3fff  // drop NLA_F_NESTED / NET_BYTEORDER
            guard length >= 4, offset + length <= bytes.count else { break }
            result.append((type, Array(bytes[(offset + 4)..<(offset + length)])))
            offset += (length + 3) & ~3
        }
        return result
    }

    static func attribute(type: UInt16, value: UInt32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(8), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: type, toByteOffset: 2, as: UInt16.self)
            raw.storeBytes(of: value, toByteOffset: 4, as: UInt32.self)
        }
        return bytes
    }

    static func load<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    static func string(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
