import Flows

/// A DNS message as far as flows need it: header, first question, A/AAAA/CNAME answers.
///
/// Parses from a possibly truncated snapshot (the datapath carries the first 256 bytes);
/// whatever lies beyond the snapshot is simply not reported.
public struct DNSMessage: Sendable, Equatable {
    public var id: UInt16
    public var isResponse: Bool
    public var rcode: Int
    public var query: String
    public var qtype: UInt16
    public var addresses: [String] = []
    public var cnames: [String] = []
    public var ttl: UInt32 = 0
    public var rrtypes: [String] = []

    static let typeNames: [UInt16: String] = [
        1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 65: "HTTPS",
        255: "ANY",
    ]

    public static func typeName(_ type: UInt16) -> String { typeNames[type] ?? "TYPE\(type)" }

    /// Parses `bytes`; nil if even the header and question cannot be read.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= 12 else { return nil }
        id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        isResponse = bytes[2] & 0x80 != 0
        rcode = Int(bytes[3] & 0x0f)
        let questions = Int(bytes[4]) << 8 | Int(bytes[5])
        let answers = Int(bytes[6]) << 8 | Int(bytes[7])
        guard questions >= 1 else { return nil }
        var offset = 12
        guard let name = Self.name(bytes, &offset), offset + 4 <= bytes.count else { return nil }
        query = name
        qtype = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        offset += 4
        for _ in 1..<max(questions, 1) {  // further questions are skipped
            guard Self.skipName(bytes, &offset) else { return }
            offset += 4
        }
        var ttlSet = false
        for _ in 0..<answers {
            guard Self.skipName(bytes, &offset), offset + 10 <= bytes.count else { return }
            let type = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            let ttl =
                UInt32(bytes[offset + 4]) << 24 | UInt32(bytes[offset + 5]) << 16 | UInt32(bytes[offset + 6]) << 8
                | UInt32(bytes[offset + 7])
            let length = Int(bytes[offset + 8]) << 8 | Int(bytes[offset + 9])
            offset += 10
            guard offset + length <= bytes.count else { return }
            rrtypes.append(Self.typeName(type))
            if !ttlSet || ttl < self.ttl { self.ttl = ttl; ttlSet = true }  // the smallest, as Hubble shows
            switch type {
            case 1 where length == 4:
                addresses.append(bytes[offset..<offset + 4].map(String.init).joined(separator: "."))
            case 28 where length == 16:
                addresses.append(IPText.ipv6(Array(bytes[offset..<offset + 16])))
            case 5:
                var cnameOffset = offset
                if let cname = Self.name(bytes, &cnameOffset) { cnames.append(cname) }
            default: break
            }
            offset += length
        }
    }

    /// Reads a (possibly compressed) name at `offset` and moves past it. The name is in
    /// presentation format, as Cilium's DNS library writes it: `a.b.c.` (`.` for the root),
    /// with a label's dots, spaces and `'@;()"\` escaped by a backslash and its bytes outside
    /// printable ASCII written `\DDD`, so that no byte is lost or mistaken for a separator.
    static func name(_ bytes: [UInt8], _ offset: inout Int) -> String? {
        var text: [UInt8] = []
        guard walkName(bytes, &offset, into: &text, keep: true) else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    /// Moves past a name as `name` does, without writing it out.
    static func skipName(_ bytes: [UInt8], _ offset: inout Int) -> Bool {
        var none: [UInt8] = []
        return walkName(bytes, &offset, into: &none, keep: false)
    }

    private static func walkName(_ bytes: [UInt8], _ offset: inout Int, into text: inout [UInt8], keep: Bool) -> Bool {
        var position = offset
        var jumped = false
        var wireLength = 0
        for _ in 0..<64 {
            guard position < bytes.count else { return false }
            let length = Int(bytes[position])
            if length == 0 {
                if !jumped { offset = position + 1 }
                if keep && text.isEmpty { text.append(UInt8(ascii: ".")) }
                return true
            }
            if length & 0xc0 == 0xc0 {
                guard position + 1 < bytes.count else { return false }
                if !jumped { offset = position + 2 }
                jumped = true
                position = (length & 0x3f) << 8 | Int(bytes[position + 1])
                continue
            }
            guard position + 1 + length <= bytes.count else { return false }
            // RFC 1035: a name is at most 255 bytes; longer is malformed (or a pointer loop).
            wireLength += length + 1
            guard wireLength <= 255 else { return false }
            if keep {
                for byte in bytes[(position + 1)...(position + length)] { appendEscaped(byte, to: &text) }
                text.append(UInt8(ascii: "."))
            }
            position += 1 + length
        }
        return false
    }

    private static func appendEscaped(_ byte: UInt8, to text: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "."), UInt8(ascii: " "), UInt8(ascii: "'"), UInt8(ascii: "@"), UInt8(ascii: ";"),
            UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\""), UInt8(ascii: "\\"):
            text.append(UInt8(ascii: "\\"))
            text.append(byte)
        case 0x21...0x7e:
            text.append(byte)
        default:
            text.append(UInt8(ascii: "\\"))
            text.append(UInt8(ascii: "0") + byte / 100)
            text.append(UInt8(ascii: "0") + byte / 10 % 10)
            text.append(UInt8(ascii: "0") + byte % 10)
        }
    }
}
