import HubbleAPI
import HubbleWire
import SwiftProtobuf
import Testing

/// The relay reads only a response's time and kind from the agent's bytes and passes the bytes
/// on: what it reads must match what swift-protobuf decodes, and broken bytes must be refused.
@Suite("The relay's reading of raw GetFlows responses")
struct RawFlowResponseTests {
    static let time = Google_Protobuf_Timestamp.with {
        $0.seconds = 1_796_000_000
        $0.nanos = 123_456_789
    }

    @Test("kind and time of flows, node status, lost events and progress marks; the bytes are kept as sent")
    func kinds() throws {
        let cases: [(Observer_GetFlowsResponse, RawFlowResponse.Kind)] = [
            (
                .with {
                    $0.flow = .with { $0.nodeName = "osp-n1" }; $0.nodeName = "osp-n1"; $0.time = Self.time
                }, .flow
            ),
            (
                .with {
                    $0.nodeStatus = .with { $0.nodeNames = ["osp-n1"] }; $0.time = Self.time
                }, .nodeStatus
            ),
            (
                .with {
                    $0.lostEvents = .with { $0.numEventsLost = 3 }; $0.time = Self.time
                }, .lostEvents
            ),
            (ProgressMark.response(node: "osp-n1", time: Self.time.date), .mark),
            (.with { $0.nodeName = "osp-n1" }, .other),
        ]
        for (message, kind) in cases {
            let bytes: [UInt8] = try message.serializedBytes()
            let raw = try RawFlowResponse(bytes: bytes)
            #expect(raw.kind == kind)
            #expect(Array(raw.bytes) == bytes)
            #expect(try raw.decoded() == message)
            #expect(raw.hasTime == message.hasTime)
            if message.hasTime { #expect(raw.time == message.time.seconds * 1_000_000_000 + Int64(message.time.nanos)) }
        }
        // Sub-microsecond times survive the Date round trip of a mark only approximately; a
        // flow's time is read to the nanosecond.
        #expect(
            try RawFlowResponse(Observer_GetFlowsResponse.with { $0.time = Self.time }).time
                == 1_796_000_000_123_456_789)
    }

    @Test("truncated or malformed bytes are refused, not misread")
    func malformed() throws {
        let bytes: [UInt8] = try Observer_GetFlowsResponse.with {
            $0.flow = .with { $0.nodeName = "osp-n1" }
            $0.time = Self.time
        }.serializedBytes()
        for cut in 1..<bytes.count {
            let prefix = Array(bytes.prefix(cut))
            // A prefix is either refused or, at a field boundary, read as what it holds.
            if let raw = try? RawFlowResponse(bytes: prefix) { #expect(Array(raw.bytes) == prefix) }
        }
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse(bytes: [0x0a, 0x05, 0x01]) }
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse(bytes: [0xff, 0xff, 0xff]) }
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse(bytes: [0x0f]) }  // wire type 7
    }

    @Test(
        "a FlowBatch written response by response is what swift-protobuf decodes, and slices back into the same bytes")
    func batches() throws {
        let responses: [Observer_GetFlowsResponse] = (0..<300).map { index in
            index % 100 == 99
                ? ProgressMark.response(node: "osp-n1", time: Self.time.date)
                : .with {
                    $0.flow = .with {
                        $0.nodeName = "osp-n1"
                        $0.uuid = "flow-\(index)-" + String(repeating: "x", count: index)  // lengths past 127
                    }
                    $0.nodeName = "osp-n1"
                    $0.time = .with {
                        $0.seconds = Self.time.seconds
                        $0.nanos = Int32(index)
                    }
                }
        }
        var encoder = FlowBatchEncoder()
        for response in responses { try encoder.append(response) }
        #expect(encoder.count == 300)
        let bytes = encoder.take()
        #expect(encoder.isEmpty && encoder.bytes.isEmpty)
        // What the proto declares: osprey.v1.FlowBatch { repeated observer.GetFlowsResponse responses = 1 }.
        #expect(try Osprey_V1_FlowBatch(serializedBytes: bytes).responses == responses)
        let raw = try RawFlowResponse.batch(bytes)
        #expect(raw.count == 300)
        for (read, sent) in zip(raw, responses) {
            #expect(Array(read.bytes) == (try sent.serializedBytes() as [UInt8]))
            #expect(read.kind == (ProgressMark.isMark(sent) ? .mark : .flow))
            #expect(try read.decoded() == sent)
        }
        // A field a newer agent might add is skipped; an empty batch holds nothing.
        #expect(try RawFlowResponse.batch([0x10, 0x01] + bytes).count == 300)
        #expect(try RawFlowResponse.batch([]).isEmpty)
    }

    @Test("a batch is full at its target size; broken batches are refused")
    func batchLimits() throws {
        var encoder = FlowBatchEncoder()
        let big = Observer_GetFlowsResponse.with {
            $0.flow = .with { $0.uuid = String(repeating: "u", count: 1000) }
            $0.time = Self.time
        }
        var appended = 0
        while !encoder.isFull {
            try encoder.append(big)
            appended += 1
        }
        #expect(encoder.bytes.count >= FlowBatchEncoder.targetSize)
        #expect(encoder.bytes.count < FlowBatchEncoder.targetSize + 1100)
        #expect(appended == encoder.count)
        let bytes = encoder.take()
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse.batch(Array(bytes.dropLast())) }
        // A response inside that is not protobuf.
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse.batch([0x0a, 0x02, 0xff, 0xff]) }
    }
}
