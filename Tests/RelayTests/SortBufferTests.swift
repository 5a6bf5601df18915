import HubbleAPI
import HubbleWire
import SwiftProtobuf
import Testing

@testable import Relay

/// The relay's time-ordering buffer on its own: what leaves when, and in which order.
@Suite("The relay's sort buffer")
struct SortBufferTests {
    /// A flow response as an agent sends it: the buffer reads its time from the bytes.
    static func response(_ seconds: Int64, _ nanos: Int32 = 0, node: String = "n") throws -> RawFlowResponse {
        try RawFlowResponse(
            .with {
                $0.flow = .with { $0.nodeName = node }
                $0.time = .with {
                    $0.seconds = seconds
                    $0.nanos = nanos
                }
                $0.nodeName = node
            })
    }

    static func times(_ responses: [RawFlowResponse]) -> [Int64] { responses.map(\.time) }

    @Test("responses arriving out of order leave in time order; equal times keep their arrival order")
    func ordering() throws {
        var buffer = SortBuffer(capacity: 10)
        for (seconds, node) in [(5, "a"), (1, "b"), (3, "c"), (1, "d"), (4, "e")] {
            #expect(buffer.push(try Self.response(Int64(seconds), node: node)) == nil)
        }
        let out = buffer.drain()
        #expect(try out.map { try $0.decoded().nodeName } == ["b", "d", "c", "e", "a"])
        #expect(buffer.count == 0)
    }

    @Test("a full buffer lets the oldest go; popOlder(than:) releases only what is older than the cutoff")
    func capacityAndCutoff() throws {
        var buffer = SortBuffer(capacity: 3)
        #expect(buffer.push(try Self.response(3)) == nil)
        #expect(buffer.push(try Self.response(1)) == nil)
        #expect(buffer.push(try Self.response(2)) == nil)
        let overflow = buffer.push(try Self.response(4))
        #expect(overflow?.time == 1_000_000_000)
        #expect(buffer.count == 3)
        #expect(Self.times(buffer.popOlder(than: 3_000_000_000)) == [2_000_000_000])
        #expect(Self.times(buffer.popOlder(than: 0)).isEmpty)
        #expect(Self.times(buffer.drain()) == [3_000_000_000, 4_000_000_000])
    }

    @Test("nanoseconds count in the order, and many random times come out sorted")
    func manyTimes() throws {
        var buffer = SortBuffer(capacity: 1000)
        var generator = SystemRandomNumberGenerator()
        var pushed: [Int64] = []
        for _ in 0..<500 {
            let seconds = Int64.random(in: 0..<50, using: &generator)
            let nanos = Int32.random(in: 0..<1_000_000_000, using: &generator)
            pushed.append(seconds * 1_000_000_000 + Int64(nanos))
            _ = buffer.push(try Self.response(seconds, nanos))
        }
        #expect(Self.times(buffer.drain()) == pushed.sorted())
    }
}
