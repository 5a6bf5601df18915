import Flows
import HubbleAPI
import HubbleWire
import SwiftProtobuf

/// The relay's merge of many agents' streams: responses wait here, oldest first, so that what
/// leaves is in time order across nodes. It holds at most `capacity` responses; when full the
/// oldest leaves, and responses older than the drain delay leave on their own. The guarantee:
/// two responses are delivered in time order when they reach the relay while both are held,
/// that is within `capacity` responses or the drain delay of each other (as Hubble Relay).
struct SortBuffer {
    private struct Entry: Comparable {
        let time: Int64
        let sequence: UInt64
        let response: RawFlowResponse

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            lhs.time != rhs.time ? lhs.time < rhs.time : lhs.sequence < rhs.sequence
        }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.time == rhs.time && lhs.sequence == rhs.sequence }
    }

    let capacity: Int
    private var heap: MinHeap<Entry>
    private var sequence: UInt64 = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        heap = MinHeap(reservingCapacity: capacity + 1)
    }

    var count: Int { heap.count }

    /// Adds `response`; returns the oldest held response when that makes the buffer overflow.
    mutating func push(_ response: RawFlowResponse) -> RawFlowResponse? {
        sequence += 1
        heap.push(Entry(time: response.time, sequence: sequence, response: response))
        return heap.count > capacity ? popOldest() : nil
    }

    /// Removes and returns the held responses older than `cutoff` (nanoseconds since the epoch).
    mutating func popOlder(than cutoff: Int64) -> [RawFlowResponse] {
        var out: [RawFlowResponse] = []
        while let first = heap.first, first.time < cutoff, let response = popOldest() { out.append(response) }
        return out
    }

    /// Everything held, oldest first.
    mutating func drain() -> [RawFlowResponse] { popOlder(than: .max) }

    mutating func popOldest() -> RawFlowResponse? { heap.popFirst()?.response }

    static func nanoseconds(_ time: Google_Protobuf_Timestamp) -> Int64 {
        time.seconds &* 1_000_000_000 &+ Int64(time.nanos)
    }
}
