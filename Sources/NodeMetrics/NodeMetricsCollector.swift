import Datapath
import Foundation
import Netns
import PrometheusExposition

import enum Flows.DropReasons

/// A network namespace of the node whose sockets and counters are reported.
public struct NamespaceRef: Sendable, Hashable {
    /// The namespace's identity (inode of its nsfs file).
    public var inode: UInt64
    /// A path that opens it: `/proc/<pid>/ns/net` or `/run/netns/<name>`.
    public var path: String
    public var role: NamespaceRole

    public init(inode: UInt64, path: String, role: NamespaceRole) {
        self.inode = inode
        self.path = path
        self.role = role
    }
}

/// Whose names the node's forward and drop counters are exported under.
public enum MetricsFlavour: String, CaseIterable, Sendable {
    /// Retina's `networkobservability_forward_count`, `_drop_count`… (Osprey's contract).
    case retina
    /// Cilium's `cilium_forward_count_total`, `cilium_drop_count_total`….
    case cilium

    /// `retina`, `cilium` or `both`; nil for anything else.
    public static func parse(_ text: String) -> Set<MetricsFlavour>? {
        text == "both" ? Set(allCases) : MetricsFlavour(rawValue: text).map { [$0] }
    }
}

/// Builds every node-level metric of the contract (Retina names, `networkobservability_*`) at
/// scrape time: counters from the eBPF maps, sockets and SNMP counters from every namespace of
/// the node, interface statistics from the node's own namespace.
public struct NodeMetricsCollector: Sendable {
    let datapath: Datapath
    /// The node's namespaces now: its own and every pod's.
    let namespaces: @Sendable () -> [NamespaceRef]
    /// At most this many (address, port) series for tcp_connection_remote; the rest are folded.
    let remoteSeriesLimit: Int
    /// Whose names the forward and drop counters carry (`--metrics-flavour`).
    let flavours: Set<MetricsFlavour>

    public init(
        datapath: Datapath, remoteSeriesLimit: Int = 100, flavours: Set<MetricsFlavour> = [.retina],
        namespaces: @escaping @Sendable () -> [NamespaceRef]
    ) {
        self.datapath = datapath
        self.namespaces = namespaces
        self.remoteSeriesLimit = remoteSeriesLimit
        self.flavours = flavours
    }

    /// Values SNMP prints that are settings, not counters: reported from the node's namespace
    /// only instead of summed over namespaces.
    static let settings: Set<String> = ["RtoAlgorithm", "RtoMin", "RtoMax", "MaxConn", "Forwarding", "DefaultTTL"]

    /// The lower-case `statistic_name`s Retina's Clusters dashboard asks for, and the Linux
    /// counter each stands for (as `active` stands for the UDP socket count): TCP timeouts,
    /// timestamp-detected reordering, and connections reset (`EstabResets`: reset from
    /// ESTABLISHED or CLOSE-WAIT, the closest to Windows' `ResetCount`).
    static let dashboardAliases = [
        "tcptimeouts": "TCPTimeouts", "tcptsreorder": "TCPTSReorder", "resetcount": "EstabResets",
    ]

    public func collect() -> [MetricFamily] {
        let text = (try? String(contentsOfFile: "/proc/self/net/dev", encoding: .utf8)) ?? ""
        let interfaces = ProcNet.interfaces(text)
        var snapshot = datapath.snapshot()
        snapshot.forward = Self.forward(uplinks: datapath.uplinks, interfaces: interfaces)
        return datapathFamilies(snapshot) + socketFamilies(readNamespaces()) + interfaceFamilies(interfaces)
    }

    /// What crossed the uplinks, from their own counters (`rx_*` entering the node, `tx_*`
    /// leaving it): the packets and bytes a tc program on the uplink would count, without a
    /// program on the node's busiest interface. The kernel's counters run from the interface's
    /// creation, so a recreated uplink restarts from zero, which Prometheus reads as a reset.
    static func forward(uplinks: [String], interfaces: [String: [String: Double]]) -> [TrafficDirection: Counter] {
        var ingress = Counter()
        var egress = Counter()
        for name in uplinks {
            guard let stats = interfaces[name] else { continue }
            func value(_ key: String) -> UInt64 { UInt64(stats[key] ?? 0) }
            ingress.add(packets: value("rx_packets"), bytes: value("rx_bytes"))
            egress.add(packets: value("tx_packets"), bytes: value("tx_bytes"))
        }
        return [.ingress: ingress, .egress: egress]
    }

