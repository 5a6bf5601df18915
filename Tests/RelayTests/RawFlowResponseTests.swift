import HubbleAPI
import HubbleWire
import SwiftProtobuf
import Testing

@testable import Relay

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
            #expect(raw.bytes == bytes)
            #expect(try raw.decoded() == message)
            #expect(raw.hasTime == message.hasTime)
            if message.hasTime { #expect(raw.time == SortBuffer.nanoseconds(message.time)) }
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
            if let raw = try? RawFlowResponse(bytes: prefix) { #expect(raw.bytes == prefix) }
        }
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse(bytes: [0x0a, 0x05, 0x01]) }
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse(bytes: [0xff, 0xff, 0xff]) }
        #expect(throws: RawFlowResponse.WireError.self) { try RawFlowResponse(bytes: [0x0f]) }  // wire type 7
    }
}
