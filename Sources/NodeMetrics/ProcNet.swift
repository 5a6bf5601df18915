import Foundation

/// Parsers for the per-namespace files under /proc/<pid>/net: socket tables, SNMP counters,
/// interface statistics. Pure functions of the file text, so they are unit-tested on samples.
public enum ProcNet {
    /// TCP states by the hex code the kernel prints (include/net/tcp_states.h).
    public static let tcpStates: [String: String] = [
        "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
        "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
    ]

    /// One socket of /proc/net/tcp[6] or udp[6].
    public struct Socket: Sendable, Equatable {
        public var state: String
        public var remoteAddress: String
        public var remotePort: UInt16
    }

    /// Parses a socket table (`tcp`, `tcp6`, `udp`, `udp6`).
    public static func sockets(_ text: String) -> [Socket] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3 else { return nil }
            let remote = fields[2].split(separator: ":")
            guard remote.count == 2, let port = UInt16(remote[1], radix: 16) else { return nil }
            return Socket(
                state: tcpStates[String(fields[3])] ?? String(fields[3]), remoteAddress: address(hex: remote[0]),
                remotePort: port)
        }
    }

    /// The kernel prints addresses as 32-bit words in host (little-endian) byte order.
    static func address(hex: Substring) -> String {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 8, limitedBy: hex.endIndex) ?? hex.endIndex
            let word = UInt32(hex[index..<next], radix: 16) ?? 0
            bytes += [UInt8(word & 0xff), UInt8(word >> 8 & 0xff), UInt8(word >> 16 & 0xff), UInt8(word >> 24)]
            index = next
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        // IPv4-mapped IPv6 (::ffff:a.b.c.d) is shown as the IPv4 address it is.
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, bytes, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Parses /proc/net/snmp or /proc/net/netstat: pairs of lines `Prefix: names…` and
    /// `Prefix: values…`. Returns prefix → (name → value).
    public static func counters(_ text: String) -> [String: [String: Double]] {
        var result: [String: [String: Double]] = [:]
        let lines = text.split(separator: "\n")
        var index = 0
        while index + 1 < lines.count {
            let names = lines[index].split(separator: " ")
            let values = lines[index + 1].split(separator: " ")
            index += 2
            guard let prefix = names.first, prefix.hasSuffix(":"), values.first == prefix, names.count == values.count
            else { continue }
            var group: [String: Double] = [:]
            for (name, value) in zip(names.dropFirst(), values.dropFirst()) { group[String(name)] = Double(value) ?? 0 }
            result[String(prefix.dropLast()), default: [:]].merge(group) { $1 }
        }
        return result
    }

    /// Interface statistics from /proc/net/dev, in the names `ip -s link` and Retina use.
    public static func interfaces(_ text: String) -> [String: [String: Double]] {
        let columns = [
            "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo_errors", "rx_frame_errors",
            "rx_compressed", "multicast", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_fifo_errors",
            "collisions", "tx_carrier_errors", "tx_compressed",
        ]
        var result: [String: [String: Double]] = [:]
        for line in text.split(separator: "\n").dropFirst(2) {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let values = parts[1].split(separator: " ").compactMap { Double($0) }
            guard values.count == columns.count else { continue }
            result[name] = Dictionary(uniqueKeysWithValues: zip(columns, values))
        }
        return result
    }
}
