import Datapath
import Enricher
import FlowExport
import FlowMetrics
import FlowPipeline
import Foundation
import HubbleObserver
import HubbleServer
import Hummingbird
import KubernetesSource
import Logging
import NodeMetrics
import Observer
import ServiceLifecycle

/// osprey-agent from validated settings to a stop: loads the datapath, wires the stages, and
/// runs everything that runs as Services of one ServiceGroup until SIGTERM/SIGINT. Errors are
/// thrown, never exited on, so the datapath is always detached on the way out.
struct AgentRuntime {
    let settings: AgentSettings

    func run() async throws {
        FlowAllocator.configure()
        LoggingSystem.bootstrap { [level = settings.logLevel] label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "osprey-agent")
        let datapath = try Datapath(
            options: .init(
                reportInterval: settings.flowReportInterval, perPacket: settings.perPacketEvents,
                ignoredDrops: settings.ignoredDrops, connectionTableSize: settings.conntrackMax, tcx: settings.tcx,
                localAggregation: settings.monitorAggregation.onlyWhereItEnters))
        // Whatever happens from here on, the tc programs must not outlive us.
        defer {
            datapath.detachAll()
            logger.info("stopped; every tc program detached")
        }
        switch datapath.attachMode {
        case .tcx: logger.info("tc programs attach as tcx links, first on each hook")
        case .tc where settings.tcx:
            logger.notice("this kernel has no tcx (Linux 6.6+): tc programs attach as cls_bpf filters")
        case .tc: logger.info("tc programs attach as cls_bpf filters (--disable-tcx)")
        }
        if datapath.listFree == nil, settings.ignoredDrops["NOT_SPECIFIED"]?.contains(.listMember) == true {
            logger.notice(
                "\(Datapath.listFreeFunction) is not in /proc/kallsyms: the datagrams of a GRO list freed behind its first will count as NOT_SPECIFIED drops"
            )
        }
        if !datapath.dropReceivingSocket, settings.ignoredDrops["NOT_SPECIFIED"]?.contains(.timeWait) == true {
            logger.notice(
                "the kernel's kfree_skb tracepoint does not name the receiving socket (Linux 6.12+): segments TCP answers at a socket in TIME-WAIT, except on loopback, and SYNs sent again or RSTs at a connection still opening will count as NOT_SPECIFIED drops"
            )
        }
        let watcher = InterfaceWatcher(datapath: datapath, uplinks: settings.uplinks, logger: logger)
        try watcher.start()

        var translation: ConntrackServiceTranslation?
        if settings.serviceTranslation {
            do { translation = try ConntrackServiceTranslation() } catch {
                logger.warning(
                    "Service traffic will name the Service address, not its backend: netfilter's connection table cannot be read (\(error)); the agent needs CAP_NET_ADMIN in the node's network namespace."
                )
            }
        }
        var kubernetes: KubernetesMetadata?
        let metadata: (any MetadataSource)?
        switch settings.metadata {
        case .none: metadata = nil
        case .inventory(let path):
            metadata = InventoryMetadata(path: path) { [logger] problem in
                if let problem {
                    logger.warning("\(problem)")
                } else {
                    logger.notice("Inventory file \(path) read again; identities follow it.")
                }
            }
        case .kubernetes(let access):
            let source = try KubernetesMetadata(access: access, cluster: settings.cluster, logger: logger)
            kubernetes = source
            metadata = source
        }
        let observer = try Observer(capacity: settings.flowBufferCapacity)
        let flowLogs = FlowLogs(observer: observer, nodeName: settings.nodeName, logger: logger)
        if let exporter = settings.exporter { flowLogs.start(exporter) }
        let pipeline = FlowPipeline(
            nodeName: settings.nodeName, clusterName: settings.cluster, kernelDropReasons: datapath.dropReasons,
            metadata: metadata,
            translation: translation, observer: observer,
            metrics: HubbleMetrics(
                context: settings.metricsContext, lostEvents: [observer, flowLogs],
                seriesLimit: settings.metricsSeriesLimit, podLevel: settings.podLevel,
                zones: { [metadata] in metadata?.nodeZones() ?? [:] }),
            clockStepped: { [logger] step in
                logger.notice(
                    "The wall clock was \(step < 0 ? "set back" : "set forward") by \(String(format: "%.3f", abs(step))) s (NTP, a resumed VM or a manual set); flow times follow it from now on."
                )
            }, kernelLocation: { Datapath.kernelLocation(of: $0) })
        // Retina's API-server latency: with pod-level metrics, to the API server the agent uses.
        var apiServerLatency: APIServerLatency?
        if settings.podLevel != nil, case .kubernetes(let access) = settings.metadata {
            apiServerLatency = try APIServerLatency(server: access.server, interval: settings.apiServerLatencyInterval)
        }
        let metrics = MetricsEndpoint(
            collector: NodeMetricsCollector(datapath: datapath, flavours: settings.metricsFlavours) {
                watcher.namespaces
            },
            health: AgentHealth(
                datapath: datapath, watcher: watcher, translation: translation, flowLogs: flowLogs,
                kubernetes: kubernetes, apiServerLatency: apiServerLatency),
            hubble: pipeline.metrics, observer: observer,
            commonLabels: [("cluster", settings.cluster), ("instance", settings.nodeName)])
        let address = settings.metricsAddress
        let http = Application(
            router: metrics.router(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            logger: logger)
        let hubble = HubbleServer.agent(
            observer: observer, nodeName: settings.nodeName, clusterName: settings.cluster,
            listeners: settings.hubbleListeners,
            peers: { [settings, kubernetes] in settings.peers(kubernetesNodes: kubernetes?.nodes) })
        logger.info(
            "started",
            metadata: [
                "node": "\(settings.nodeName)", "cluster": "\(settings.cluster)",
                "metrics": "http://\(address)/metrics", "uplinks": "\(watcher.uplinks.joined(separator: ","))",
                "interfaces": "\(datapath.attachedInterfaces.count)",
                "monitor-aggregation": "\(settings.monitorAggregation.rawValue)",
            ])
        var metadataReady: (@Sendable () -> Bool)?
        if let kubernetes { metadataReady = { kubernetes.hasSynced } }
        // Graceful shutdown runs in reverse order, each service once the one after it has
        // ended: the servers stop first, then the event reader, whose last drain hands on what
        // the ring held, and the flow logs last, writing those flows too.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    FlowLogsService(
                        flowLogs: flowLogs,
                        watcher: settings.flowLogsConfigPath.isEmpty
                            ? nil
                            : FlowLogsConfigWatcher(
                                path: settings.flowLogsConfigPath, flowLogs: flowLogs, logger: logger)),
                    EventReaderService(
                        datapath: datapath, interfaces: watcher, pipeline: pipeline, metadataReady: metadataReady,
                        logger: logger),
                    HousekeepingService(datapath: datapath, pipeline: pipeline, logger: logger), watcher, http,
                    KubernetesService(source: kubernetes), APIServerLatencyService(latency: apiServerLatency),
                    HubbleService(server: hubble),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The datapath's event reader as a Service: its thread feeds the pipeline batch by batch until
/// the agent stops, and its last drain has been handed on when the service returns.
struct EventReaderService: Service {
    let datapath: Datapath
    /// Names the events' interfaces.
    let interfaces: InterfaceWatcher
    let pipeline: FlowPipeline
    /// Whether the metadata source has its first lists (the Kubernetes source); nil: nothing
    /// to wait for (an inventory file is read before the agent starts).
    var metadataReady: (@Sendable () -> Bool)?
    let logger: Logger

    /// At most this long the first flows wait for the metadata source; the datapath's events
    /// wait in its ring meanwhile (what does not fit is counted as lost).
    static let metadataWait: Duration = .seconds(5)

    func run() async throws {
        // Flows named from the first one: a node or pod address enriched before the source
        // knows it would be `world`.
        if let metadataReady {
            let deadline = ContinuousClock.now + Self.metadataWait
            while !metadataReady(), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if !metadataReady() {
                logger.warning(
                    "The Kubernetes API has not answered the first lists in \(Self.metadataWait.components.seconds) s: flows are reported by address, without pod names, until it does (it is retried)."
                )
            }
        }
        // Idle, the reader polls as often as a follow stream gets a progress mark: no more.
        datapath.events.start(idleInterval: ObserverService.markInterval) { [interfaces, pipeline] events, drainedAt in
            pipeline.process(events, interfaceNames: interfaces.interfaceNames, drainedAt: drainedAt)
        }
        defer {
            datapath.events.stop()
            // Flows held for a translation the last poll did not bring go on as they are.
            pipeline.releaseHeld()
        }
        try? await gracefulShutdown()
    }
}

/// The Kubernetes source as a Service: lists and watches until the agent stops (nothing to do
/// with another metadata source).
struct KubernetesService: Service {
    let source: KubernetesMetadata?

    func run() async throws {
        guard let source else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown { await source.run() }
    }
}

/// The API-server latency readings as a Service (nothing to do without pod-level metrics or
/// the Kubernetes source).
struct APIServerLatencyService: Service {
    let latency: APIServerLatency?

    func run() async throws {
        if let latency {
            await cancelWhenGracefulShutdown { await latency.run() }
        } else {
            try? await gracefulShutdown()
        }
    }
}

/// The flow logs as a Service: it follows the flowlogs config (when one is given) until the
/// agent stops. Shut down last, after the event reader has ended, every exporter then writes
/// what it has queued, the reader's last flows included, and closes its file.
struct FlowLogsService: Service {
    let flowLogs: FlowLogs
    let watcher: FlowLogsConfigWatcher?

    func run() async throws {
        if let watcher {
            await cancelWhenGracefulShutdown { await watcher.run() }
        } else {
            try? await gracefulShutdown()
        }
        await flowLogs.stopAll()
    }
}

/// Once a second, away from the event reader's thread: silent connections' last packets are
/// reported (`Datapath.flushIdle`), the kernel's lost events are counted, metadata is refreshed
/// and deleted pods' series expire.
struct HousekeepingService: Service {
    let datapath: Datapath
    let pipeline: FlowPipeline
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var flushFailed = false
            while !Task.isCancelled {
                do { try datapath.flushIdle() } catch {
                    if !flushFailed {
                        logger.error(
                            "Silent connections' last packets cannot be reported: \(error). Their counts wait for the connections' next packets."
                        )
                    }
                    flushFailed = true
                }
                pipeline.noteLost(.perfEventRingBuffer, total: datapath.events.kernelLost)
                pipeline.tick()
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
