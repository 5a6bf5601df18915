import HubbleAPI
import SwiftProtobuf

/// `osprey.v1.FlowBatch` (proto/osprey/batches.proto) as bytes: what an Osprey agent sends an
/// Osprey relay, many GetFlows responses per gRPC message. Neither side decodes the responses
/// in it: the agent appends each serialized response as field 1, the relay slices them out and
/// passes them on as they came. One message per flow cost each end a gRPC message, an HTTP/2
/// frame and a hop between tasks, most of the relay's work per flow (docs/scaling.md).
public struct FlowBatchEncoder: Sendable {
    /// A batch is sent once it holds about this much (well under gRPC's 4 MiB message limit).
    public static let targetSize = 128 * 1024

    public private(set) var bytes: [UInt8] = []
    /// How many responses it holds.
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }
    /// Whether the batch should be sent before another response is added.
    public var isFull: Bool { bytes.count >= Self.targetSize }

    public mutating func append(_ response: Observer_GetFlowsResponse) throws {
        let encoded: [UInt8] = try response.serializedBytes()
        if bytes.isEmpty { bytes.reserveCapacity(Self.targetSize + 4096) }
        ProtoWire.appendField(1, encoded, to: &bytes)  // responses
        count += 1
    }

    /// The batch's bytes; the encoder starts empty again.
    public mutating func take() -> [UInt8] {
        defer {
            bytes = []
            count = 0
        }
        return bytes
    }
}

extension RawFlowResponse {
    /// The responses of one `FlowBatch`, in order; each is a slice of `batch`. Fields other than
    /// `responses` are skipped (a newer agent may add some); bytes that do not parse are refused.
    public static func batch(_ batch: [UInt8]) throws(WireError) -> [RawFlowResponse] {
        var reader = WireReader(bytes: batch[...])
        var responses: [RawFlowResponse] = []
        while let (field, wireType) = try reader.nextKey() {
            guard field == 1, wireType == 2 else {
                try reader.skip(wireType)
                continue
            }
            responses.append(try RawFlowResponse(bytes: try reader.lengthDelimited()))
        }
        return responses
    }
}
