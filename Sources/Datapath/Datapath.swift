import CBPFGlue
import CDatapathABI
import CLibbpf
import DatapathBPF
import Foundation
import Synchronization

/// What an interface of the node's namespace is to Osprey.
public enum InterfaceRole: UInt32, Sendable {
    case uplink = 1  // OSP_IF_UPLINK
    case pod = 2  // OSP_IF_POD
}

/// What a network namespace is to this node.
public enum NamespaceRole: UInt32, Sendable {
    case node = 1  // OSP_NETNS_NODE
    case pod = 2  // OSP_NETNS_POD
}

/// Direction labels, indexed by enum osp_direction.
public enum TrafficDirection: Int, CaseIterable, Sendable {
    case ingress = 0, egress = 1, unknown = 2

    public var label: String {
        switch self {
        case .ingress: "ingress"
        case .egress: "egress"
        case .unknown: "unknown"
        }
    }
}

/// The eBPF datapath of one node: the tc counting programs on the uplink(s) and pod veths and
/// the `skb:kfree_skb` drop program, with their maps.
///
/// Thread-safe: attachments are tracked under a lock; map reads and updates are syscalls.
/// `detachAll()` must run before the process exits (tc filters outlive their process).
public final class Datapath: Sendable {
    /// tc programs and the maps every program shares.
    private let tc: Mutex<BPFObject?>
    private let drops: Mutex<BPFObject?>
    private let tracepointLink: Mutex<OpaquePointer?>
    private let attached = Mutex<[Int32: String]>([:])
    private let maps: Maps
    public let cpus: Int
    /// Kernel drop reason values → names without `SKB_DROP_REASON_` (from the kernel's BTF).
    public let dropReasons: [UInt32: String]

    struct Maps: Sendable {
        let ifaces: BPFMap<UInt32, UInt32>
        let netns: BPFMap<UInt32, UInt32>
        let forward: BPFMap<UInt32, osp_counter>
        let tcpFlags: BPFMap<UInt32, UInt64>
        let drops: BPFMap<osp_drop_key, osp_counter>
        let errors: BPFMap<UInt32, UInt64>
        let config: BPFMap<UInt32, osp_config>
        let dropsIgnored: BPFMap<UInt32, UInt8>
    }

    /// Which drops of a reason are no drops of the network path.
    public enum DropIgnoreRule: Sendable {
        /// Every drop with the reason.
        case always
        /// Drops of packets to a multicast group (reports nobody on the host listens to).
        case multicast
    }

    /// What the skb:kfree_skb tracepoint reports on perfectly healthy traffic that no network
    /// path dropped (found on the lab with the tracepoint's `location`; README, "Drops"):
    /// buffers a socket still held when it closed (`SOCKET_CLOSE` from unix_release_sock,
    /// `QUEUE_PURGE` from sk_stream_kill_queues) and IGMP/MLD membership reports that reach
    /// hosts not listening to the group (`NOT_SPECIFIED` from ip6_mc_input and
    /// ip_rcv_finish_core). Not reported unless the agent runs with `--drop-reasons all`.
    public static let notNetworkDrops: [String: DropIgnoreRule] = [
        "SOCKET_CLOSE": .always, "QUEUE_PURGE": .always, "NOT_SPECIFIED": .multicast,
    ]

    /// The reader of flow and drop events.
    public let events: EventReader

