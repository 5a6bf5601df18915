/// The pieces of protobuf's wire format Osprey writes by hand, where bytes are put together
/// without a generated message: `FlowBatch` (FlowBatchWire.swift), server reflection's answers,
/// the relay benchmark's pre-encoded flows.
public enum ProtoWire {
    public static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// A length-delimited field's key and length; its `length` bytes follow.
    public static func appendLengthPrefix(_ field: Int, length: Int, to bytes: inout [UInt8]) {
        appendVarint(UInt64(field << 3 | 2), to: &bytes)
        appendVarint(UInt64(length), to: &bytes)
    }

    /// A length-delimited field: bytes, a string's UTF-8 or an embedded message.
    public static func appendField(_ field: Int, _ value: some Collection<UInt8>, to bytes: inout [UInt8]) {
        appendLengthPrefix(field, length: value.count, to: &bytes)
        bytes.append(contentsOf: value)
    }

    public static func appendVarintField(_ field: Int, _ value: UInt64, to bytes: inout [UInt8]) {
        appendVarint(UInt64(field << 3), to: &bytes)
        appendVarint(value, to: &bytes)
    }

    /// A length-delimited field on its own.
    public static func field(_ field: Int, _ value: some Collection<UInt8>) -> [UInt8] {
        var bytes: [UInt8] = []
        appendField(field, value, to: &bytes)
        return bytes
    }

    /// A varint field on its own.
    public static func varintField(_ field: Int, _ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        appendVarintField(field, value, to: &bytes)
        return bytes
    }
}
