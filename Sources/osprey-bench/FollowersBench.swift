// `make bench`: what live followers cost the flow pipeline. The pipeline of the main benchmark,
// fed the agent's way (a batch of 64 events at a time, as the event reader hands them over),
// with N subscribers reading the observer's ring as GetFlows(follow) streams do, each counting
// what it gets and what it is told it lost. Prints, for 0 and N followers: events/s, the
// pipeline thread's CPU time per event, peak RSS, and whether every follower accounted for every
// flow (flows received + flows reported lost = flows appended).
// Usage: osprey-bench followers N [EVENTS]
import CDatapathABI
import FlowMetrics
import FlowPipeline
import Foundation
import Locking
import Observer

enum FollowersBench {
    static func run(_ arguments: [String]) throws {
        guard let followers = arguments.first.flatMap(Int.init), followers > 0 else {
            throw BenchError("usage: osprey-bench followers N [EVENTS] (e.g. 500 2000000)")
        }
        let count = arguments.dropFirst().first.flatMap(Int.init) ?? 2_000_000
        print(
            "| followers | events/s | pipeline CPU per event | flows received | flows lost (told) | accounted | peak RSS |"
        )
        print("|---|---|---|---|---|---|---|")
        for n in [0, followers] { try measure(followers: n, count: count) }
    }

    static func measure(followers: Int, count: Int) throws {
        let observer = try Observer(capacity: Observer.defaultCapacity)
        let pipeline = FlowPipeline(
            nodeName: "node-1", clusterName: "bench", metadata: PipelineBench.cluster(), observer: observer,
            metrics: HubbleMetrics())
        let totals = Totals()
        let finished = DispatchSemaphore(value: 0)
        var subscriptions: [ObserverSubscription] = []
        for _ in 0..<followers {
            let subscription = observer.subscribe()
            subscriptions.append(subscription)
            Task.detached {
                var received = 0
                var lost = 0
                for await event in subscription {
                    switch event {
                    case .flow: received += 1
                    case .lost(let record): lost += Int(record.count)
                    case .progress: break
                    }
                    if received + lost >= count { break }
                }
                totals.counts.withLock {
                    $0.received += received
                    $0.lost += lost
                    $0.done += received + lost == count ? 1 : 0
                }
                finished.signal()
            }
        }
        let batch = 64
        var processed = 0
        let cpuBefore = threadCPUSeconds()
        let start = Date()
        PipelineBench.events.withUnsafeBufferPointer { events in
            while processed < count {
                let offset = processed % events.count
                let size = min(batch, count - processed, events.count - offset)
                pipeline.process(
                    UnsafeBufferPointer(rebasing: events[offset..<offset + size]),
                    interfaceNames: PipelineBench.interfaces)
                processed += size
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let cpu = threadCPUSeconds() - cpuBefore
        var waited = 0
        for _ in 0..<followers where finished.wait(timeout: .now() + 60) == .success { waited += 1 }
        for subscription in subscriptions { subscription.cancel() }
        let result = totals.counts.withLock { $0 }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(
            String(
                format: "| %d | %.0f | %.0f ns | %d | %d | %@ | %.1f MiB |", followers, Double(processed) / seconds,
                cpu / Double(processed) * 1e9, result.received, result.lost,
                waited == followers && result.done == followers ? "yes" : "NO (\(followers - result.done) short)",
                Double(usage.ru_maxrss) / 1024))
    }

    /// What the followers counted, together.
    final class Totals: Sendable {
        let counts = Lock((received: 0, lost: 0, done: 0))
    }

    /// CPU time of the calling thread.
    static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
