// `make bench`: what a filtered follower costs the agent per flow. The main benchmark's flows
// (decoded and enriched by the pipeline) go through a GetFlows filter as `hubble observe
// --namespace NS` sends it (source pod `NS/` or destination pod `NS/`): every flow made into its
// Hubble message and matched (what each follower did before), against the quick check on the
// pipeline's own flow first (`FlowFilterSet.mayMatch`), measured in one run on one core.
// Usage: osprey-bench filter [FLOWS]
import FlowFilters
import FlowMetrics
import FlowPipeline
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import Observer

enum FilterBench {
    static func run(_ arguments: [String]) throws {
        let count = arguments.first.flatMap(Int.init) ?? 1_000_000
        let flows = try pipelineFlows()
        print("| filter | flows passing | message, then match | quick check first | ratio |")
        print("|---|---|---|---|---|")
        for namespace in ["ns0", "kube-system"] {
            let filters = try FlowFilterSet(
                allow: [.with { $0.sourcePod = ["\(namespace)/"] }, .with { $0.destinationPod = ["\(namespace)/"] }],
                deny: [])
            let before = measure(count, flows) { filters.matches(FlowMessage.make($0)) }
            let after = measure(count, flows) { filters.message(for: $0) != nil }
            guard before.passed == after.passed else {
                throw BenchError("the quick check changed what passes: \(before.passed) before, \(after.passed) after")
            }
            print(
                String(
                    format: "| --namespace %@ | %.1f %% | %.0f ns/flow | %.0f ns/flow | %.2f |", namespace,
                    Double(before.passed) / Double(count) * 100, before.nanoseconds, after.nanoseconds,
                    after.nanoseconds / before.nanoseconds))
        }
    }

    /// The pipeline's flows for the benchmark's events: a ring's worth, as an agent's follower
    /// meets them.
    static func pipelineFlows() throws -> [Flow] {
        let observer = try Observer(capacity: Observer.defaultCapacity)
        let pipeline = FlowPipeline(
            nodeName: "node-1", clusterName: "bench", metadata: PipelineBench.cluster(), observer: observer,
            metrics: HubbleMetrics())
        PipelineBench.events.withUnsafeBufferPointer { events in
            pipeline.process(
                UnsafeBufferPointer(rebasing: events.prefix(Observer.defaultCapacity)),
                interfaceNames: PipelineBench.interfaces)
        }
        return observer.last(Observer.defaultCapacity)
    }

    /// Time per flow of `passes` over `count` flows, and how many passed.
    static func measure(_ count: Int, _ flows: [Flow], _ passes: (Flow) -> Bool) -> (nanoseconds: Double, passed: Int) {
        var passed = 0
        let start = DispatchTime.now().uptimeNanoseconds
        for index in 0..<count where passes(flows[index % flows.count]) { passed += 1 }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        return (Double(elapsed) / Double(count), passed)
    }
}
