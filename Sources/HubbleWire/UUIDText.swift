import Foundation

extension UUID {
    /// The UUID's 36 characters in lower case, as Hubble writes a flow's `uuid`, handed to `body`
    /// as bytes. Same text as `uuidString.lowercased()`, which formats through sprintf and then
    /// makes a second string: at a follower's or flow log's rate that was a visible part of each
    /// flow's message.
    public func withLowercaseText<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 36) { text in
            withUnsafeBytes(of: uuid) { bytes in
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    text[at] = Self.lowerHex(byte >> 4)
                    text[at + 1] = Self.lowerHex(byte & 15)
                    at += 2
                }
            }
            return try body(UnsafeBufferPointer(text))
        }
    }

    /// `uuidString.lowercased()`, without sprintf.
    public var lowercaseText: String { withLowercaseText { String(decoding: $0, as: UTF8.self) } }

    private static func lowerHex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
