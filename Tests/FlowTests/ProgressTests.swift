import CDatapathABI
import FlowDecoder
import FlowMetrics
import FlowPipeline
import FlowTestKit
import Foundation
import Locking
import Testing

@testable import Observer

/// Progress marks inside the agent: after each poll of the kernel's ring the observer learns how
/// far the node's clock has got, after every flow stamped before it — unanswered DNS queries
/// included — and only subscribers that asked hear of it.
@Suite("Progress marks in the agent")
struct ProgressTests {
    @Test("after each poll: overdue DNS queries become flows, then the observer's progress moves to the poll's time")
    func pollMovesProgress() async throws {
        let observer = try Observer(capacity: 4095)
        let pipeline = FlowPipeline(
            nodeName: "osp-node-1", clusterName: "osp", metadata: nil, observer: observer, metrics: HubbleMetrics())
        let watching = observer.subscribe(progress: true)
        let query = FlowDecodingTests.dns(id: 7, response: false, name: "ledger.billing.svc.cluster.local", qtype: 1)
        let sent: UInt64 = 10_000_000_000
        let events = [
            RawEvent.packet(
                FlowDecodingTests.client, 53001, [192, 0, 2, 53], 53, protocol: 17, at: sent, payload: query)
        ]
        events.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: sent + 1_000_000_000) }
        #expect(observer.history().count == 1, "the query")
        let decoder = FlowDecoder(nodeName: "osp-node-1", kernelDropReasons: [:])
        let first = observer.progress
        #expect(abs(first.timeIntervalSince(decoder.wallTime(monotonicNs: sent + 998_000_000))) < 0.01)

        // A poll past the query's deadline (5 s): the unanswered query, stamped at its deadline,
        // comes before the mark that passes it.
        let empty: [osp_event] = []
        empty.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: sent + 6_000_000_000) }
        let history = observer.history()
        #expect(history.count == 2)
        #expect(history.last?.dns?.unanswered == true)
        #expect(history.last.map { $0.time < observer.progress } == true)

        // An earlier time does not move progress back.
        empty.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: sent) }
        #expect(observer.progress > first)

        // The subscriber got: the query, a mark, the unanswered query, a mark — in that order.
        var kinds: [String] = []
        var iterator = watching.makeAsyncIterator()
        for _ in 0..<4 {
            switch await iterator.next() {
            case .flow(let flow)?: kinds.append(flow.dns?.unanswered == true ? "unanswered" : "query")
            case .progress?: kinds.append("mark")
            default: kinds.append("other")
            }
        }
        #expect(kinds == ["query", "mark", "unanswered", "mark"])
        #expect(observer.subscribe().subscriber.progress == false, "marks only for those that ask")
    }
}

/// A step of the node's wall clock (NTP setting it, a VM resumed, `date -s`): flow times are
/// the monotonic stamps plus the wall clock's offset, so the offset must follow the step.
@Suite("Flow times follow the node's wall clock")
struct ClockStepTests {
    /// The wall clock's reading when CLOCK_MONOTONIC reads 0, in seconds since the epoch.
    static let base = 1_800_000_000.0

    @Test("after a step forward or back, the next poll's flows and mark carry the clock as it is now")
    func stepsAreFollowed() async throws {
        let observer = try Observer(capacity: 4095)
        let offset = Lock(Self.base)
        let steps = Lock<[Double]>([])
        let pipeline = FlowPipeline(
            nodeName: "osp-node-1", clusterName: "osp", metadata: nil, observer: observer, metrics: HubbleMetrics(),
            clocks: { FlowDecoder.ClockReading(wall: offset.withLock { $0 } + 50, monotonicNs: 50_000_000_000) },
            clockStepped: { step in steps.withLock { $0.append(step) } })
        let watching = observer.subscribe(progress: true)
        /// One poll at `second` (monotonic) with a SYN stamped 0.1 s before it; the SYN's time.
        func poll(at second: UInt64, port: UInt16) -> Date? {
            let ns = second * 1_000_000_000
            let events = [
                RawEvent.packet(
                    FlowDecodingTests.client, port, FlowDecodingTests.server, 80, protocol: 6, flags: RawEvent.syn,
                    at: ns - 100_000_000)
            ]
            events.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: ns) }
            return observer.history().last?.time
        }
        func seconds(_ date: Date?) -> Double { (date?.timeIntervalSince1970 ?? 0) - Self.base }

        #expect(abs(seconds(poll(at: 10, port: 40001)) - 9.9) < 1e-4)
        let before = observer.progress
        #expect(abs(seconds(before) - 9.998) < 1e-4, "the mark: the poll less the 2 ms margin")

        // Jitter of a reading is no step.
        offset.withLock { $0 += 0.0004 }
        #expect(abs(seconds(poll(at: 11, port: 40002)) - 10.9) < 1e-4)
        #expect(steps.withLock { $0 }.isEmpty)

        // Set forward by 30 s: the next poll's flow and mark are 30 s later.
        offset.withLock { $0 = Self.base + 30 }
        #expect(abs(seconds(poll(at: 12, port: 40003)) - 41.9) < 1e-4)
        #expect(abs(seconds(observer.progress) - 41.998) < 1e-4)

        // Set back by 60 s: the flow is 60 s earlier, and so is the mark, against the rule that
        // marks only move forward.
        offset.withLock { $0 = Self.base - 30 }
        #expect(abs(seconds(poll(at: 13, port: 40004)) - -17.1) < 1e-4)
        #expect(abs(seconds(observer.progress) - -17.002) < 1e-4)
        let logged = steps.withLock { $0 }
        #expect(logged.count == 2 && abs(logged[0] - 30) < 1e-3 && abs(logged[1] - -60) < 1e-3, "\(logged)")

        // Without a step, an earlier mark still moves nothing back.
        let empty: [osp_event] = []
        empty.withUnsafeBufferPointer { pipeline.process($0, interfaceNames: [:], drainedAt: 12_000_000_000) }
        #expect(abs(seconds(observer.progress) - -17.002) < 1e-4)

        // The subscriber got every flow and mark in order, the last mark the earlier one.
        var seen: [String] = []
        var iterator = watching.makeAsyncIterator()
        for _ in 0..<8 {
            switch await iterator.next() {
            case .flow(let flow)?: seen.append(String(format: "flow %.1f", seconds(flow.time)))
            case .progress(let time)?: seen.append(String(format: "mark %.3f", seconds(time)))
            default: seen.append("other")
            }
        }
        #expect(
            seen == [
                "flow 9.9", "mark 9.998", "flow 10.9", "mark 10.998", "flow 41.9", "mark 41.998", "flow -17.1",
                "mark -17.002",
            ])
    }

    @Test(
        "the system's clocks: a reading's offset matches Date() against CLOCK_MONOTONIC, and one moment later it is no step"
    )
    func systemClocks() {
        let reading = FlowDecoder.readClocks()
        let monotonic = Double(FlowDecoder.monotonicNow()) / 1e9
        #expect(abs(reading.offset - (Date().timeIntervalSince1970 - monotonic)) < 0.05)
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:], clocks: reading)
        var stepped = 0
        for _ in 0..<100 where decoder.followWallClock() != nil { stepped += 1 }
        #expect(stepped <= 1, "readings a moment apart agree within \(FlowDecoder.clockStepTolerance) s")
    }
}
