import Foundation

extension Datapath {
    /// The kernel function that frees a GRO list's datagrams after their head: the location
    /// skb:kfree_skb gives for each of them. It frees them with the reason it was handed, which
    /// on the common paths is `NOT_SPECIFIED`, not the head's (seen with `perf` on a veth pair
    /// with GRO lists, behind heads dropped for no socket; DropTests).
    public static let listFreeFunction = "skb_release_data"

    /// The kernel text of the function `name`, as `/proc/kallsyms` lists it: from its address to
    /// the next symbol's. Nil when it is not there, when the addresses are hidden (zeros, for a
    /// process without CAP_SYSLOG under kptr_restrict), or when the file cannot be read.
    static func kernelFunction(_ name: String, kallsyms path: String = "/proc/kallsyms") -> Range<UInt64>? {
        kallsyms(path).flatMap { kernelFunction(name, inKallsyms: $0) }
    }

    /// The whole kallsyms file, nil when it cannot be read. procfs reports a size of 0: read to
    /// the end.
    private static func kallsyms(_ path: String) -> Data? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return try? handle.readToEnd()
    }

    /// The text of function `name` in the contents of a kallsyms file (lines `address type
    /// name [module]`, core kernel symbols in address order): from its address to the next
    /// line's. Nil when absent, hidden or not followed by a higher address.
    static func kernelFunction(_ name: String, inKallsyms bytes: Data) -> Range<UInt64>? {
        // ` name` ending a line is the third field of a core kernel symbol (a module's line
        // ends with its `[module]`): one search in Foundation's code, not a split of 100,000 lines.
        guard let hit = bytes.range(of: Data(" \(name)\n".utf8)) else { return nil }
        let newline = UInt8(ascii: "\n")
        let lineStart = bytes[..<hit.lowerBound].lastIndex(of: newline).map { $0 + 1 } ?? bytes.startIndex
        let fields = bytes[lineStart..<hit.lowerBound].split(separator: UInt8(ascii: " "))
        let nextLine = bytes[hit.upperBound...].prefix { $0 != UInt8(ascii: " ") && $0 != newline }
        guard fields.count == 2, fields[1].count == 1, "tT".utf8.contains(fields[1].first!),
            let address = hexadecimal(fields[0]), address != 0,
            let end = hexadecimal(nextLine), end > address
        else { return nil }
        return address..<end
    }

    private static func hexadecimal<Digits: Collection<UInt8>>(_ digits: Digits) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 16 else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard let digit = hexDigit(byte) else { return nil }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}

extension Datapath {
    /// Where in the kernel text `address` is, as the kernel prints a code address (`%pS`):
    /// `nf_hook_slow+0x9c/0x120`, with ` [module]` after a module's function. Read from
    /// `/proc/kallsyms` at each call (the kernel takes about 36 ms to write its 120,000 lines
    /// here): callers keep what it says. Nil when the addresses are hidden, the address is in
    /// no function, or the file cannot be read.
    public static func kernelLocation(of address: UInt64, kallsyms path: String = "/proc/kallsyms") -> String? {
        guard address != 0 else { return nil }
        return kallsyms(path).flatMap { kernelLocation(of: address, inKallsyms: $0) }
    }

    /// `kernelLocation(of:)` over the contents of a kallsyms file: the text symbol (type `t` or
    /// `T`) at the highest address not above `address`, and the size up to the next symbol of
    /// any type. Lines need not be in address order (modules' are not).
    static func kernelLocation(of address: UInt64, inKallsyms bytes: Data) -> String? {
        var best: (start: UInt64, line: Range<Int>)? = nil
        var next = UInt64.max
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var lineStart = 0
            while lineStart < raw.count {
                var lineEnd = lineStart
                while lineEnd < raw.count && raw[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                defer { lineStart = lineEnd + 1 }
                var index = lineStart
                var value: UInt64 = 0
                var digits = 0
                while index < lineEnd, let digit = hexDigit(raw[index]), digits < 16 {
                    value = value << 4 | UInt64(digit)
                    digits += 1
                    index += 1
                }
                guard digits > 0, index + 2 < lineEnd, raw[index] == UInt8(ascii: " ") else { continue }
                if value > address {
                    next = min(next, value)
                } else if raw[index + 1] | 0x20 == UInt8(ascii: "t"), value >= (best?.start ?? 0) {
                    best = (value, (index + 3)..<lineEnd)
                }
            }
        }
        guard let best, best.start != 0 else { return nil }
        // The rest of the line: `name` or `name\t[module]`.
        let fields = bytes[bytes.startIndex + best.line.lowerBound..<bytes.startIndex + best.line.upperBound]
            .split(whereSeparator: { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: " ") })
        guard let name = fields.first.map({ String(decoding: $0, as: UTF8.self) }) else { return nil }
        let offset = "+0x" + String(address - best.start, radix: 16)
        let size = next == .max ? "" : "/0x" + String(next - best.start, radix: 16)
        let module = fields.count > 1 ? " " + String(decoding: fields[1], as: UTF8.self) : ""
        return name + offset + size + module
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