    func datapathFamilies(_ snapshot: DatapathSnapshot) -> [MetricFamily] {
        (flavours.contains(.retina) ? Self.retinaFamilies(snapshot) : [])
            + (flavours.contains(.cilium) ? Self.ciliumFamilies(snapshot) : []) + Self.otherFamilies(snapshot)
    }

    /// Cilium's agent metrics for the same counters, so dashboards built for Cilium (ACNS on
    /// Cilium) work: `cilium_forward_count_total`/`_bytes_total{direction}` and
    /// `cilium_drop_count_total`/`_bytes_total{direction,reason}`, with `INGRESS`/`EGRESS` and
    /// Cilium's reason text for the Hubble reason each kernel reason maps to ("Policy denied").
    static func ciliumFamilies(_ snapshot: DatapathSnapshot) -> [MetricFamily] {
        let directions: [TrafficDirection] = [.ingress, .egress]
        var drops: [[String]: Counter] = [:]
        for (key, counter) in snapshot.drops {
            let code = DropReasons.hubbleReason(forKernel: key.reason)
            let labels = [key.direction.label.uppercased(), DropReasons.texts[code] ?? "\(code)"]
            let sum = drops[labels] ?? Counter()
            drops[labels] = Counter(packets: sum.packets + counter.packets, bytes: sum.bytes + counter.bytes)
        }
        let sorted = drops.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        func forward(_ name: String, _ help: String, _ value: (Counter) -> UInt64) -> MetricFamily {
            MetricFamily(
                name: name, help: help, kind: .counter,
                samples: directions.map {
                    .init([("direction", $0.label.uppercased())], Double(value(snapshot.forward[$0] ?? Counter())))
                })
        }
        func drop(_ name: String, _ help: String, _ value: (Counter) -> UInt64) -> MetricFamily {
            MetricFamily(
                name: name, help: help, kind: .counter,
                samples: sorted.map {
                    .init([("direction", $0.key[0]), ("reason", $0.key[1])], Double(value($0.value)))
                })
        }
        return [
            forward("cilium_forward_count_total", "Packets forwarded through the node's uplink, by direction.") {
                $0.packets
            },
            forward("cilium_forward_bytes_total", "Bytes forwarded through the node's uplink, by direction.") {
                $0.bytes
            },
            drop("cilium_drop_count_total", "Packets dropped by the kernel, by direction and Cilium's reason.") {
                $0.packets
            },
            drop("cilium_drop_bytes_total", "Bytes dropped by the kernel, by direction and Cilium's reason.") {
                $0.bytes
            },
        ]
    }

    /// Retina's names for the forward and drop counters.
    static func retinaFamilies(_ snapshot: DatapathSnapshot) -> [MetricFamily] {
        let directions: [TrafficDirection] = [.ingress, .egress]
        let drops = snapshot.drops.sorted {
            ($0.key.reason, $0.key.direction.rawValue) < ($1.key.reason, $1.key.direction.rawValue)
        }
        return [
            MetricFamily(
                name: "networkobservability_forward_count",
                help: "Packets forwarded through the node's uplink, by direction.",
                kind: .gauge,
                samples: directions.map { .init([("direction", $0.label)], Double(snapshot.forward[$0]?.packets ?? 0)) }
            ),
            MetricFamily(
                name: "networkobservability_forward_bytes",
                help: "Bytes forwarded through the node's uplink, by direction.",
                kind: .gauge,
                samples: directions.map { .init([("direction", $0.label)], Double(snapshot.forward[$0]?.bytes ?? 0)) }),
            MetricFamily(
                name: "networkobservability_drop_count",
                help: "Packets dropped by the kernel, by drop reason and direction.",
                kind: .gauge,
                samples: drops.map {
                    .init([("direction", $0.key.direction.label), ("reason", $0.key.reason)], Double($0.value.packets))
                }),
            MetricFamily(
                name: "networkobservability_drop_bytes",
                help: "Bytes dropped by the kernel, by drop reason and direction.",
                kind: .gauge,
                samples: drops.map {
                    .init([("direction", $0.key.direction.label), ("reason", $0.key.reason)], Double($0.value.bytes))
                }),
        ]
    }