    /// Loads both objects and attaches the drop tracepoint. tc programs are attached per
    /// interface with `attach(interface:index:)`.
    public init() throws(DatapathError) {
        osp_libbpf_set_verbosity(ProcessInfo.processInfo.environment["OSPREY_LIBBPF_LOG"] == "debug" ? 2 : 1)
        let tcObject = try BPFObject(name: "tc_count", bytes: BPFObjects.tcCount)
        let shared = [
            "osp_ifaces", "osp_netns", "osp_drops", "osp_drops_ignored", "osp_errors", "osp_events", "osp_lost",
        ]
        var fds: [String: Int32] = [:]
        for name in shared { fds[name] = try tcObject.mapFD(name) }
        let dropObject = try BPFObject(name: "kfree_skb", bytes: BPFObjects.kfreeSkb, sharing: fds)
        maps = Maps(
            ifaces: BPFMap(name: "osp_ifaces", fd: try tcObject.mapFD("osp_ifaces")),
            netns: BPFMap(name: "osp_netns", fd: try tcObject.mapFD("osp_netns")),
            forward: BPFMap(name: "osp_forward", fd: try tcObject.mapFD("osp_forward")),
            tcpFlags: BPFMap(name: "osp_tcp_flags", fd: try tcObject.mapFD("osp_tcp_flags")),
            drops: BPFMap(name: "osp_drops", fd: try tcObject.mapFD("osp_drops")),
            errors: BPFMap(name: "osp_errors", fd: try tcObject.mapFD("osp_errors")),
            config: BPFMap(name: "osp_config_map", fd: try tcObject.mapFD("osp_config_map")),
            dropsIgnored: BPFMap(name: "osp_drops_ignored", fd: try tcObject.mapFD("osp_drops_ignored")))
        cpus = Int(osp_possible_cpus())
        events = EventReader(
            ringFD: try tcObject.mapFD("osp_events"),
            lostMap: BPFMap(name: "osp_lost", fd: try tcObject.mapFD("osp_lost")), cpus: cpus)
        dropReasons = try Self.loadDropReasons()
        let link = try dropObject.attachTracepoint("osp_kfree_skb")
        tc = Mutex(tcObject)
        drops = Mutex(dropObject)
        tracepointLink = Mutex(link)
    }

    /// Sets how often active connections are reported, and whether every packet is.
    public func configure(reportInterval: Double, perPacket: Bool) throws(DatapathError) {
        try maps.config.update(
            0, osp_config(report_interval_ns: UInt64(reportInterval * 1e9), per_packet: perPacket ? 1 : 0, pad: 0))
    }

    /// Makes the drop program skip drops of the kernel drop reasons named in `rules` (without
    /// the `SKB_DROP_REASON_` prefix; names this kernel does not have are ignored) — all of
    /// them, or those to multicast groups — and report everything else.
    public func ignoreDrops(_ rules: [String: DropIgnoreRule]) throws(DatapathError) {
        for key in maps.dropsIgnored.keys() { maps.dropsIgnored.delete(key) }
        for (value, name) in dropReasons {
            guard let rule = rules[name] else { continue }
            let bits = rule == .always ? OSP_DROP_IGNORE_ALWAYS : OSP_DROP_IGNORE_MULTICAST
            try maps.dropsIgnored.update(value, UInt8(bits.rawValue))
        }
    }

    // MARK: - Interfaces and namespaces

    /// Counts traffic of `interface` (in the calling thread's namespace): records its role,
    /// then attaches the tc programs to its ingress and egress hooks, replacing a stale Osprey
    /// filter if a killed agent left one. Returns true when it replaced such a filter.
    @discardableResult
    public func attach(interface name: String, index: Int32, role: InterfaceRole) throws(DatapathError) -> Bool {
        try maps.ifaces.update(UInt32(index), role.rawValue)
        let (ingress, egress) = try tc.withLock { object throws(DatapathError) -> (Int32, Int32) in
            guard let object else { throw .missing(what: "tc programs", object: "tc_count (closed)") }
            let prefix = role == .uplink ? "osp_tc_uplink" : "osp_tc_pod"
            return (try object.programFD("\(prefix)_ingress"), try object.programFD("\(prefix)_egress"))
        }
        var replaced = false
        for (hook, fd) in [(1, ingress), (0, egress)] {
            var existing: UInt32 = 0
            if osp_tc_query(index, Int32(hook), &existing) == 0, existing != 0 { replaced = true }
            let status = osp_tc_attach(index, Int32(hook), fd)
            guard status == 0 else {
                throw .attachTC(interface: name, hook: hook == 1 ? "ingress" : "egress", errno: -status)
            }
        }
        attached.withLock { $0[index] = name }
        return replaced
    }

