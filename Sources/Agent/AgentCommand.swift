import ArgumentParser
import ClusterInventory
import Datapath
import Enricher
import FlowExport
import FlowMetrics
import Foundation
import HubbleServer
import HubbleTransport
import HubbleWire
import Hummingbird
import KubernetesSource
import Logging
import NodeMetrics
import Observer
import ServiceLifecycle

/// `osprey-agent`: the node agent. Loads the eBPF datapath, follows the node's interfaces and
/// serves node-level metrics on /metrics and its health on /healthz.
///
/// Configuration: flags, else `OSPREY_*` environment variables, else defaults.
public struct AgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "osprey-agent",
        abstract: "Osprey's node agent: eBPF datapath, node-level network metrics on :9965.",
        version: OspreyVersion.current)

    static let environment = ProcessInfo.processInfo.environment

    @Option(
        help: "This node's name: the `instance` label of every metric. Env: OSPREY_NODE_NAME; default: the hostname.")
    var nodeName: String = environment["OSPREY_NODE_NAME"] ?? ProcessInfo.processInfo.hostName

    @Option(help: "The cluster's name: the `cluster` label of every metric. Env: OSPREY_CLUSTER.")
    var cluster: String = environment["OSPREY_CLUSTER"] ?? "default"

    @Option(help: "Where to serve /metrics and /healthz (host:port). Env: OSPREY_METRICS_ADDRESS.")
    var metricsAddress: String = environment["OSPREY_METRICS_ADDRESS"] ?? "0.0.0.0:9965"

    @Option(
        help:
            "Where to serve Hubble's gRPC API (host:port; empty: not on TCP). Env: OSPREY_HUBBLE_LISTEN_ADDRESS."
    )
    var hubbleListenAddress: String = environment["OSPREY_HUBBLE_LISTEN_ADDRESS"] ?? ":4244"

    @Option(help: "Unix socket for Hubble's gRPC API (empty: none). Env: OSPREY_HUBBLE_SOCKET_PATH.")
    var hubbleSocketPath: String = environment["OSPREY_HUBBLE_SOCKET_PATH"] ?? "/var/run/osprey/hubble.sock"

    @Option(
        help:
            "TLS certificate (PEM) for Hubble's API on TCP; with --hubble-tls-key-file turns TLS on. Env: OSPREY_HUBBLE_TLS_CERT_FILE."
    )
    var hubbleTlsCertFile: String = environment["OSPREY_HUBBLE_TLS_CERT_FILE"] ?? ""

    @Option(help: "The certificate's private key (PEM). Env: OSPREY_HUBBLE_TLS_KEY_FILE.")
    var hubbleTlsKeyFile: String = environment["OSPREY_HUBBLE_TLS_KEY_FILE"] ?? ""

    @Option(
        help:
            "CA certificates (PEM, repeatable or comma-separated) a client (the relay) must be signed by: mutual TLS. Env: OSPREY_HUBBLE_TLS_CLIENT_CA_FILES."
    )
    var hubbleTlsClientCaFiles: [String] = (environment["OSPREY_HUBBLE_TLS_CLIENT_CA_FILES"] ?? "").split(
        separator: ","
    ).map(String.init)

    @Option(
        name: .customLong("uplink"),
        help:
            "An interface towards other nodes (repeatable). Env: OSPREY_UPLINKS (comma-separated); default: the interfaces of the default routes."
    )
    var uplinks: [String] = (environment["OSPREY_UPLINKS"] ?? "").split(separator: ",").map(String.init)

    @Option(
        help:
            "Where pod and service identities come from: `kubernetes` (the API server) or `inventory` (a file, standalone). Env: OSPREY_METADATA; default: kubernetes in a pod or with a kubeconfig, else inventory."
    )
    var metadata: String = environment["OSPREY_METADATA"] ?? ""

    @Option(
        help:
            "Kubeconfig for the Kubernetes API outside a pod (its current context). Env: KUBECONFIG; in a pod: the service account."
    )
    var kubeconfig: String = environment["OSPREY_KUBECONFIG"] ?? environment["KUBECONFIG"] ?? ""

    @Option(
        help:
            "Cluster inventory file for pod and service identities (standalone mode; docs/inventory.md). Env: OSPREY_INVENTORY."
    )
    var inventory: String = environment["OSPREY_INVENTORY"] ?? ""

    @Flag(
        inversion: .prefixedNo,
        help:
            "Name the backend pod the node's NAT chose for traffic to a Service address, from netfilter's connection table. Env: OSPREY_SERVICE_TRANSLATION=false turns it off."
    )
    var serviceTranslation: Bool = environment["OSPREY_SERVICE_TRANSLATION"].map { $0 != "false" && $0 != "0" } ?? true

    @Option(
        help: """
            Which kernel drops to report: `network` (packets the network path dropped; not the buffers a \
            closing socket frees) or `all` (everything the skb:kfree_skb tracepoint sees). Env: OSPREY_DROP_REASONS.
            """)
    var dropReasons: String = environment["OSPREY_DROP_REASONS"] ?? "network"

    @Option(help: "How many recent flows to keep: 2^k-1, at most 65535. Env: OSPREY_FLOW_BUFFER_CAPACITY.")
    var flowBufferCapacity: Int = Int(environment["OSPREY_FLOW_BUFFER_CAPACITY"] ?? "") ?? Observer.defaultCapacity

    @Option(
        help:
            "Seconds between reports of an active connection's packet and byte counts. Env: OSPREY_FLOW_REPORT_INTERVAL."
    )
    var flowReportInterval: Double = Double(environment["OSPREY_FLOW_REPORT_INTERVAL"] ?? "") ?? 10

    @Option(
        help:
            "Connections the datapath's connection table holds per node (each pod veth's view is one; 100 bytes of kernel memory each), rounded up to a power of two. It is a set-associative cache, sets of 16: a new connection whose set is full evicts the set's least recently active one, counted. Env: OSPREY_CONNTRACK_MAX."
    )
    var conntrackMax: Int =
        Int(environment["OSPREY_CONNTRACK_MAX"] ?? "") ?? Datapath.Options.defaultConnectionTableSize

    @Flag(
        help: "Report every packet as a flow (debugging; costs throughput). Env: OSPREY_PER_PACKET_EVENTS=true.")
    var perPacketEvents = environment["OSPREY_PER_PACKET_EVENTS"].map { $0 == "true" || $0 == "1" } ?? false

    @Option(
        help:
            "Where traffic between two pods of this node is reported, by Cilium's monitor aggregation levels: none (where it leaves one pod and where it enters the other: from-endpoint and to-endpoint flows), or low, medium, maximum (only where it enters a pod, to-endpoint, as Cilium reports no from-* point from low up). Each connection is reported at its TCP flags and every --flow-report-interval at every level; --per-packet-events reports every packet at both. Env: OSPREY_MONITOR_AGGREGATION."
    )
    var monitorAggregation = environment["OSPREY_MONITOR_AGGREGATION"] ?? "medium"

    @Flag(
        inversion: .prefixedEnableDisable,
        help:
            "Attach the tc programs as tcx links where the kernel has them (Linux 6.6+, as Cilium's enable-tcx), else as cls_bpf filters. Env: OSPREY_ENABLE_TCX=false turns it off."
    )
    var tcx = environment["OSPREY_ENABLE_TCX"].map { $0 == "true" || $0 == "1" } ?? true

    @Option(
        help:
            "Hubble metrics `source` label for egress flows: pod, namespace, workload, app, ip, pod-name, workload-name; `|` for fallbacks. Env: OSPREY_METRICS_SOURCE_CONTEXT."
    )
    var metricsSourceContext = environment["OSPREY_METRICS_SOURCE_CONTEXT"] ?? "pod"

    @Option(
        help:
            "Hubble metrics `destination` label for ingress flows (same options). Env: OSPREY_METRICS_DESTINATION_CONTEXT."
    )
    var metricsDestinationContext = environment["OSPREY_METRICS_DESTINATION_CONTEXT"] ?? "pod"

    @Option(
        help:
            "Names of the node's forward and drop counters: retina (networkobservability_*), cilium (cilium_forward_count_total, cilium_drop_count_total…) or both. Env: OSPREY_METRICS_FLAVOUR."
    )
    var metricsFlavour = environment["OSPREY_METRICS_FLAVOUR"] ?? "retina"

    @Option(
        help:
            "Most series each Hubble metric may have; counts past it go to osprey_agent_metrics_series_overflow_total. Env: OSPREY_METRICS_SERIES_LIMIT."
    )
    var metricsSeriesLimit = Int(environment["OSPREY_METRICS_SERIES_LIMIT"] ?? "") ?? HubbleMetrics.defaultSeriesLimit

    @Flag(
        help:
            "Retina's advanced pod-level metrics (networkobservability_adv_*; Retina's enablePodLevel). Env: OSPREY_POD_LEVEL_METRICS=true."
    )
    var podLevelMetrics = environment["OSPREY_POD_LEVEL_METRICS"].map { $0 == "true" || $0 == "1" } ?? false

    @Option(
        help:
            "Pod-level labels: `local` (the pod on this node, unprefixed) or `remote` (source_* and destination_*; Retina's remoteContext). Env: OSPREY_POD_LEVEL_CONTEXT."
    )
    var podLevelContext = environment["OSPREY_POD_LEVEL_CONTEXT"] ?? "local"

    @Option(
        help:
            "Pod-level labels of a flow's source (local context: of the pod): ip, namespace, podname, workload, service, port, zone, comma-separated. Env: OSPREY_POD_LEVEL_SOURCE_LABELS."
    )
    var podLevelSourceLabels = environment["OSPREY_POD_LEVEL_SOURCE_LABELS"] ?? "ip,namespace,podname,workload"

    @Option(
        help:
            "Pod-level labels of a flow's destination (remote context; same options). Env: OSPREY_POD_LEVEL_DESTINATION_LABELS."
    )
    var podLevelDestinationLabels =
        environment["OSPREY_POD_LEVEL_DESTINATION_LABELS"] ?? "ip,namespace,podname,workload"

    @Option(
        help:
            "More pod-level labels: is_reply (forward metrics, remote context). Env: OSPREY_POD_LEVEL_ADDITIONAL_LABELS."
    )
    var podLevelAdditionalLabels = environment["OSPREY_POD_LEVEL_ADDITIONAL_LABELS"] ?? ""

    @Option(
        help:
            "Seconds after which a pod-level series nobody updated is removed (0: never; Retina's ttl). Env: OSPREY_POD_LEVEL_TTL."
    )
    var podLevelTtl = Double(environment["OSPREY_POD_LEVEL_TTL"] ?? "") ?? 0

    @Option(
        help:
            "Seconds between readings of the round-trip times of this node's connections to the Kubernetes API server (pod-level metrics). Env: OSPREY_APISERVER_LATENCY_INTERVAL."
    )
    var apiserverLatencyInterval = Double(environment["OSPREY_APISERVER_LATENCY_INTERVAL"] ?? "") ?? 10

    @Option(
        help:
            "Write flows to this file as jsonpb lines, as Hubble's exporter (hubble-export-file-path; stdout: the agent's standard output, not rotated; empty: off). Env: OSPREY_EXPORT_FILE_PATH."
    )
    var exportFilePath: String = environment["OSPREY_EXPORT_FILE_PATH"] ?? ""

    @Option(help: "Rotate the flow log when it would grow past this many MB (hubble-export-file-max-size-mb).")
    var exportFileMaxSizeMb: Int = Int(environment["OSPREY_EXPORT_FILE_MAX_SIZE_MB"] ?? "") ?? 10

    @Option(help: "Rotated flow logs to keep (hubble-export-file-max-backups; 0: all).")
    var exportFileMaxBackups: Int = Int(environment["OSPREY_EXPORT_FILE_MAX_BACKUPS"] ?? "") ?? 5

    @Flag(help: "Gzip rotated flow logs (hubble-export-file-compress).")
    var exportFileCompress = environment["OSPREY_EXPORT_FILE_COMPRESS"] == "true"

    @Option(help: "A FlowFilter in JSON a flow must pass to be written (repeatable; hubble-export-allowlist).")
    var exportAllowlist: [String] = []

    @Option(help: "A FlowFilter in JSON that keeps a flow out of the log (repeatable; hubble-export-denylist).")
    var exportDenylist: [String] = []

    @Option(help: "Flow fields to write, comma-separated (time,source.pod_name,IP; hubble-export-fieldmask).")
    var exportFieldmask: [String] = []

    @Option(
        help:
            "Write one line per group of flows alike in these fields, comma-separated, with their counts, each --export-aggregation-interval (source.pod_name,destination.pod_name,verdict; hubble-export-fieldaggregate)."
    )
    var exportFieldaggregate: [String] = []

    @Option(
        help:
            "How often aggregated flows are written: 30s, 1m (hubble-export-aggregation-interval; needed with --export-fieldaggregate)."
    )
    var exportAggregationInterval: String = ""

    @Option(
        help:
            "Hubble's flowlogs config: YAML listing flow logs by name (file, filters, field mask, end time), re-read when it changes (hubble-flowlogs-config-path). Env: OSPREY_FLOWLOGS_CONFIG_PATH."
    )
    var flowlogsConfigPath: String = environment["OSPREY_FLOWLOGS_CONFIG_PATH"] ?? ""

    @Option(
        help:
            "A YAML file of settings: flag names without dashes (metrics-flavour: both), or Retina's enablePodLevel and remoteContext; the command line wins over it, it over OSPREY_* variables. Env: OSPREY_CONFIG."
    )
    var config: String = ""

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Env: OSPREY_LOG_LEVEL.")
    var logLevel: String = environment["OSPREY_LOG_LEVEL"] ?? "info"

    public init() {}

    /// Checks every flag before anything is loaded or attached; each problem is one sentence.
    func settings() throws -> AgentSettings {
        do {
            let address = try ListenAddress(parsing: metricsAddress)
            let hubbleAddress = hubbleListenAddress.isEmpty ? nil : try ListenAddress(parsing: hubbleListenAddress)
            let hubbleTLS = try ServerTLS(
                certificateFile: hubbleTlsCertFile, keyFile: hubbleTlsKeyFile,
                clientCAFiles: hubbleTlsClientCaFiles.flatMap { $0.split(separator: ",").map(String.init) },
                flagPrefix: "hubble-tls-")
            let context = MetricsContext(
                sourceEgress: try MetricsContext.options(metricsSourceContext).get(),
                destinationIngress: try MetricsContext.options(metricsDestinationContext).get())
            let metadataSource = try metadataSource()
            guard dropReasons == "network" || dropReasons == "all" else {
                throw ValidationError("--drop-reasons must be `network` or `all`, not `\(dropReasons)`.")
            }
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw ValidationError(
                    "--log-level must be one of trace, debug, info, notice, warning, error, critical.")
            }
            guard let flavours = MetricsFlavour.parse(metricsFlavour) else {
                throw ValidationError("--metrics-flavour must be retina, cilium or both, not `\(metricsFlavour)`.")
            }
            guard metricsSeriesLimit >= 1 else {
                throw ValidationError(
                    "--metrics-series-limit must be at least 1, not \(metricsSeriesLimit) (default \(HubbleMetrics.defaultSeriesLimit))."
                )
            }
            guard (64...16_777_216).contains(conntrackMax) else {
                throw ValidationError(
                    "--conntrack-max must be between 64 and 16777216 connections, not \(conntrackMax) (default \(Datapath.Options.defaultConnectionTableSize))."
                )
            }
            guard let aggregation = MonitorAggregation(rawValue: monitorAggregation) else {
                throw ValidationError(
                    "--monitor-aggregation must be none, low, medium or maximum, not `\(monitorAggregation)`.")
            }
            guard flowReportInterval > 0, flowReportInterval <= 3600 else {
                throw ValidationError("--flow-report-interval must be between 0 and 3600 seconds.")
            }
            let podLevel = try podLevelOptions()
            guard apiserverLatencyInterval >= 0.1, apiserverLatencyInterval <= 3600 else {
                throw ValidationError("--apiserver-latency-interval must be between 0.1 and 3600 seconds.")
            }
            _ = try Observer(capacity: flowBufferCapacity)
            try Preflight.run(metricsAddress: address)
            try hubbleAddress?.checkBindable(flag: "--hubble-listen-address")
            if !hubbleSocketPath.isEmpty {
                do { try HubbleAddress(endpoint: .unix(path: hubbleSocketPath)).checkBindable() } catch {
                    throw AgentError.cannotListen(
                        address: hubbleSocketPath, reason: error.reason, flag: "--hubble-socket-path")
                }
            }
            var aggregationInterval = Duration.zero
            if !exportAggregationInterval.isEmpty, exportAggregationInterval != "0" {
                guard let interval = Durations.parse(exportAggregationInterval) else {
                    throw ValidationError(
                        "--export-aggregation-interval must be a duration such as 30s, 1m or 500ms, not `\(exportAggregationInterval)`."
                    )
                }
                aggregationInterval = interval
            }
            var exporter: FlowExporter?
            if !exportFilePath.isEmpty {
                exporter = try FlowExporter(
                    name: "static",
                    settings: ExportSettings(
                        path: exportFilePath, maxSizeMB: exportFileMaxSizeMb, maxBackups: exportFileMaxBackups,
                        compress: exportFileCompress, allowlist: exportAllowlist, denylist: exportDenylist,
                        fieldMask: exportFieldmask.flatMap { $0.split(separator: ",").map(String.init) },
                        fieldAggregate: exportFieldaggregate.flatMap { $0.split(separator: ",").map(String.init) },
                        aggregationInterval: aggregationInterval),
                    nodeName: nodeName)
            }
            return AgentSettings(
                nodeName: nodeName, cluster: cluster, metricsAddress: address, hubbleAddress: hubbleAddress,
                hubbleSocketPath: hubbleSocketPath, hubbleTLS: hubbleTLS, uplinks: uplinks, metadata: metadataSource,
                serviceTranslation: serviceTranslation,
                ignoredDrops: dropReasons == "all" ? [:] : Datapath.notNetworkDrops,
                flowBufferCapacity: flowBufferCapacity, flowReportInterval: flowReportInterval,
                perPacketEvents: perPacketEvents, monitorAggregation: aggregation, conntrackMax: conntrackMax, tcx: tcx,
                metricsContext: context,
                metricsSeriesLimit: metricsSeriesLimit, metricsFlavours: flavours, podLevel: podLevel,
                apiServerLatencyInterval: apiserverLatencyInterval, logLevel: level,
                exporter: exporter,
                flowLogsConfigPath: flowlogsConfigPath)
        } catch let error as Observer.CapacityError {
            throw ValidationError(error.description)
        } catch let error as MetricsContext.ContextError {
            throw ValidationError(error.description)
        } catch let error as TLSError {
            throw ValidationError(error.description)
        } catch let error as ExportError {
            throw ValidationError(error.description)
        } catch let error as KubernetesConfigError {
            throw ValidationError(error.description)
        } catch let error as PodLevelError {
            throw ValidationError(error.description)
        }
    }

    /// The pod-level metrics the flags ask for (nil: off); a bad option is one sentence.
    func podLevelOptions() throws -> PodLevelOptions? {
        guard let context = PodLevelOptions.Context(rawValue: podLevelContext) else {
            throw ValidationError("--pod-level-context must be `local` or `remote`, not `\(podLevelContext)`.")
        }
        guard podLevelTtl >= 0, podLevelTtl.isFinite else {
            throw ValidationError("--pod-level-ttl must be 0 (never) or a number of seconds, not \(podLevelTtl).")
        }
        let options = PodLevelOptions(
            context: context,
            sourceLabels: try PodLevelOptions.labels(podLevelSourceLabels, flag: "--pod-level-source-labels"),
            destinationLabels: try PodLevelOptions.labels(
                podLevelDestinationLabels, flag: "--pod-level-destination-labels"),
            isReply: try PodLevelOptions.isReply(podLevelAdditionalLabels, flag: "--pod-level-additional-labels"),
            ttl: podLevelTtl)
        if context == .local && options.sourceLabels.isEmpty {
            throw ValidationError(
                "--pod-level-source-labels is empty: in local context it names the pod's labels; give at least one.")
        }
        return podLevelMetrics ? options : nil
    }

    /// The metadata source the flags choose: `--metadata`, else Kubernetes in a pod or with a
    /// kubeconfig, else the inventory file (none without one).
    func metadataSource() throws -> AgentSettings.Metadata {
        let inPod = ClusterAccess.inPod()
        let mode = metadata.isEmpty ? (inPod || !kubeconfig.isEmpty ? "kubernetes" : "inventory") : metadata
        switch mode {
        case "kubernetes":
            let access =
                kubeconfig.isEmpty ? try ClusterAccess.inCluster() : try ClusterAccess.kubeconfig(path: kubeconfig)
            return .kubernetes(access)
        case "inventory":
            guard !inventory.isEmpty else { return .none }
            guard FileManager.default.isReadableFile(atPath: inventory) else {
                throw ValidationError("Inventory file \(inventory) cannot be read; check --inventory.")
            }
            return .inventory(inventory)
        default:
            throw ValidationError("--metadata must be `kubernetes` or `inventory`, not `\(metadata)`.")
        }
    }

    /// Runs the agent with the configuration file's settings (`AgentConfigFile`) before the
    /// command line's.
    public static func mainWithConfigFile() async {
        let arguments: [String]
        do {
            arguments = try AgentConfigFile.arguments(Array(CommandLine.arguments.dropFirst()))
        } catch {
            fail(error.description)
        }
        await main(arguments)
    }

    public func run() async throws {
        // A reader of its standard output that goes away (flow logs to stdout) is a failed write,
        // counted as lost lines, not a signal that ends the agent.
        signal(SIGPIPE, SIG_IGN)
        let settings: AgentSettings
        do { settings = try self.settings() } catch { Self.fail("\(error)") }
        // Nothing is attached yet; from here on the agent cleans up after itself before it fails.
        do { try await AgentRuntime(settings: settings).run() } catch { Self.fail("\(error)") }
    }

    /// Prints one sentence and exits non-zero (1).
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("osprey-agent: \(message)\n".utf8))
        Foundation.exit(1)
    }
}
