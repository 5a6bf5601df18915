import ClusterInventory
import Datapath
import FlowExport
import FlowMetrics
import Foundation
import HubbleServer
import HubbleTransport
import KubernetesSource
import Logging
import NodeMetrics

/// What osprey-agent runs with: every flag and variable, parsed and checked (`AgentCommand.settings()`).
struct AgentSettings: Sendable {
    var nodeName: String
    var cluster: String
    var metricsAddress: ListenAddress
    var hubbleAddress: ListenAddress?
    var hubbleSocketPath: String
    var hubbleTLS: ServerTLS?
    var uplinks: [String]
    /// Where pod and service identities come from.
    var metadata: Metadata
    var serviceTranslation: Bool
    var ignoredDrops: [String: [Datapath.DropIgnoreRule]]
    var flowBufferCapacity: Int
    var flowReportInterval: Double
    var perPacketEvents: Bool
    /// Where traffic between two pods of this node is reported (`--monitor-aggregation`).
    var monitorAggregation: MonitorAggregation
    /// Entries of the datapath's connection table (`--conntrack-max`).
    var conntrackMax: Int
    /// tcx links where the kernel has them, else tc filters (`--enable-tcx`).
    var tcx: Bool
    var metricsContext: MetricsContext
    /// Most series each Hubble metric may have (`--metrics-series-limit`).
    var metricsSeriesLimit: Int
    /// Whose names the node's forward and drop counters carry (`--metrics-flavour`).
    var metricsFlavours: Set<MetricsFlavour>
    /// Retina's advanced pod-level metrics and their labels (`--pod-level-metrics`); nil: off.
    var podLevel: PodLevelOptions? = nil
    /// How often the node's connections to the API server are read for their round-trip times
    /// (pod-level metrics with the Kubernetes source).
    var apiServerLatencyInterval: Double = 10
    var logLevel: Logger.Level
    /// The static flow log exporter (`--export-file-path`), opened and checked.
    var exporter: FlowExporter?
    /// Hubble's flowlogs config (`--flowlogs-config-path`): dynamic exporters, re-read when it changes.
    var flowLogsConfigPath = ""

    /// Where the Hubble API is served: TLS guards the TCP port; the unix socket is for this
    /// node's own tools (as Cilium's).
    var hubbleListeners: [HubbleServer.Listener] {
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
        return listeners
    }

    enum Metadata: Sendable {
        /// No pod identities (standalone without metadata).
        case none
        /// The inventory file (standalone mode).
        case inventory(String)
        /// The Kubernetes API.
        case kubernetes(ClusterAccess)
    }

    /// The inventory file, when that is the metadata source.
    var inventory: String {
        if case .inventory(let path) = metadata { return path }
        return ""
    }

    /// The Hubble servers a relay should use: every node of the cluster (from the Kubernetes
    /// API or the inventory), else this agent alone.
    func peers(kubernetesNodes: [Node]? = nil) -> [PeerService.Peer] {
        let port = hubbleAddress?.port ?? 4244
        func serverName(_ node: String) -> String? {
            hubbleTLS == nil ? nil : HubbleTLSNames.agent(node: node, cluster: cluster)
        }
        var nodes = kubernetesNodes ?? []
        if kubernetesNodes == nil, !inventory.isEmpty, let data = FileManager.default.contents(atPath: inventory),
            let inventory = try? Inventory.decode(data)
        {
            nodes = inventory.nodes
        }
        if !nodes.isEmpty {
            return nodes.compactMap { node in
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
}

/// Cilium's monitor aggregation levels (`--monitor-aggregation`), as far as Osprey's datapath
/// has them: at `none` traffic between two pods of this node is reported where it leaves one
/// and where it enters the other; from `low` up only where it enters a pod, as Cilium reports
/// no `from-*` observation point from `low` up. Osprey reports a connection at its TCP flags and
/// periodically at every level (Cilium's `medium` for connections), so `low`, `medium` and
/// `maximum` report the same.
enum MonitorAggregation: String, Sendable {
    case none, low, medium, maximum

    /// Whether a connection between two pods of this node is reported only where it enters each.
    var onlyWhereItEnters: Bool { self != .none }
}
