import HubbleAPI
import SwiftProtobuf

/// A `GetFlowsResponse` as the bytes an agent sent, with the little the relay needs to merge it
/// read straight from them: its time and what it holds. The relay passes flows on to its
/// clients as they came — decoding every flow and encoding it again was most of its work
/// (docs/scaling.md).
public struct RawFlowResponse: Sendable {
    public enum Kind: Sendable, Equatable { case flow, nodeStatus, lostEvents, mark, other }

    /// The serialized response (a slice: responses read from one `FlowBatch` share its buffer).
    public let bytes: ArraySlice<UInt8>
    /// `time` in nanoseconds since the epoch (0 when absent).
    public let time: Int64
    public let hasTime: Bool
    public let kind: Kind

    /// Reads the top-level fields (`flow` = 1, `node_status` = 2, `lost_events` = 3, `time` =
    /// 1001) without decoding the rest. A response with a time and none of the three is an
    /// Osprey agent's progress mark (`ProgressMark`).
    public init(bytes: ArraySlice<UInt8>) throws(WireError) {
        self.bytes = bytes
        var reader = WireReader(bytes: bytes)
        var kind = Kind.other
        var seconds: Int64 = 0
        var nanos: Int64 = 0
        var hasTime = false
        while let (field, wireType) = try reader.nextKey() {
            switch (field, wireType) {
            case (1, 2): kind = .flow
            case (2, 2): kind = .nodeStatus
            case (3, 2): kind = .lostEvents
            case (1001, 2):
                hasTime = true
                var timestamp = WireReader(bytes: try reader.lengthDelimited())
                while let (inner, innerType) = try timestamp.nextKey() {
                    switch (inner, innerType) {
                    case (1, 0): seconds = Int64(bitPattern: try timestamp.varint())
                    case (2, 0): nanos = Int64(Int32(truncatingIfNeeded: try timestamp.varint()))
                    default: try timestamp.skip(innerType)
                    }
                }
                continue
            default: break
            }
            try reader.skip(wireType)
        }
        self.hasTime = hasTime
        self.kind = kind == .other && hasTime ? .mark : kind
        time = seconds &* 1_000_000_000 &+ nanos
    }

    public init(bytes: [UInt8]) throws(WireError) { try self.init(bytes: bytes[...]) }

    /// A response made here (the relay's node status events).
    public init(_ message: Observer_GetFlowsResponse) throws {
        try self.init(bytes: try message.serializedBytes() as [UInt8])
    }

    public func decoded() throws -> Observer_GetFlowsResponse {
        try Observer_GetFlowsResponse(serializedBytes: Array(bytes))
    }

    /// Protobuf that does not parse.
    public struct WireError: Error, CustomStringConvertible {
        public var description: String { "an agent sent a GetFlowsResponse that is not valid protobuf" }
    }

    /// Just enough of the protobuf wire format to walk a message's fields.
    struct WireReader {
        var bytes: ArraySlice<UInt8>

        mutating func varint() throws(WireError) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = bytes.popFirst() {
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
                if shift > 63 { break }
            }
            throw WireError()
        }

        /// The next field number and wire type, or nil at the end.
        mutating func nextKey() throws(WireError) -> (Int, Int)? {
            guard !bytes.isEmpty else { return nil }
            let key = try varint()
            return (Int(truncatingIfNeeded: key >> 3), Int(key & 7))
        }

        mutating func lengthDelimited() throws(WireError) -> ArraySlice<UInt8> {
            let length = try varint()
            guard length <= UInt64(bytes.count) else { throw WireError() }
            let value = bytes.prefix(Int(length))
            bytes = bytes.dropFirst(Int(length))
            return value
        }

        mutating func skip(_ wireType: Int) throws(WireError) {
            switch wireType {
            case 0: _ = try varint()
            case 1, 5:
                let size = wireType == 1 ? 8 : 4
                guard bytes.count >= size else { throw WireError() }
                bytes = bytes.dropFirst(size)
            case 2: _ = try lengthDelimited()
            default: throw WireError()
            }
        }
    }
}
