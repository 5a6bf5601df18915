// `make bench` part 2: the user-space flow pipeline (decode → enrich → observer → metrics) on one
// core, from a pre-built batch of raw datapath events, in events per second, and the memory a
// full flow ring takes. Usage: osprey-bench [events] [ring capacity] [pod-level metrics: off, local,
// remote, all (remote context, every label, is_reply)]
import CDatapathABI
import ClusterInventory
import Enricher
import FlowMetrics
import FlowPipeline
import FlowTestKit
import Foundation
import Observer

@main
enum PipelineBench {
    static func main() {
        do { try run() } catch {
            FileHandle.standardError.write(Data("osprey-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run() throws {
        if CommandLine.arguments.dropFirst().first == "flood" {
            return try Flood.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "ui" {
            return try UIBench.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "verify-flowlogs" {
            return try VerifyFlowLogs.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "agents" {
            return try SimulatedAgents.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "latency" {
            return try LatencyBench.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "export" {
            return try ExportBench.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "kube-server" {
            return try KubernetesBench.serve(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "followers" {
            return try FollowersBench.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "filter" {
            return try FilterBench.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        if CommandLine.arguments.dropFirst().first == "kube-sync" {
            return try KubernetesBench.sync(Array(CommandLine.arguments.dropFirst(2)))
        }
        FlowAllocator.configure()  // as osprey-agent does
        let arguments = CommandLine.arguments.dropFirst()
        let count = Int(arguments.first ?? "") ?? 1_000_000
        let capacity = Int(arguments.dropFirst().first ?? "") ?? Observer.defaultCapacity
        let podLevelName = arguments.dropFirst(2).first ?? "off"
        let podLevel: PodLevelOptions? =
            switch podLevelName {
            case "off": nil
            case "local": PodLevelOptions()
            case "remote": PodLevelOptions(context: .remote)
            case "all":
                PodLevelOptions(
                    context: .remote, sourceLabels: PodLevelOptions.Label.allCases,
                    destinationLabels: PodLevelOptions.Label.allCases, isReply: true)
            default: throw BenchError("pod-level metrics must be off, local, remote or all, not \(podLevelName)")
            }
        // A cluster of 64 pods and a batch cycling through their connections.
        let run = try measure(metadata: cluster(), count: count, capacity: capacity, podLevel: podLevel)
        let processed = run.processed
        let stage = [run.times.decode, run.times.enrich, run.times.observe, run.times.metrics]
        let seconds = run.seconds
        let allocations = run.allocations
        let counter = run.counted ? 1 : nil
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(
            String(
                format: "| user-space pipeline (decode → enrich → observer → metrics%@), one core | %.0f events/s |",
                podLevel == nil ? "" : ", pod-level metrics: \(podLevelName)", Double(processed) / seconds))
        print(
            "| the same, nanoseconds per event by stage: decode / enrich / observer / metrics | "
                + stage.map { String(format: "%.0f", $0 / Double(processed) * 1e9) }.joined(separator: " / ") + " |")
        if counter != nil {
            print(
                String(
                    format: "| heap allocations per event in the pipeline | %.1f |",
                    Double(allocations) / Double(processed)))
        }
        print(
            String(
                format: "| pipeline process peak RSS with a full %d-flow ring | %.1f MiB |", capacity,
                Double(usage.ru_maxrss) / 1024))
    }

    /// 4,096 events of connections among the pods 10.244.1.2–65, seen on `osp0` (index 5).
    static let events: [osp_event] = (0..<4096).map { (index: Int) -> osp_event in
        let client: [UInt8] = [10, 244, 1, UInt8(2 + index % 64)]
        let server: [UInt8] = [10, 244, 1, UInt8(2 + (index / 64) % 64)]
        let flags = index % 4 == 0 ? RawEvent.syn : RawEvent.ack
        return RawEvent.packet(
            client, UInt16(30000 + index % 2000), server, 80, protocol: 6, flags: flags,
            at: UInt64(index) * 1000, ifindex: 5, bytes: 1500)
    }
    static let interfaces: InterfaceNames = [5: "osp0"]

    /// A cluster of 64 pods (10.244.1.2–65) on node-1, as the benchmark's events need.
    static func cluster() -> any MetadataSource {
        let pods = (0..<64).map { index in
            TestCluster.pod(
                "pod-\(index)", ["10.244.1.\(index + 2)"], app: "app\(index % 8)", node: "node-1",
                namespace: "ns\(index % 4)", created: Date(), uid: UUID().uuidString)
        }
        return TestCluster.metadata(cluster: "bench", pods: pods)
    }

    /// Runs `count` events of connections among the pods 10.244.1.2–65 through a pipeline
    /// whose enricher asks `metadata`.
    static func measure(
        metadata: any MetadataSource, count: Int, capacity: Int, podLevel: PodLevelOptions? = nil
    ) throws -> (
        processed: Int, seconds: Double, times: FlowPipeline.StageTimes, allocations: UInt, counted: Bool
    ) {
        let pipeline = FlowPipeline(
            nodeName: "node-1", clusterName: "bench", metadata: metadata, observer: try Observer(capacity: capacity),
            metrics: HubbleMetrics(podLevel: podLevel))
        let events = Self.events
        // With scripts/malloc-count preloaded, count heap allocations in the timed loop.
        typealias CountFunction = @convention(c) () -> UInt
        let counter = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "osp_malloc_count")
            .map { unsafeBitCast($0, to: CountFunction.self) }
        var processed = 0
        let allocationsBefore = counter?() ?? 0
        let start = Date()
        var times = FlowPipeline.StageTimes()
        events.withUnsafeBufferPointer { batch in
            while processed < count {
                pipeline.process(batch, interfaceNames: Self.interfaces, times: &times)
                processed += batch.count
            }
        }
        return (
            processed, Date().timeIntervalSince(start), times, (counter?() ?? 0) - allocationsBefore, counter != nil
        )
    }
}
