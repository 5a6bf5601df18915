import FlowTestKit
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import ServiceMap

/// `osprey-bench ui [flows]`: what the web UI does per flow, on one core — adding it to the
/// service map and encoding its table row (a jsonpb line) — over a cluster of 200 workloads in 8
/// namespaces talking to each other and the world; then what a map update costs (snapshot and
/// layout of every card and edge), and the process's resident memory after it all.
enum UIBench {
    static func run(_ arguments: [String]) throws {
        let count = Int(arguments.first ?? "") ?? 200_000
        let start = Date()
        // 200 workloads × 2 pods, each calling 3 others (one in another namespace) and a world name.
        var flows: [Flow_Flow] = []
        for index in 0..<4000 {
            let client = index % 200
            let server = (client * 7 + index / 200 + 1) % 200
            var flow = Fixtures.all[index % Fixtures.all.count]
            flow.time = start.addingTimeInterval(Double(index) / 1000)
            flow.uuid = UUID()
            flow.source = Fixtures.pod("w\(client)-\(index % 2)", "ns\(client % 8)", app: "w\(client)")
            if index % 10 == 9 {
                flow.destination = Endpoint()
                flow.destinationNames = ["api\(index % 20).example.com."]
            } else {
                flow.destination = Fixtures.pod("w\(server)-0", "ns\(server % 8)", app: "w\(server)")
            }
            flows.append(FlowMessage.make(flow))
        }
        var map = ServiceMap()
        var layout = MapLayout()
        var rows = 0
        let began = Date()
        var added = 0
        while added < count {
            for flow in flows {
                map.add(flow)
                rows += FlowJSONLines.unorderedLine(Observer_GetFlowsResponse.with { $0.flow = flow }).utf8.count
            }
            added += flows.count
        }
        let seconds = Date().timeIntervalSince(began)
        let snapshotStart = Date()
        var snapshot = map.snapshot(window: 300, now: start.addingTimeInterval(10))
        layout.place(&snapshot)
        for _ in 0..<9 {
            var next = map.snapshot(window: 300, now: start.addingTimeInterval(10))
            layout.place(&next)
        }
        let snapshotSeconds = Date().timeIntervalSince(snapshotStart) / 10
        let resident =
            (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        print(
            String(
                format:
                    "| web UI, one core: map aggregation + table row per flow (goal ≥ 20,000/s) | %.0f flows/s (%.0f bytes per row) |",
                Double(added) / seconds, Double(rows) / Double(added)))
        print(
            String(
                format:
                    "| web UI map update: snapshot + layout of %d cards and %d edges | %.1f ms; resident memory after %d flows %.1f MiB |",
                snapshot.cards.count, snapshot.edges.count, snapshotSeconds * 1000, added, resident / 1024))
    }
}
