import HubbleAPI
import SwiftProtobuf

/// The relay's merge of many agents' streams: responses wait here, oldest first, so that what
/// leaves is in time order across nodes. It holds at most `capacity` responses; when full the
/// oldest leaves, and responses older than the drain delay leave on their own. The guarantee:
/// two responses are delivered in time order when they reach the relay while both are held,
/// that is within `capacity` responses or the drain delay of each other (as Hubble Relay).
struct SortBuffer {
    private struct Entry {
        let time: Int64
        let sequence: UInt64
        let response: RawFlowResponse

        func isBefore(_ other: Entry) -> Bool {
            time != other.time ? time < other.time : sequence < other.sequence
        }
    }

    let capacity: Int
    private var heap: [Entry] = []
    private var sequence: UInt64 = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        heap.reserveCapacity(capacity + 1)
    }

    var count: Int { heap.count }

    /// Adds `response`; returns the oldest held response when that makes the buffer overflow.
    mutating func push(_ response: RawFlowResponse) -> RawFlowResponse? {
        sequence += 1
        heap.append(Entry(time: response.time, sequence: sequence, response: response))
        siftUp(heap.count - 1)
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

    mutating func popOldest() -> RawFlowResponse? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let oldest = heap.removeLast()
        siftDown(0)
        return oldest.response
    }

    static func nanoseconds(_ time: Google_Protobuf_Timestamp) -> Int64 {
        time.seconds &* 1_000_000_000 &+ Int64(time.nanos)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].isBefore(heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < heap.count, heap[left].isBefore(heap[first]) { first = left }
            if right < heap.count, heap[right].isBefore(heap[first]) { first = right }
            if first == parent { return }
            heap.swapAt(parent, first)
            parent = first
        }
    }
}
