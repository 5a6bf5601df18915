// `make bench` part 2: the user-space flow pipeline (decode → enrich → observer → metrics) on one
// core, from a pre-built batch of raw datapath events, in events per second, and the memory a
// full flow ring takes. Usage: osprey-bench [events] [ring capacity]
import CDatapathABI
import ClusterInventory
import Enricher
import FlowDecoder
import FlowMetrics
import Flows
import Foundation
import Observer

@main
enum PipelineBench {
    static func main() throws {
        if CommandLine.arguments.dropFirst().first == "flood" {
            return try Flood.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        FlowAllocator.configure()  // as osprey-agent does
        let arguments = CommandLine.arguments.dropFirst()
        let count = Int(arguments.first ?? "") ?? 1_000_000
        let capacity = Int(arguments.dropFirst().first ?? "") ?? Observer.defaultCapacity
        // A cluster of 64 pods and a batch cycling through their connections.
        let pods = (0..<64).map { index in
            Pod(
                uid: UUID().uuidString, namespace: "ns\(index % 4)", name: "pod-\(index)", node: "node-1",
                ips: ["10.244.1.\(index + 2)"], labels: ["app": "app\(index % 8)"],
                workload: Workload(kind: "Deployment", name: "app\(index % 8)"), netns: nil, hostInterface: nil)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("osp-bench-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Inventory(cluster: "bench", topology: "bridge", nodes: [], pods: pods, services: []).write(to: path)
        let enricher = Enricher(metadata: InventoryMetadata(path: path), nodeName: "node-1", clusterName: "bench")
        let observer = try Observer(capacity: capacity)
        let metrics = HubbleMetrics()
        var decoder = FlowDecoder(nodeName: "node-1", kernelDropReasons: [:])
        let events: [osp_event] = (0..<4096).map { index in
            var event = osp_event()
            let a = UInt8(2 + index % 64)
            let b = UInt8(2 + (index / 64) % 64)
            withUnsafeMutableBytes(of: &event.tuple.saddr) { $0.copyBytes(from: [10, 244, 1, a]) }
            withUnsafeMutableBytes(of: &event.tuple.daddr) { $0.copyBytes(from: [10, 244, 1, b]) }
            event.tuple.family = 4
            event.tuple.protocol = 6
            event.tuple.sport = UInt16(30000 + index % 2000)
            event.tuple.dport = 80
            event.tcp_flags = index % 4 == 0 ? 0x02 : 0x10
            event.kind = UInt8(OSP_EVENT_TRACE.rawValue)
            event.observation = UInt8(OSP_OBS_FROM_ENDPOINT.rawValue)
            event.timestamp_ns = UInt64(index) * 1000
            event.ifindex = 5
            event.packets = 1
            event.bytes = 1500
            return event
        }
        // With scripts/malloc-count preloaded, count heap allocations in the timed loop.
        typealias CountFunction = @convention(c) () -> UInt
        let counter = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "osp_malloc_count")
            .map { unsafeBitCast($0, to: CountFunction.self) }
        var processed = 0
        var batch: [Flow] = []
        batch.reserveCapacity(events.count)
        let allocationsBefore = counter?() ?? 0
        let start = Date()
        // Time spent in each stage, measured per batch (4096 events), so the clock costs nothing.
        var stage = [0.0, 0, 0, 0]
        while processed < count {
            batch.removeAll(keepingCapacity: true)
            let t0 = Date()
            for event in events { batch.append(decoder.decode(event, interfaceName: "osp0")) }
            let t1 = Date()
            enricher.enrich(&batch)
            let t2 = Date()
            observer.append(batch)
            let t3 = Date()
            metrics.process(batch)
            let t4 = Date()
            for (index, (from, to)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4)].enumerated() {
                stage[index] += to.timeIntervalSince(from)
            }
            processed += events.count
        }

        let seconds = Date().timeIntervalSince(start)
        let allocations = (counter?() ?? 0) - allocationsBefore
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(
            String(
                format: "| user-space pipeline (decode → enrich → observer → metrics), one core | %.0f events/s |",
                Double(processed) / seconds))
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
}
