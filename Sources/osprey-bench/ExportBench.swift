import FlowExport
import FlowTestKit
import Flows
import Foundation

/// `make bench`: flow log throughput — flows written per second on one core as jsonpb lines,
/// with every field, with a field mask, and aggregated by pod pair and verdict (a line per
/// group when the bench ends), into a file under /tmp (rotating at 10 MB).
enum ExportBench {
    static func run(_ arguments: [String]) throws {
        let count = Int(arguments.first ?? "") ?? 200_000
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-export-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let flows = (0..<1000).map { index -> Flow in
            var flow = Fixtures.all[index % Fixtures.all.count]
            flow.time = Date()
            return flow
        }
        let pairs = ["source.namespace", "source.pod_name", "destination.namespace", "destination.pod_name", "verdict"]
        for (index, (label, mask, aggregate)) in [
            ("every field", [String](), [String]()),
            ("field mask time,verdict,source,destination", ["time", "verdict", "source", "destination"], []),
            ("aggregated by pod pair and verdict", [], pairs),
        ].enumerated() {
            let exporter = try FlowExporter(
                name: "bench",
                settings: ExportSettings(
                    path: directory.appendingPathComponent("flows-\(index).log").path, maxBackups: 2,
                    fieldMask: mask, fieldAggregate: aggregate, aggregationInterval: .seconds(3600)),
                nodeName: "node-1")
            let start = Date()
            var written = 0
            while written < count {
                exporter.export(flows)
                written += flows.count
            }
            let seconds = Date().timeIntervalSince(start)
            exporter.close()
            let counts = exporter.counts
            print(
                String(
                    format: "| flow log export, one core, %@ | %.0f flows/s (%.0f bytes per line) |", label,
                    Double(written) / seconds, Double(counts.bytes) / Double(max(counts.lines, 1))))
        }
    }
}
