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
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        // procfs reports a size of 0: read to the end.
        guard let bytes = try? handle.readToEnd() else { return nil }
        return kernelFunction(name, inKallsyms: bytes)
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
        return UInt64(String(decoding: digits, as: UTF8.self), radix: 16)
    }
}
