import Flows
import HubbleAPI
import HubbleWire
import SwiftProtobuf

/// The relay's merge of many agents' streams: responses wait here, oldest first, so that what
/// leaves is in time order across nodes. It holds at most `capacity` responses; when full the
/// oldest leaves. Otherwise a response leaves once every agent has passed its time (progress
/// marks), or once it is older than the drain delay and has waited that long here. The
/// guarantee: two responses are delivered in time order when they reach the relay while both
/// are held, that is within `capacity` responses or the drain delay of each other (as Hubble
/// Relay) — flows of the past too, such as the history a follow starts with.
struct SortBuffer {
    /// What the heap orders: plain values, so that moving one costs no reference counting.
    /// The response waits in `slots`.
    private struct Entry: Comparable {
        let time: Int64
        let sequence: UInt64
        let slot: Int
        /// When it reached the relay (monotonic nanoseconds).
        let arrived: Int64

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            lhs.time != rhs.time ? lhs.time < rhs.time : lhs.sequence < rhs.sequence
        }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.time == rhs.time && lhs.sequence == rhs.sequence }
    }

    let capacity: Int
    private var heap: MinHeap<Entry>
    private var slots: [RawFlowResponse?] = []
    private var freeSlots: [Int] = []
    private var sequence: UInt64 = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        heap = MinHeap(reservingCapacity: capacity + 1)
    }

    var count: Int { heap.count }

    /// Adds `response`, which reached the relay at `arrived` (monotonic nanoseconds); returns the
    /// oldest held response when that makes the buffer overflow.
    mutating func push(_ response: RawFlowResponse, arrived: Int64 = 0) -> RawFlowResponse? {
        sequence += 1
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = response
        } else {
            slot = slots.count
            slots.append(response)
        }
        heap.push(Entry(time: response.time, sequence: sequence, slot: slot, arrived: arrived))
        return heap.count > capacity ? popOldest() : nil
    }

    /// Removes and returns the held responses older than `cutoff` (nanoseconds since the epoch).
    mutating func popOlder(than cutoff: Int64) -> [RawFlowResponse] {
        var out: [RawFlowResponse] = []
        while let first = heap.first, first.time < cutoff, let response = popOldest() { out.append(response) }
        return out
    }

    /// Removes and returns, oldest first, the held responses that may leave: those older than
    /// `passed` (every agent has passed their time), and those older than `window` that arrived
    /// before `arrivedBefore`. Stops at the oldest that may not, so that nothing overtakes it.
    mutating func popReleased(passed: Int64, window: Int64, arrivedBefore: Int64) -> [RawFlowResponse] {
        var out: [RawFlowResponse] = []
        while let first = heap.first,
            first.time < passed || (first.time < window && first.arrived < arrivedBefore),
            let response = popOldest()
        {
            out.append(response)
        }
        return out
    }

    /// Everything held, oldest first.
    mutating func drain() -> [RawFlowResponse] { popOlder(than: .max) }

    mutating func popOldest() -> RawFlowResponse? {
        guard let entry = heap.popFirst() else { return nil }
        defer {
            slots[entry.slot] = nil
            freeSlots.append(entry.slot)
        }
        return slots[entry.slot]
    }

    static func nanoseconds(_ time: Google_Protobuf_Timestamp) -> Int64 {
        time.seconds &* 1_000_000_000 &+ Int64(time.nanos)
    }
}
