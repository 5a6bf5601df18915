import Foundation

/// Text forms of addresses.
public enum IPText {
    /// The IPv4 and IPv6 addresses a host name resolves to (an address: itself), as
    /// `getnameinfo` writes them, sorted; empty when it does not resolve.
    public static func addresses(ofHost host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: Set<String> = []
        var entry = result
        while let info = entry {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(
                info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0,
                NI_NUMERICHOST) == 0
            {
                addresses.insert(
                    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            entry = info.pointee.ai_next
        }
        return addresses.sorted()
    }

    /// Dotted decimal, written byte by byte without generic collection code (it runs for every flow).
    public static func ipv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> String {
        // At most 15 bytes: Swift keeps such strings inline, so this allocates nothing.
        String(unsafeUninitializedCapacity: 15) { buffer in
            var count = 0
            func put(_ byte: UInt8) {
                if byte >= 100 {
                    buffer[count] = UInt8(ascii: "0") + byte / 100
                    count += 1
                }
                if byte >= 10 {
                    buffer[count] = UInt8(ascii: "0") + byte / 10 % 10
                    count += 1
                }
                buffer[count] = UInt8(ascii: "0") + byte % 10
                count += 1
            }
            func dot() {
                buffer[count] = UInt8(ascii: ".")
                count += 1
            }
            put(a)
            dot()
            put(b)
            dot()
            put(c)
            dot()
            put(d)
            return count
        }
    }

    /// RFC 5952 text: lowercase, longest zero run as `::`.
    public static func ipv6(_ bytes: [UInt8]) -> String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength && end - index > 1 { bestStart = index; bestLength = end - index }
            index = end
        }
        func hex(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    /// The address in `text` as network-order bytes (4 or 16), nil if it is no address.
    public static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// The text of 4 or 16 network-order bytes, as flows spell addresses.
    public static func text(_ bytes: [UInt8]) -> String? {
        switch bytes.count {
        case 4: ipv4(bytes[0], bytes[1], bytes[2], bytes[3])
        case 16: ipv6(bytes)
        default: nil
        }
    }

    /// The first host address of a CIDR (`10.244.1.0/24` → `10.244.1.1`): where the node that
    /// owns a pod CIDR conventionally has its address on the pod network (the pods' gateway).
    public static func gateway(ofCIDR cidr: String) -> String? {
        guard let slash = cidr.firstIndex(of: "/"), var address = bytes(String(cidr[..<slash])) else { return nil }
        address[address.count - 1] |= 1
        return text(address)
    }
}
