import CDatapathABI
import FlowDecoder
import FlowMetrics
import FlowPipeline
import FlowTestKit
import Foundation
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
