import GRPCCore
import HubbleWire

/// An agent's `GetFlowsResponse`, kept as its bytes.
struct RawFlowResponseDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> RawFlowResponse {
        try RawFlowResponse(bytes: serializedMessageBytes.withUnsafeBytes { Array($0) })
    }
}

/// An Osprey agent's `FlowBatch`, as its responses' bytes (slices of one copy of the message).
struct FlowBatchDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [RawFlowResponse] {
        try RawFlowResponse.batch(serializedMessageBytes.withUnsafeBytes { Array($0) })
    }
}

/// The relay's responses, sent as the agents' bytes.
struct RawFlowResponseSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: RawFlowResponse) throws -> Bytes { Bytes(message.bytes) }
}
