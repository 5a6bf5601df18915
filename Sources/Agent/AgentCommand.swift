import ArgumentParser
import ClusterInventory
import Datapath
import Enricher
import FlowMetrics
import Foundation
import HubbleServer
import HubbleTransport
import HubbleWire
import Hummingbird
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

    @Option(help: "Seconds between reports of an active connection's packet and byte counts.")
    var flowReportInterval: Double = 10

    @Flag(help: "Report every packet as a flow (debugging; costs throughput).")
    var perPacketEvents = false

    @Option(
        help:
            "Hubble metrics `source` label for egress flows: pod, namespace, workload, app, ip, pod-name, workload-name; `|` for fallbacks."
    )
    var metricsSourceContext = "pod"

    @Option(help: "Hubble metrics `destination` label for ingress flows (same options).")
    var metricsDestinationContext = "pod"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Env: OSPREY_LOG_LEVEL.")
    var logLevel: String = environment["OSPREY_LOG_LEVEL"] ?? "info"

    public init() {}

    public func run() async throws {
        FlowAllocator.configure()
        let address: ListenAddress
        let hubbleAddress: ListenAddress?
        let hubbleTLS: ServerTLS?
        let level: Logger.Level
        let observer: Observer
        let context: MetricsContext
        do {
            address = try ListenAddress(parsing: metricsAddress)
            hubbleAddress = hubbleListenAddress.isEmpty ? nil : try ListenAddress(parsing: hubbleListenAddress)
            observer = try Observer(capacity: flowBufferCapacity)
            hubbleTLS = try ServerTLS(
                certificateFile: hubbleTlsCertFile, keyFile: hubbleTlsKeyFile,
                clientCAFiles: hubbleTlsClientCaFiles.flatMap { $0.split(separator: ",").map(String.init) },
                flagPrefix: "hubble-tls-")
            context = MetricsContext(
                sourceEgress: try MetricsContext.options(metricsSourceContext).get(),
                destinationIngress: try MetricsContext.options(metricsDestinationContext).get())
            if !inventory.isEmpty, !FileManager.default.isReadableFile(atPath: inventory) {
                throw ValidationError("Inventory file \(inventory) cannot be read; check --inventory.")
            }
            guard dropReasons == "network" || dropReasons == "all" else {
                throw ValidationError("--drop-reasons must be `network` or `all`, not `\(dropReasons)`.")
            }
            guard let parsed = Logger.Level(rawValue: logLevel) else {
                throw ValidationError(
                    "--log-level must be one of trace, debug, info, notice, warning, error, critical.")
            }
            level = parsed
            try Preflight.run(metricsAddress: address)
            try hubbleAddress?.checkBindable(flag: "--hubble-listen-address")
            if !hubbleSocketPath.isEmpty {
                do { try HubbleAddress(endpoint: .unix(path: hubbleSocketPath)).checkBindable() } catch {
                    throw AgentError.cannotListen(
                        address: hubbleSocketPath, reason: error.reason, flag: "--hubble-socket-path")
                }
            }
        } catch let error as AgentError {
            Self.fail(error.description)
        } catch let error as Observer.CapacityError {
            Self.fail(error.description)
        } catch let error as MetricsContext.ContextError {
            Self.fail(error.description)
        } catch let error as TLSError {
            Self.fail(error.description)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "osprey-agent")

        let datapath: Datapath
        do { datapath = try Datapath() } catch { Self.fail(error.description) }
        // Whatever happens from here on, the tc filters must not outlive us.
        defer { datapath.detachAll() }

        let watcher = InterfaceWatcher(datapath: datapath, uplinks: uplinks, logger: logger)
        do { try watcher.start() } catch {
            datapath.detachAll()
            Self.fail("\(error)")
        }
        do {
            try datapath.configure(reportInterval: flowReportInterval, perPacket: perPacketEvents)
            try datapath.ignoreDrops(dropReasons == "all" ? [:] : Datapath.notNetworkDrops)
        } catch {
            datapath.detachAll()
            Self.fail(error.description)
        }
        var translation: ConntrackServiceTranslation?
        if serviceTranslation {
            do { translation = try ConntrackServiceTranslation() } catch {
                logger.warning(
                    "Service traffic will name the Service address, not its backend: netfilter's connection table cannot be read (\(error)); the agent needs CAP_NET_ADMIN in the node's network namespace."
                )
            }
        }
        let hubbleMetrics = HubbleMetrics(context: context, observer: observer)
        let pipeline = FlowPipeline(
            datapath: datapath, nodeName: nodeName, clusterName: cluster,
            inventory: inventory.isEmpty ? nil : InventoryMetadata(path: inventory), translation: translation,
            observer: observer, metrics: hubbleMetrics)
        pipeline.start()
        let metrics = MetricsEndpoint(
            collector: NodeMetricsCollector(datapath: datapath) { watcher.namespaces },
            health: AgentHealth(datapath: datapath, watcher: watcher, translation: translation), hubble: hubbleMetrics,
            observer: observer,
            commonLabels: [("cluster", cluster), ("instance", nodeName)])
        let app = Application(
            router: metrics.router(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            logger: logger)
        logger.info(
            "started",
            metadata: [
                "node": "\(nodeName)", "cluster": "\(cluster)", "metrics": "http://\(address)/metrics",
                "uplinks": "\(watcher.uplinks.joined(separator: ","))",
                "interfaces": "\(datapath.attachedInterfaces.count)",
            ])
        // TLS guards the TCP port; the unix socket is for this node's own tools (as Cilium's).
        var listeners: [HubbleServer.Listener] = []
        if let hubbleAddress {
            listeners.append(
                .init(
                    address: HubbleAddress(endpoint: .tcp(host: hubbleAddress.host, port: hubbleAddress.port)),
                    tls: hubbleTLS))
        }
        if !hubbleSocketPath.isEmpty {
            listeners.append(.init(address: HubbleAddress(endpoint: .unix(path: hubbleSocketPath)), tls: nil))
        }
        let hubble = HubbleServer(
            observer: observer, nodeName: nodeName, clusterName: cluster, listeners: listeners,
            peers: { [inventoryPath = inventory, nodeName, cluster, hubbleAddress, tls = hubbleTLS != nil] in
                Self.peers(
                    inventory: inventoryPath, nodeName: nodeName, cluster: cluster, port: hubbleAddress?.port ?? 4244,
                    tls: tls)
            })
        let group = ServiceGroup(
            configuration: .init(
                services: [app, watcher, HubbleService(server: hubble)], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            datapath.detachAll()
            Self.fail("stopped: \(error)")
        }
        logger.info("stopped; every tc filter detached")
    }

    /// The Hubble servers a relay should use: every node of the inventory (lab), else this
    /// agent alone.
    static func peers(
        inventory path: String, nodeName: String, cluster: String, port: Int, tls: Bool
    ) -> [PeerService.Peer] {
        func serverName(_ node: String) -> String? { tls ? HubbleTLSNames.agent(node: node, cluster: cluster) : nil }
        if !path.isEmpty, let data = FileManager.default.contents(atPath: path),
            let inventory = try? Inventory.decode(data), !inventory.nodes.isEmpty
        {
            return inventory.nodes.compactMap { node in
                node.internalIPs.first.map { ip in
                    PeerService.Peer(
                        name: node.name, address: ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)",
                        tlsServerName: serverName(node.name))
                }
            }
        }
        return [
            PeerService.Peer(
                name: nodeName, address: "\(ProcessInfo.processInfo.hostName):\(port)",
                tlsServerName: serverName(nodeName))
        ]
    }

    /// Prints one sentence and exits non-zero (1).
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("osprey-agent: \(message)\n".utf8))
        Foundation.exit(1)
    }
}
