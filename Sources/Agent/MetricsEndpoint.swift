import Datapath
import FlowExport
import FlowMetrics
import Flows
import HubbleWire
import Hummingbird
import KubernetesSource
import NodeMetrics
import Observer
import PrometheusExposition

/// The agent's own health as metrics: what it watches and whether its programs work.
struct AgentHealth: Sendable {
    let datapath: Datapath
    let watcher: InterfaceWatcher
    let translation: ConntrackServiceTranslation?
    let flowLogs: FlowLogs
    /// The Kubernetes source, when it is the metadata source: its health by kind.
    var kubernetes: KubernetesMetadata?
    /// The API-server latency readings (pod-level metrics with the Kubernetes source).
    var apiServerLatency: APIServerLatency?

    func families() -> [MetricFamily] {
        let interfaces = datapath.attachedInterfaces.count
        let uplinks = watcher.uplinks.count
        return [
            MetricFamily(
                name: "osprey_agent_programs_attached",
                help:
                    "eBPF program attachments: two tc hooks per pod veth plus the drop and retransmission tracepoints.",
                kind: .gauge, samples: [.init([], Double(2 * (interfaces - uplinks) + 2))]),
            MetricFamily(
                name: "osprey_agent_interfaces_watched", help: "Interfaces the tc programs are attached to, by role.",
                kind: .gauge,
                samples: [
                    .init([("role", "uplink")], Double(uplinks)),
                    .init([("role", "pod")], Double(interfaces - uplinks)),
                ]),
            MetricFamily(
                name: "osprey_agent_namespaces_watched",
                help: "Network namespaces whose drops and sockets are counted.",
                kind: .gauge, samples: [.init([], Double(watcher.namespaces.count))]),
        ] + translationFamilies() + exportFamilies() + (kubernetes?.families() ?? [])
            + (apiServerLatency?.families() ?? [])
    }

    /// What each flow log exporter wrote and missed (absent without exporters).
    func exportFamilies() -> [MetricFamily] {
        let counts = flowLogs.exporters.map { ($0.name, $0.counts) }
        guard !counts.isEmpty else { return [] }
        func family(_ name: String, _ help: String, _ value: (FlowExporter.Counters) -> UInt64) -> MetricFamily {
            MetricFamily(
                name: name, help: help, kind: .counter,
                samples: counts.map { .init([("exporter", $0.0)], Double(value($0.1))) })
        }
        return [
            family("osprey_agent_export_lines_total", "Lines (flows and lost-event records) written to flow logs.") {
                $0.lines
            },
            family("osprey_agent_export_bytes_total", "Bytes written to flow logs.") { $0.bytes },
            family("osprey_agent_export_rotations_total", "Flow log files rotated.") { $0.rotations },
            family("osprey_agent_export_errors_total", "Lines a flow log could not take (disk full, I/O errors).") {
                $0.errors
            },
            family(
                "osprey_agent_export_lost_total",
                "Flows an exporter missed: its queue was full (the disk too slow) or the line could not be written."
            ) { $0.lost },
        ]
    }

    /// How the naming of Service backends fares (absent when it is off).
    func translationFamilies() -> [MetricFamily] {
        guard let counts = translation?.counts else { return [] }
        return [
            MetricFamily(
                name: "osprey_agent_service_translation_lookups_total",
                help: "Lookups in netfilter's connection table for flows to or from a Service address.",
                kind: .counter, samples: [.init([], Double(counts.lookups))]),
            MetricFamily(
                name: "osprey_agent_service_translation_errors_total",
                help: "Of those, lookups that failed (netlink errors; a connection not in the table is no error).",
                kind: .counter, samples: [.init([], Double(counts.failures))]),
        ]
    }
}

/// GET /metrics (Prometheus text), GET /healthz, and GET /flows?last=N (the newest flows as
/// `hubble observe -o jsonpb` lines, until the Hubble gRPC API serves them).
struct MetricsEndpoint: Sendable {
    let collector: NodeMetricsCollector
    let health: AgentHealth
    let hubble: HubbleMetrics
    let observer: Observer
    let commonLabels: [(String, String)]

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            let text = PrometheusText.render(
                collector.collect() + hubble.families() + health.families(), commonLabels: commonLabels)
            return Response(
                status: .ok, headers: [.contentType: PrometheusText.contentType],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/healthz") { _, _ -> String in "ok\n" }
        router.get("/flows") { request, _ -> Response in
            let text = request.uri.queryParameters.get("last") ?? "20"
            guard let last = Int(text), last > 0 else {
                return Response(
                    status: .badRequest,
                    body: .init(byteBuffer: ByteBuffer(string: "last must be a positive number, not '\(text)'.\n")))
            }
            let lines = observer.last(last).map { FlowJSONLines.line(FlowMessage.make($0)) }.joined(separator: "\n")
            return Response(
                status: .ok, headers: [.contentType: "application/x-ndjson"],
                body: .init(byteBuffer: ByteBuffer(string: lines.isEmpty ? "" : lines + "\n")))
        }
        return router
    }
}