    /// Stops counting an interface that went away (its filters went with it).
    public func forget(index: Int32) {
        maps.ifaces.delete(UInt32(index))
        attached.withLock { _ = $0.removeValue(forKey: index) }
    }

    /// Interfaces currently attached, by index.
    public var attachedInterfaces: [Int32: String] { attached.withLock { $0 } }

    /// Replaces the set of namespaces whose drops this node counts.
    public func setNamespaces(_ namespaces: [UInt32: NamespaceRole]) throws(DatapathError) {
        let existing = Set(maps.netns.keys())
        for (inode, role) in namespaces { try maps.netns.update(inode, role.rawValue) }
        for inode in existing.subtracting(namespaces.keys) { maps.netns.delete(inode) }
    }

    /// Removes every tc filter this process attached and the tracepoint, then unloads.
    /// Idempotent.
    public func detachAll() {
        events.stop()
        let interfaces = attached.withLock { current in
            defer { current.removeAll() }
            return current
        }
        for index in interfaces.keys {
            _ = osp_tc_detach(index, 1)
            _ = osp_tc_detach(index, 0)
        }
        tracepointLink.withLock { link in
            if let link { bpf_link__destroy(link) }
            link = nil
        }
        drops.withLock {
            $0?.close(); $0 = nil
        }
        tc.withLock {
            $0?.close(); $0 = nil
        }
    }

    // MARK: - Counters

    /// Sums of every counter map, read now.
    public func snapshot() -> DatapathSnapshot {
        var snapshot = DatapathSnapshot()
        for direction in TrafficDirection.allCases {
            let values = maps.forward.perCPU(UInt32(direction.rawValue), cpus: cpus) ?? []
            snapshot.forward[direction] = Counter(
                packets: values.reduce(0) { $0 + $1.packets }, bytes: values.reduce(0) { $0 + $1.bytes })
        }
        for flag in TCPFlag.allCases {
            for direction in TrafficDirection.allCases where direction != .unknown {
                let key = UInt32(flag.rawValue * TrafficDirection.allCases.count + direction.rawValue)
                let total = (maps.tcpFlags.perCPU(key, cpus: cpus) ?? []).reduce(0, +)
                snapshot.tcpFlags[TCPFlagKey(flag: flag, direction: direction)] = total
            }
        }
        for key in maps.drops.keys() {
            guard let values = maps.drops.perCPU(key, cpus: cpus),
                let direction = TrafficDirection(rawValue: Int(key.direction))
            else { continue }
            let reason = dropReasons[key.reason] ?? "REASON_\(key.reason)"
            snapshot.drops[DropKey(reason: reason, direction: direction), default: Counter()].add(
                packets: values.reduce(0) { $0 + $1.packets }, bytes: values.reduce(0) { $0 + $1.bytes })
        }
        for error in ProgramError.allCases {
            snapshot.errors[error] = (maps.errors.perCPU(UInt32(error.rawValue), cpus: cpus) ?? []).reduce(0, +)
        }
        return snapshot
    }

    static func loadDropReasons() throws(DatapathError) -> [UInt32: String] {
        var buffer = [CChar](repeating: 0, count: 64 * 1024)
        let count = osp_btf_enum_dump("skb_drop_reason", &buffer, buffer.count)
        guard count >= 0 else { throw .btf("enum skb_drop_reason: \(DatapathError.text(-count))") }
        let text = String(decoding: buffer.prefix(Int(count)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var reasons: [UInt32: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let value = Int64(parts[0]) else { continue }
            let name = String(parts[1])
            reasons[UInt32(truncatingIfNeeded: value)] =
                name.hasPrefix("SKB_DROP_REASON_") ? String(name.dropFirst("SKB_DROP_REASON_".count)) : name
        }
        return reasons
    }
}
