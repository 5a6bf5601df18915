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

    @Test(
        "flows older than the window still wait it out from their arrival: two nodes' history, arriving out of order, leaves sorted; marks release at once"
    )
    func windowCountsFromArrival() throws {
        var buffer = SortBuffer(capacity: 100)
        let second: Int64 = 1_000_000_000
        // A follow's history from two nodes, a minute old, the later flow first.
        #expect(buffer.push(try Self.response(6, node: "n2"), arrived: 100) == nil)
        let window = 60 * second
        #expect(buffer.popReleased(passed: .min, window: window, arrivedBefore: 100).isEmpty, "not waited yet")
        #expect(buffer.push(try Self.response(5, node: "n1"), arrived: 101) == nil)
        #expect(buffer.push(try Self.response(7, node: "n1"), arrived: 300) == nil)
        // The window has passed for the first two only.
        #expect(
            Self.times(buffer.popReleased(passed: .min, window: window, arrivedBefore: 200)) == [
                5 * second, 6 * second,
            ])
        // A flow that arrived later but is older than the one waiting goes first: nothing overtakes.
        #expect(buffer.push(try Self.response(6, 500_000_000, node: "n2"), arrived: 400) == nil)
        #expect(buffer.popReleased(passed: .min, window: window, arrivedBefore: 350).isEmpty, "6.5 s holds 7 s back")
        // Every agent's mark past a flow releases it whenever it arrived.
        #expect(
            Self.times(buffer.popReleased(passed: 7 * second, window: .min, arrivedBefore: .min)) == [6_500_000_000])
        #expect(Self.times(buffer.popReleased(passed: .min, window: window, arrivedBefore: 500)) == [7 * second])
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
