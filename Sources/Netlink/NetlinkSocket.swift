import Foundation

/// Errors talking netlink.
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

/// A netlink socket of one protocol in the calling thread's network namespace, with the
/// request/answer exchange and attribute coding every netlink family shares. Not thread-safe.
final class NetlinkSocket {
    // Values from linux/netlink.h (stable kernel ABI); the kernel's names are in the comments.
    static let messageError: UInt16 = 2  // NLMSG_ERROR
    static let messageDone: UInt16 = 3  // NLMSG_DONE
    static let flagRequest: UInt16 = 0x1  // NLM_F_REQUEST
    static let flagAck: UInt16 = 0x4  // NLM_F_ACK
    static let flagDump: UInt16 = 0x300  // NLM_F_DUMP
    static let attributeNested: UInt16 = 0x8000  // NLA_F_NESTED

    let fd: Int32
    private var sequence: UInt32 = 1

    struct Message {
        var type: UInt16
        var payload: [UInt8]
    }

    /// Opens a socket of `protocolNumber` (NETLINK_ROUTE, NETLINK_NETFILTER…), joined to `groups`.
    init(protocolNumber: Int32, groups: UInt32 = 0) throws(NetlinkError) {
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), protocolNumber)
        guard fd >= 0 else { throw .system(operation: "socket", errno: errno) }
        // struct sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups; }
        var address = [UInt8](repeating: 0, count: 12)
        address.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(AF_NETLINK), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: groups, toByteOffset: 8, as: UInt32.self)
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

    /// Sends one request and collects the answers to it (a dump's messages, or a plain
    /// request's answer before its acknowledgement). An error answer throws with its errno.
    func request(type: UInt16, flags: UInt16, payload: [UInt8]) throws(NetlinkError) -> [Message] {
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

    // MARK: - Attributes

    /// Attribute list: `{u16 length; u16 type; value; padding to 4}`.
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

    /// One attribute with its value bytes, padded to 4.
    static func attribute(type: UInt16, bytes value: [UInt8]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt16(4 + value.count), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: type, toByteOffset: 2, as: UInt16.self)
        }
        bytes += value
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    static func attribute(type: UInt16, value: UInt32) -> [UInt8] {
        attribute(type: type, bytes: withUnsafeBytes(of: value) { Array($0) })
    }

    /// A nested attribute holding `children` (already coded attributes).
    static func nested(type: UInt16, _ children: [UInt8]) -> [UInt8] {
        attribute(type: type | attributeNested, bytes: children)
    }

    /// An IPv4 or IPv6 address's text (`10.0.1.5`, `fd00::5`); nil for bytes of the wrong length.
    static func addressText(_ address: [UInt8], family: Int32) -> String? {
        guard address.count == (family == AF_INET6 ? 16 : 4) else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard address.withUnsafeBytes({ inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }) != nil
        else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func load<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    static func string(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