    /// The datapath's other counters: TCP flags, the connection table, program errors.
    static func otherFamilies(_ snapshot: DatapathSnapshot) -> [MetricFamily] {
        let directions: [TrafficDirection] = [.ingress, .egress]
        return [
            MetricFamily(
                name: "networkobservability_tcp_flag_counters",
                help: "TCP packets of pods by flag and direction (seen on each pod's veth, from the pod's side).",
                kind: .gauge,
                samples: TCPFlag.allCases.flatMap { flag in
                    directions.map { direction in
                        .init(
                            [("direction", direction.label), ("flag", flag.label)],
                            Double(snapshot.tcpFlags[TCPFlagKey(flag: flag, direction: direction)] ?? 0))
                    }
                }),
            MetricFamily(
                name: "osprey_agent_conntrack_size",
                help: "Connections the connection table can hold (--conntrack-max, rounded up to a power of two).",
                kind: .gauge, samples: [.init([], Double(snapshot.connections.size))]),
            MetricFamily(
                name: "osprey_agent_conntrack_evictions_total",
                help:
                    "Connections pushed out of the connection table to make room for a new one (the least recently active of its full set); one seen again is reported as new.",
                kind: .counter, samples: [.init([], Double(snapshot.connections.evicted))]),
            MetricFamily(
                name: "osprey_agent_bpf_program_runs_total",
                help:
                    "Times the kernel ran each of the agent's eBPF programs; counted only while the kernel.bpf_stats_enabled sysctl is 1.",
                kind: .counter,
                samples: snapshot.programs.keys.sorted().map {
                    .init([("program", $0)], Double(snapshot.programs[$0]?.runs ?? 0))
                }),
            MetricFamily(
                name: "osprey_agent_bpf_program_run_seconds_total",
                help:
                    "Time the kernel spent in each of the agent's eBPF programs; counted only while the kernel.bpf_stats_enabled sysctl is 1.",
                kind: .counter,
                samples: snapshot.programs.keys.sorted().map {
                    .init([("program", $0)], Double(snapshot.programs[$0]?.nanoseconds ?? 0) / 1e9)
                }),
            MetricFamily(
                name: "osprey_agent_bpf_program_errors_total",
                help: "Times an eBPF program could not do its job (traffic is never affected).", kind: .counter,
                samples: ProgramError.allCases.map {
                    .init(
                        [("program", $0.labels.program), ("error", $0.labels.error)], Double(snapshot.errors[$0] ?? 0))
                }),
        ]
    }

    /// What one namespace's /proc/net files say.
    struct NamespaceReading: Sendable {
        var role: NamespaceRole
        var tcp: [ProcNet.Socket] = []
        var udpSockets = 0
        var snmp: [String: [String: Double]] = [:]
        var netstat: [String: [String: Double]] = [:]
    }

    func readNamespaces() -> [NamespaceReading] {
        namespaces().compactMap { namespace in
            let read: @Sendable () -> NamespaceReading = {
                let base = namespace.role == .node ? "/proc/self/net" : "/proc/thread-self/net"
                func text(_ file: String) -> String {
                    (try? String(contentsOfFile: "\(base)/\(file)", encoding: .utf8)) ?? ""
                }
                var reading = NamespaceReading(role: namespace.role)
                reading.tcp = ProcNet.sockets(text("tcp")) + ProcNet.sockets(text("tcp6"))
                reading.udpSockets = ProcNet.sockets(text("udp")).count + ProcNet.sockets(text("udp6")).count
                reading.snmp = ProcNet.counters(text("snmp"))
                reading.netstat = ProcNet.counters(text("netstat"))
                return reading
            }
            // The node's namespace is the agent's own; pods' are entered on a helper thread.
            if namespace.role == .node { return read() }
            return try? NetworkNamespace.run(inNamespaceAt: namespace.path, read)
        }
    }

    func socketFamilies(_ readings: [NamespaceReading]) -> [MetricFamily] {
        var states: [String: Int] = Dictionary(uniqueKeysWithValues: ProcNet.tcpStates.values.map { ($0, 0) })
        var remotes: [String: (address: String, port: UInt16, count: Int)] = [:]
        var udpActive = 0
        var tcpStats: [String: Double] = [:]
        var ipStats: [String: Double] = [:]
        var udpStats: [String: Double] = [:]
        func accumulate(_ into: inout [String: Double], _ values: [String: Double]?, role: NamespaceRole) {
            for (name, value) in values ?? [:] {
                if Self.settings.contains(name) {
                    if role == .node { into[name] = value }
                } else {
                    into[name, default: 0] += value
                }
            }
        }
        for reading in readings {
            for socket in reading.tcp {
                states[socket.state, default: 0] += 1
                // Connections, not listeners or sockets winding down: the peers a node talks to now.
                guard socket.state == "ESTABLISHED" else { continue }
                remotes[
                    "\(socket.remoteAddress) \(socket.remotePort)",
                    default: (socket.remoteAddress, socket.remotePort, 0)
                ]
                .count += 1
            }
            udpActive += reading.udpSockets
            accumulate(&tcpStats, reading.netstat["TcpExt"], role: reading.role)
            accumulate(&tcpStats, reading.netstat["MPTcpExt"], role: reading.role)
            accumulate(&tcpStats, reading.snmp["Tcp"], role: reading.role)
            accumulate(&ipStats, reading.netstat["IpExt"], role: reading.role)
            accumulate(&ipStats, reading.snmp["Ip"], role: reading.role)
            accumulate(&udpStats, reading.snmp["Udp"], role: reading.role)
        }
        udpStats["active"] = Double(udpActive)
        for (alias, name) in Self.dashboardAliases { tcpStats[alias] = tcpStats[name] ?? 0 }
        let ranked = remotes.values.sorted { ($1.count, $0.address, $0.port) < ($0.count, $1.address, $1.port) }
        var remoteSamples = ranked.prefix(remoteSeriesLimit).map {
            MetricFamily.Sample([("address", $0.address), ("port", String($0.port))], Double($0.count))
        }
        let folded = ranked.dropFirst(remoteSeriesLimit).reduce(0) { $0 + $1.count }
        if folded > 0 { remoteSamples.append(.init([("address", "other"), ("port", "other")], Double(folded))) }
        func stats(_ values: [String: Double]) -> [MetricFamily.Sample] {
            values.sorted { $0.key < $1.key }.map { .init([("statistic_name", $0.key)], $0.value) }
        }
        return [
            MetricFamily(
                name: "networkobservability_tcp_state", help: "Current TCP sockets of the node and its pods, by state.",
                kind: .gauge,
                samples: states.sorted { $0.key < $1.key }.map { .init([("state", $0.key)], Double($0.value)) }),
            MetricFamily(
                name: "networkobservability_tcp_connection_remote",
                help: "Established TCP connections of the node and its pods, by remote address and port.", kind: .gauge,
                samples: remoteSamples),
            MetricFamily(
                name: "networkobservability_tcp_connection_stats",
                help: "TCP counters (TcpExt, MPTcpExt, Tcp) summed over the node's namespaces.", kind: .gauge,
                samples: stats(tcpStats)),
            MetricFamily(
                name: "networkobservability_ip_connection_stats",
                help: "IP counters (IpExt, Ip) summed over the node's namespaces.", kind: .gauge,
                samples: stats(ipStats)),
            MetricFamily(
                name: "networkobservability_udp_connection_stats",
                help: "UDP counters summed over the node's namespaces; active = current UDP sockets.", kind: .gauge,
                samples: stats(udpStats)),
            MetricFamily(
                name: "networkobservability_udp_active_sockets", help: "Current UDP sockets of the node and its pods.",
                kind: .gauge, samples: [.init([], Double(udpActive))]),
        ]
    }

    func interfaceFamilies(_ interfaces: [String: [String: Double]]) -> [MetricFamily] {
        [
            MetricFamily(
                name: "networkobservability_interface_stats", help: "Statistics of the node's network interfaces.",
                kind: .gauge,
                samples: interfaces.sorted { $0.key < $1.key }.flatMap { name, stats in
                    stats.sorted { $0.key < $1.key }.map {
                        .init([("interface_name", name), ("statistic_name", $0.key)], $0.value)
                    }
                })
        ]
    }
}
