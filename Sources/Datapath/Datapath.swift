import CBPFGlue
import CDatapathABI
import CLibbpf
import DatapathBPF
import Foundation
import Locking

/// What an interface of the node's namespace is to Osprey.
public enum InterfaceRole: UInt32, Sendable, CaseIterable {
    case uplink = 1  // OSP_IF_UPLINK
    case pod = 2  // OSP_IF_POD
}

/// What a network namespace is to this node.
public enum NamespaceRole: UInt32, Sendable, CaseIterable {
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

/// How the tc programs hang on an interface's hooks.
public enum TCAttachMode: String, Sendable {
    /// tcx links (Linux 6.6+): the kernel runs the program straight from the hook, first in line,
    /// and it stays attached while the agent holds the link — a killed agent leaves nothing.
    case tcx
    /// cls_bpf filters on a clsact qdisc at Osprey's fixed handle and priority: they outlive the
    /// process, so a restarted agent replaces a killed one's filters in place.
    case tc
}

/// The eBPF datapath of one node: the tc programs on the pod veths (`pod.c`), the
/// `skb:kfree_skb` drop program (`drops.c`), the `tcp:tcp_retransmit_skb` program
/// (`retransmits.c`) and the flush of silent connections (`flush.c`, run by `flushIdle()`),
/// sharing one set of maps. The two tracepoint programs attach as BTF
/// tracepoints: no tracefs needed, and the kernel hands them its arguments as they are. The
/// uplink(s) carry no program: what crosses them is in their own interface counters, and the
/// drop program only needs to know which they are.
///
/// Thread-safe: attachments are tracked under a lock; map reads and updates are syscalls.
/// `detachAll()` must run before the process exits (tc filters outlive their process; tcx links
/// do not).
public final class Datapath: Sendable {
    /// The loaded objects: `pod` owns the maps, the others share them.
    private let objects: Lock<Objects?>
    /// The tracepoint programs' links (drops, retransmissions).
    private let tracepointLinks: Lock<[OpaquePointer]>
    /// What is watched, by interface index: its name and role, and the tcx links holding its programs.
    private let attached = Lock(Attachments())
    /// tcx links when the kernel has them and `Options.tcx` asks for them, else tc filters.
    public let attachMode: TCAttachMode
    /// The kernel text of `listFreeFunction`, from /proc/kallsyms; nil when not found, and then
    /// a GRO list's datagrams freed behind their head count as `NOT_SPECIFIED` drops.
    public let listFree: Range<UInt64>?
    /// Whether the kernel's kfree_skb tracepoint names the receiving socket (Linux 6.12 and
    /// later), which the `timeWait` and `opening` rules need.
    public let dropReceivingSocket: Bool
    private let maps: Maps
    /// Entries of the connection table, its young and old parts together:
    /// `Options.connectionTableSize` rounded up to whole sets (see `connectionTableSets`), and
    /// the young sets in front of them (`youngSets`).
    public let connectionTableSize: Int
    /// Sets of the old connection table, and the first one the next flush walks.
    private let oldSets: Int
    private let flushCursor = Lock(0)
    public let cpus: Int
    /// `Options.localAggregation`: the node's pod addresses are wanted (`setLocalPods`).
    public let localAggregation: Bool
    /// Kernel drop reason values → names without `SKB_DROP_REASON_` (from the kernel's BTF).
    public let dropReasons: [UInt32: String]

    struct Attachment {
        var name: String
        var role: InterfaceRole
        /// The ingress and egress links' fds (tcx); empty for tc filters and uplinks.
        var links: [Int32]

        func closeLinks() { for link in links { close(link) } }
    }

    /// The attachments by interface index, with their names kept ready: the event reader asks
    /// for the names with every batch, a hundred times a second.
    struct Attachments {
        private(set) var byIndex: [Int32: Attachment] = [:]
        private(set) var names: [Int32: String] = [:]

        mutating func set(_ index: Int32, _ attachment: Attachment) {
            byIndex[index] = attachment
            names[index] = attachment.name
        }

        mutating func remove(_ index: Int32) -> Attachment? {
            names[index] = nil
            return byIndex.removeValue(forKey: index)
        }

        mutating func removeAll() -> [Int32: Attachment] {
            defer { self = Attachments() }
            return byIndex
        }
    }

    struct Objects {
        var pod: BPFObject
        var drops: BPFObject
        var retransmits: BPFObject
        var flush: BPFObject

        func close() {
            flush.close()
            retransmits.close()
            drops.close()
            pod.close()
        }
    }

    /// Every map and program name Swift uses, as the C declares them (`DatapathABITests` fails
    /// when the two drift apart).
    enum MapName: String, CaseIterable {
        case ifaces = "osp_ifaces", netns = "osp_netns", tcpFlags = "osp_tcp_flags"
        case drops = "osp_drops", errors = "osp_errors", conntrack = "osp_conntrack", events = "osp_events"
        case lost = "osp_lost", ctStats = "osp_ct_stats", ctScratch = "osp_ct_scratch", ctYoung = "osp_ct_young"
        case reader = "osp_reader", fragments = "osp_fragments", localPods = "osp_local_pods"
    }

    enum ProgramName: String, CaseIterable {
        /// The programs at a pod veth's two hooks, and the one both pass each packet on to.
        case podIngress = "osp_tc_pod_ingress", podEgress = "osp_tc_pod_egress", pod = "osp_tc_pod"
        case drops = "osp_kfree_skb"
        case retransmits = "osp_tcp_retransmit_skb"
        case flush = "osp_flush_idle"
    }

    /// The section holding `struct osp_config` in the objects that read it.
    static let configSection = ".rodata.config"

    /// The compiled objects by name, as the BPFCompiler plugin embedded them.
    static let images: [(name: String, bytes: [UInt8])] = [
        ("pod", BPFObjects.pod), ("drops", BPFObjects.drops),
        ("retransmits", BPFObjects.retransmits), ("flush", BPFObjects.flush),
    ]

    struct Maps: Sendable {
        let ifaces: BPFMap<UInt32, UInt32>
        let netns: BPFMap<UInt32, UInt32>
        let tcpFlags: BPFMap<UInt32, osp_tcp_flag_counts>
        let drops: BPFMap<osp_drop_key, osp_counter>
        let errors: BPFMap<UInt32, UInt64>
        let ctStats: BPFMap<UInt32, UInt64>
        /// The young connection table's sets; the tests occupy one to make a new connection
        /// lose the race for a way.
        let ctYoung: BPFMap<UInt32, osp_ct_set>
        /// This node's pod addresses (`Options.localAggregation`).
        let localPods: BPFMap<osp_pod_address, UInt8>
    }

    /// What is fixed when the programs are loaded (`struct osp_config`).
    public struct Options: Sendable {
        /// Seconds between reports of an active connection's packet and byte counts.
        public var reportInterval: Double
        /// Report every packet (debugging).
        public var perPacket: Bool
        /// Kernel drop reasons (names without `SKB_DROP_REASON_`) whose drops are not reported.
        public var ignoredDrops: [String: [DropIgnoreRule]]
        /// Connections the connection table holds (each pod veth's view of a connection is one);
        /// 100 bytes of kernel memory each, allocated at load. Rounded up to a power of two of at
        /// least 64 (`Datapath.connectionTableSets`).
        public var connectionTableSize: Int
        /// Attach the tc programs as tcx links where the kernel has them (6.6+); tc filters otherwise.
        public var tcx: Bool
        /// What a pod sends a pod of this node (`setLocalPods`) is reported only where it enters
        /// that pod (`to-endpoint`), not also where it leaves (`from-endpoint`): Cilium's default
        /// monitor aggregation, which reports no `from-*` observation point.
        public var localAggregation: Bool

        /// Cilium's default for its TCP connection table (`bpf-ct-global-tcp-max`); 50 MiB. A
        /// set-associative table evicts from a full set before the whole table is full: at this
        /// size 100,000 connections (19 %) evict none, while in 262,144 entries (38 %) some
        /// sets overflowed (13 evictions in `scripts/bench-connections.sh`).
        public static let defaultConnectionTableSize = 524_288

        public init(
            reportInterval: Double = 10, perPacket: Bool = false,
            ignoredDrops: [String: [DropIgnoreRule]] = Datapath.notNetworkDrops,
            connectionTableSize: Int = Options.defaultConnectionTableSize, tcx: Bool = true,
            localAggregation: Bool = false
        ) {
            self.localAggregation = localAggregation
            self.reportInterval = reportInterval
            self.perPacket = perPacket
            self.ignoredDrops = ignoredDrops
            self.connectionTableSize = connectionTableSize
            self.tcx = tcx
        }
    }

    /// Which drops of a reason are no drops of the network path (a reason can have several).
    public enum DropIgnoreRule: Sendable {
        /// Every drop with the reason.
        case always
        /// Drops of packets to a multicast group (reports nobody on the host listens to).
        case multicast
        /// Drops on a loopback device: host-internal traffic, never the network's.
        case loopback
        /// The datagrams GRO merged behind a head, freed with it (by `listFreeFunction`): a
        /// dropped head's own drop reports them, with its reason and a length that covers them.
        case listMember
        /// Segments that reached a socket in TIME-WAIT (a FIN sent again after a lost last ACK,
        /// a late duplicate), which TCP answered and freed. Needs the tracepoint's receiving
        /// socket (`dropReceivingSocket`, Linux 6.12 and later); matches nothing without it.
        case timeWait
        /// ICMP echo replies that reached their host, where no ping socket took them (`NO_SOCKET`
        /// from ping_rcv): a raw socket, `ping` run as root, has had its copy before that lookup.
        case echoReply
        /// Segments TCP handled at a connection still opening (its request socket; the free
        /// names the listener): a SYN sent again because the SYN-ACK was lost or slow, answered
        /// with the SYN-ACK again, and an RST that reset the connection (an established
        /// connection's RST is consumed, not dropped). Needs the tracepoint's receiving socket,
        /// as `timeWait` does.
        case opening

        var bit: UInt8 {
            switch self {
            case .always: UInt8(OSP_DROP_IGNORE_ALWAYS.rawValue)
            case .multicast: UInt8(OSP_DROP_IGNORE_MULTICAST.rawValue)
            case .loopback: UInt8(OSP_DROP_IGNORE_LOOPBACK.rawValue)
            case .listMember: UInt8(OSP_DROP_IGNORE_LIST.rawValue)
            case .timeWait: UInt8(OSP_DROP_IGNORE_TIME_WAIT.rawValue)
            case .echoReply: UInt8(OSP_DROP_IGNORE_ECHO_REPLY.rawValue)
            case .opening: UInt8(OSP_DROP_IGNORE_OPENING.rawValue)
            }
        }
    }

    /// What the skb:kfree_skb tracepoint reports on perfectly healthy traffic that no network
    /// path dropped (found on the lab with the tracepoint's `location`; README, "Drops"):
    /// buffers a socket still held when it closed (`SOCKET_CLOSE` from unix_release_sock,
    /// `QUEUE_PURGE` from sk_stream_kill_queues) and IGMP/MLD membership reports that reach
    /// hosts not listening to the group (`NOT_SPECIFIED` from ip6_mc_input and
    /// ip_rcv_finish_core), TCP's own discards on the loopback device and, where the kernel
    /// names the receiving socket, anywhere (`NOT_SPECIFIED` from tcp_v4_rcv: a FIN reaching a
    /// socket already in TIME-WAIT, seen when a local client closes first, or after its last
    /// ACK was lost; and, at a connection still opening, a SYN sent again, answered with the
    /// SYN-ACK again, or an RST that reset it), the datagrams of a GRO list freed behind their
    /// head (`NOT_SPECIFIED` from skb_release_data, without the head's reason), and ICMP echo
    /// replies that no ping socket took (`NO_SOCKET` from ping_rcv, every reply to a `ping` run
    /// as root, whose raw socket had its copy), and, where the kernel names the receiving socket,
    /// what an established TCP connection discards as already had: data received before
    /// (`TCP_OLD_DATA`, a spurious retransmission), a segment before the window
    /// (`TCP_OLD_SEQUENCE`: every keepalive and window probe, sent one byte behind), data
    /// already in the out-of-order queue (`TCP_OFOMERGE`) and an old ACK within the window
    /// (`TCP_OLD_ACK`). Not reported unless the agent runs with `--drop-reasons all`.
    public static let notNetworkDrops: [String: [DropIgnoreRule]] = [
        "SOCKET_CLOSE": [.always], "QUEUE_PURGE": [.always],
        "NOT_SPECIFIED": [.multicast, .loopback, .listMember, .timeWait, .opening], "NO_SOCKET": [.echoReply],
        "TCP_OLD_DATA": [.always], "TCP_OLD_SEQUENCE": [.always], "TCP_OFOMERGE": [.always], "TCP_OLD_ACK": [.always],
    ]

    /// The reader of flow and drop events.
    public let events: EventReader

    /// Loads the objects with `options` and attaches the drop tracepoint. tc programs are
    /// attached per interface with `attach(interface:index:role:)`.
    public init(options: Options = Options()) throws(DatapathError) {
        Self.libbpfLog
        dropReasons = try Self.loadDropReasons()
        // The kernel's BTF says whether it has tcx (asked only when wanted).
        var useTCX = false
        if options.tcx { useTCX = try Self.kernelEnum("bpf_attach_type").values.contains("BPF_TCX_INGRESS") }
        attachMode = useTCX ? .tcx : .tc
        let sets = Self.connectionTableSets(options.connectionTableSize)
        let youngSets = Self.youngSets(sets)
        listFree = Self.kernelFunction(Self.listFreeFunction)
        dropReceivingSocket = osp_btf_tracepoint_arguments("kfree_skb") >= 4
        let constants = [
            Self.configSection: Self.config(
                options, connectionTableSets: sets, dropReasons: dropReasons, kernelHZ: Self.kernelHZ(),
                listFree: listFree, receivingSocket: dropReceivingSocket)
        ]
        let pod = try BPFObject(
            name: "pod", bytes: BPFObjects.pod, constants: constants,
            sizes: [MapName.conntrack.rawValue: UInt32(sets), MapName.ctYoung.rawValue: UInt32(youngSets)])
        connectionTableSize = (sets + youngSets) * Int(OSP_CT_WAYS)
        var fds: [String: Int32] = [:]
        for map in MapName.allCases { fds[map.rawValue] = try pod.mapFD(map.rawValue) }
        let drops = try BPFObject(name: "drops", bytes: BPFObjects.drops, sharing: fds, constants: constants)
        let retransmits = try BPFObject(name: "retransmits", bytes: BPFObjects.retransmits, sharing: fds)
        let flush = try BPFObject(name: "flush", bytes: BPFObjects.flush, sharing: fds, constants: constants)
        oldSets = sets
        func map<Key, Value>(_ name: MapName) -> BPFMap<Key, Value> {
            BPFMap(name: name.rawValue, fd: fds[name.rawValue]!)
        }
        maps = Maps(
            ifaces: map(.ifaces), netns: map(.netns), tcpFlags: map(.tcpFlags),
            drops: map(.drops), errors: map(.errors), ctStats: map(.ctStats), ctYoung: map(.ctYoung),
            localPods: map(.localPods))
        cpus = Int(osp_possible_cpus())
        localAggregation = options.localAggregation
        events = try EventReader(
            ringFD: fds[MapName.events.rawValue]!, lostMap: map(.lost), sleepMap: map(.reader), cpus: cpus)
        let dropLink = try drops.attachTracepoint(ProgramName.drops.rawValue)
        let retransmitLink: OpaquePointer
        do { retransmitLink = try retransmits.attachTracepoint(ProgramName.retransmits.rawValue) } catch {
            bpf_link__destroy(dropLink)
            throw error
        }
        objects = Lock(Objects(pod: pod, drops: drops, retransmits: retransmits, flush: flush))
        tracepointLinks = Lock([dropLink, retransmitLink])
    }

    /// libbpf's messages: warnings to stderr, debug too with OSPREY_LIBBPF_LOG=debug (set once).
    static let libbpfLog: Void = osp_libbpf_set_verbosity(
        ProcessInfo.processInfo.environment["OSPREY_LIBBPF_LOG"] == "debug" ? 2 : 1)

    /// Sets of `OSP_CT_WAYS` connections that hold at least `entries`: a power of two (a set is
    /// picked by the hash's low bits), at least 4.
    public static func connectionTableSets(_ entries: Int) -> Int {
        let sets = max(4, (max(entries, 1) + Int(OSP_CT_WAYS) - 1) / Int(OSP_CT_WAYS))
        return 1 << (Int.bitWidth - (sets - 1).leadingZeroBitCount)
    }

    /// Sets of the young table in front of `sets` old ones, where new connections enter: a
    /// sixteenth of them, at least 1 and at most 256 (4,096 connections in 400 KiB, small
    /// enough to stay in the CPUs' caches and TLBs; see conntrack.h).
    public static func youngSets(_ sets: Int) -> Int { min(256, max(1, sets / 16)) }

    /// `struct osp_config` for `options` and a table of `connectionTableSets` sets, as the
    /// bytes of its section. `listFree` is the text of `listFreeFunction`; without it the
    /// `listMember` rule matches nothing. `receivingSocket`: the drop tracepoint passes the
    /// receiving socket; without it the `timeWait` and `opening` rules match nothing.
    static func config(
        _ options: Options, connectionTableSets: Int, dropReasons: [UInt32: String], kernelHZ: Int? = nil,
        listFree: Range<UInt64>? = nil, receivingSocket: Bool = false
    ) -> [UInt8] {
        var config = osp_config()
        config.report_interval_ns = UInt64(max(0.001, options.reportInterval) * 1e9)
        config.per_packet = options.perPacket ? 1 : 0
        config.local_aggregation = options.localAggregation ? 1 : 0
        if let kernelHZ, kernelHZ > 0 { config.tick_ns = UInt32(1_000_000_000 / kernelHZ) }
        config.ct_set_mask = UInt32(connectionTableSets - 1)
        config.ct_young_mask = UInt32(youngSets(connectionTableSets) - 1)
        if let listFree {
            config.list_free_start = listFree.lowerBound
            config.list_free_end = listFree.upperBound
        }
        config.drop_rx_sk = receivingSocket ? 1 : 0
        withUnsafeMutableBytes(of: &config.drops_ignored) { slots in
            for (value, name) in dropReasons where Int(value) < slots.count {
                guard let rules = options.ignoredDrops[name] else { continue }
                slots[Int(value)] = rules.reduce(0) { $0 | $1.bit }
            }
        }
        return withUnsafeBytes(of: &config) { Array($0) }
    }

    // MARK: - Interfaces and namespaces

    /// Counts traffic of `interface` (in the calling thread's namespace): records its role, and
    /// on a pod veth attaches the tc programs to its ingress and egress hooks. An Osprey filter a
    /// killed agent left is replaced in place (tc filters) or removed (tcx links, and uplinks,
    /// which carry no program), so that no packet is counted twice. Returns true when there was
    /// one.
    @discardableResult
    public func attach(interface name: String, index: Int32, role: InterfaceRole) throws(DatapathError) -> Bool {
        try maps.ifaces.update(UInt32(index), role.rawValue)
        let (ingress, egress) = (try podProgramFD(.podIngress), try podProgramFD(.podEgress))
        // Links this agent already holds on the index (the interface was renamed) go first, so
        // that no packet is counted by two programs.
        attached.withLock { $0.remove(index) }?.closeLinks()
        var replaced = false
        var links: [Int32] = []
        // Where packets enter the pod (egress) first: between the two attachments (milliseconds)
        // an answer may be seen without its request, never a request without the answer that
        // came — a DNS query whose answer went unseen would be reported unanswered.
        for (hook, fd) in [(0, egress), (1, ingress)] {
            var existing: UInt32 = 0
            if osp_tc_query(index, Int32(hook), &existing) == 0, existing != 0 { replaced = true }
            var status: Int32 = 0
            switch (role, attachMode) {
            case (.pod, .tc): status = osp_tc_attach(index, Int32(hook), fd)
            case (.pod, .tcx):
                if existing != 0 { _ = osp_tc_detach(index, Int32(hook)) }
                let link = osp_tcx_attach(index, Int32(hook), fd)
                if link >= 0 { links.append(link) }
                status = min(link, 0)
            case (.uplink, _):
                if existing != 0 { _ = osp_tc_detach(index, Int32(hook)) }
            }
            guard status == 0 else {
                Attachment(name: name, role: role, links: links).closeLinks()
                throw .attachTC(interface: name, hook: hook == 1 ? "ingress" : "egress", errno: -status)
            }
        }
        attached.withLock { $0.set(index, Attachment(name: name, role: role, links: links)) }
        return replaced
    }

    /// Stops counting an interface that went away (its filters went with it; its tcx links are
    /// released).
    public func forget(index: Int32) {
        maps.ifaces.delete(UInt32(index))
        attached.withLock { $0.remove(index) }?.closeLinks()
    }

    /// Interfaces currently watched (pod veths and uplinks), by index.
    public var attachedInterfaces: [Int32: String] { attached.withLock { $0.names } }

    /// The uplinks currently watched, by name: their interface counters are the node's forward
    /// counts.
    public var uplinks: [String] {
        attached.withLock { $0.byIndex.values.filter { $0.role == .uplink }.map(\.name) }
    }

    /// Osprey's programs on an interface's hooks (in the calling thread's namespace), as the
    /// kernel lists them, by hook: "ingress" → ["tcx osp_tc_pod_ingr"] (how it hangs there, and
    /// the 15 characters of its name the kernel keeps). What an operator checks with
    /// `bpftool net`, for tests and diagnostics.
    public static func ospreyPrograms(onInterface index: Int32) -> [String: [String]] {
        Self.libbpfLog
        var found: [String: [String]] = [:]
        func name(_ id: UInt32) -> String? {
            var buffer = [CChar](repeating: 0, count: 32)
            guard osp_prog_name(id, &buffer, buffer.count) == 0 else { return nil }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return text.hasPrefix("osp_") ? text : nil
        }
        for (hook, label) in [(Int32(1), "ingress"), (0, "egress")] {
            var ids = [UInt32](repeating: 0, count: 64)
            var count = UInt32(ids.count)
            var programs: [String] = []
            if osp_tcx_query(index, hook, &ids, &count) == 0 {
                programs += ids.prefix(Int(count)).compactMap(name).map { "tcx \($0)" }
            }
            var filter: UInt32 = 0
            if osp_tc_query(index, hook, &filter) == 0, filter != 0, let program = name(filter) {
                programs.append("tc \(program)")
            }
            found[label] = programs
        }
        return found
    }

    /// Replaces the set of namespaces whose drops this node counts.
    public func setNamespaces(_ namespaces: [UInt32: NamespaceRole]) throws(DatapathError) {
        let existing = Set(maps.netns.keys())
        for (inode, role) in namespaces { try maps.netns.update(inode, role.rawValue) }
        for inode in existing.subtracting(namespaces.keys) { maps.netns.delete(inode) }
    }

    /// Replaces this node's pod addresses (`Options.localAggregation`): those of the pods whose
    /// veths carry the programs, as their bytes (4 for IPv4, 16 for IPv6; any other length is
    /// left out). A connection between two of them when it starts is reported at each pod's
    /// interface only where it enters the pod.
    public func setLocalPods(_ addresses: some Collection<[UInt8]>) throws(DatapathError) {
        func bytes(_ key: osp_pod_address) -> [UInt8] { withUnsafeBytes(of: key) { Array($0) } }
        var wanted: [[UInt8]: osp_pod_address] = [:]
        for address in addresses where address.count == 4 || address.count == 16 {
            var key = osp_pod_address()
            key.family = address.count == 4 ? 4 : 6
            withUnsafeMutableBytes(of: &key.addr) { $0.copyBytes(from: address) }
            wanted[bytes(key)] = key
        }
        for key in maps.localPods.keys() where wanted[bytes(key)] == nil { maps.localPods.delete(key) }
        for key in wanted.values { try maps.localPods.update(key, 1) }
    }

    /// Removes every tc program this process attached and the tracepoints, then unloads.
    /// Idempotent.
    public func detachAll() {
        events.stop()
        let interfaces = attached.withLock { $0.removeAll() }
        for (index, attachment) in interfaces where attachment.role == .pod {
            switch attachMode {
            case .tc:
                _ = osp_tc_detach(index, 1)
                _ = osp_tc_detach(index, 0)
            case .tcx: attachment.closeLinks()
            }
        }
        tracepointLinks.withLock { links in
            for link in links { bpf_link__destroy(link) }
            links = []
        }
        objects.withLock {
            $0?.close()
            $0 = nil
        }
    }

    /// A descriptor `read` takes from the loaded objects, while the datapath is open; once it is
    /// closed, `.missing(what:)` names what was asked for and the object it lives in.
    private func descriptor(
        of what: String, in object: String, _ read: (Objects) throws(DatapathError) -> Int32
    ) throws(DatapathError) -> Int32 {
        try objects.withLock { objects throws(DatapathError) -> Int32 in
            guard let objects else { throw .missing(what: what, object: "\(object) (closed)") }
            return try read(objects)
        }
    }

    /// A pod program's descriptor, while the datapath is open.
    private func podProgramFD(_ program: ProgramName) throws(DatapathError) -> Int32 {
        try descriptor(of: "tc programs", in: "pod") { objects throws(DatapathError) in
            try objects.pod.programFD(program.rawValue)
        }
    }

    /// The descriptor of a map only the pod object declares, while the datapath is open.
    private func podMapFD(_ name: String) throws(DatapathError) -> Int32 {
        try descriptor(of: "map \(name)", in: "pod") { objects throws(DatapathError) in try objects.pod.mapFD(name) }
    }

    /// The pod object's own map: the one-entry program array through which the pod hooks'
    /// programs pass each packet on to `osp_tc_pod` (libbpf fills it as the object loads).
    static let podBodyMap = "osp_pod_body"

    /// Empties the slot through which the pod hooks' programs pass each packet on to
    /// `osp_tc_pod` (tests: a hook that cannot is counted, and its packet goes on).
    func emptyPodBody() throws(DatapathError) {
        BPFMap<UInt32, UInt32>(name: Self.podBodyMap, fd: try podMapFD(Self.podBodyMap)).delete(0)
    }

    // MARK: - Silent connections

    /// Sets of the old connection table one flush walks (1.6 MiB of tag lines, and the ways in
    /// use): the default table of 32,768 sets in four runs.
    public static let flushOldSets = 8192

    /// Reports what silent connections sent since their last report (`flush.c`): every direction
    /// of a connection that sent packets since its last report, an interval ago or more. Walks the
    /// young table and the next `flushOldSets` sets of the old one, and stops early where the
    /// event ring is a quarter full (`OSP_FLUSH_RING_LIMIT`; the next run goes on from there).
    /// The agent runs it once a second. Returns the reports made.
    @discardableResult
    public func flushIdle() throws(DatapathError) -> Int {
        let fd = try descriptor(of: "flush program", in: "flush") { objects throws(DatapathError) in
            try objects.flush.programFD(ProgramName.flush.rawValue)
        }
        // One flush at a time: each goes on where the last stopped.
        return try flushCursor.withLock { cursor throws(DatapathError) -> Int in
            var args = osp_flush_args(
                old_start: UInt32(cursor), old_sets: UInt32(Self.flushOldSets), reports: 0, old_walked: 0)
            var verdict: Int32 = 0
            let status = osp_prog_run_context(fd, &args, UInt32(MemoryLayout<osp_flush_args>.size), &verdict)
            guard status == 0 else { throw .flush(errno: -status) }
            cursor = (cursor + Int(args.old_walked)) % oldSets
            return Int(args.reports)
        }
    }

    /// Runs a tc program once on `packet`, an Ethernet frame, as if it crossed a pod veth (the
    /// kernel's BPF_PROG_TEST_RUN; the loopback device stands in for the veth). Returns the
    /// program's verdict. For tests of what the programs count and report.
    func run(_ program: ProgramName, packet: [UInt8]) throws(DatapathError) -> Int32 {
        let fd = try podProgramFD(program)
        var verdict: Int32 = 0
        let status = packet.withUnsafeBytes { osp_prog_test_run(fd, $0.baseAddress, UInt32($0.count), &verdict) }
        guard status == 0 else { throw .testRun(program: program.rawValue, errno: -status) }
        return verdict
    }

    /// Instructions the verifier went through to accept `program` when it was loaded (what
    /// the agent's start waits for).
    func verifiedInstructions(_ program: ProgramName) throws(DatapathError) -> UInt32 {
        let fd = try podProgramFD(program)
        var count: UInt32 = 0
        let status = osp_prog_verified_insns(fd, &count)
        guard status == 0 else {
            throw .map(name: program.rawValue, operation: "reading its information", errno: -status)
        }
        return count
    }

    // MARK: - Counters

    /// Sums of every counter map, read now.
    public func snapshot() -> DatapathSnapshot {
        var snapshot = DatapathSnapshot()
        for direction in TrafficDirection.allCases where direction != .unknown {
            var totals = [UInt64](repeating: 0, count: TCPFlag.allCases.count)
            for counts in maps.tcpFlags.perCPU(UInt32(direction.rawValue), cpus: cpus) ?? [] {
                withUnsafeBytes(of: counts.packets) { packets in
                    for flag in totals.indices {
                        totals[flag] += packets.load(fromByteOffset: flag * 8, as: UInt64.self)
                    }
                }
            }
            for flag in TCPFlag.allCases {
                snapshot.tcpFlags[TCPFlagKey(flag: flag, direction: direction)] = totals[flag.rawValue]
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
        snapshot.connections = connectionTable()
        snapshot.programs = programRuns()
        return snapshot
    }

    /// Runs and run time of each loaded program, by name (see `ProgramRuns`).
    public func programRuns() -> [String: ProgramRuns] {
        objects.withLock { objects in
            guard let objects else { return [:] }
            let loaded: [(BPFObject, ProgramName)] = [
                (objects.pod, .podIngress), (objects.pod, .podEgress), (objects.drops, .drops),
                (objects.retransmits, .retransmits),
            ]
            var runs: [String: ProgramRuns] = [:]
            for (object, name) in loaded {
                guard let fd = try? object.programFD(name.rawValue), fd >= 0 else { continue }
                var nanoseconds: UInt64 = 0
                var count: UInt64 = 0
                guard osp_prog_run_stats(fd, &nanoseconds, &count) == 0 else { continue }
                runs[name.rawValue] = ProgramRuns(runs: count, nanoseconds: nanoseconds)
            }
            return runs
        }
    }

    /// The connection table's size and counters.
    public func connectionTable() -> ConnectionTable {
        func total(_ stat: osp_ct_stat) -> UInt64 {
            (maps.ctStats.perCPU(UInt32(stat.rawValue), cpus: cpus) ?? []).reduce(0, +)
        }
        return ConnectionTable(
            size: connectionTableSize, inserted: total(OSP_CT_INSERTED), deleted: total(OSP_CT_DELETED),
            evicted: total(OSP_CT_EVICTED))
    }

    /// Writes a set of the young connection table (tests).
    func setYoungSet(_ index: UInt32, _ set: osp_ct_set) throws(DatapathError) { try maps.ctYoung.update(index, set) }

    /// The pod addresses the programs hold (`setLocalPods`), as family and bytes (tests).
    func localPods() -> Set<[UInt8]> {
        Set(
            maps.localPods.keys().map { key in
                [key.family] + withUnsafeBytes(of: key.addr) { Array($0.prefix(key.family == 4 ? 4 : 16)) }
            })
    }

    static func loadDropReasons() throws(DatapathError) -> [UInt32: String] {
        try kernelEnum("skb_drop_reason").mapValues { name in
            name.hasPrefix("SKB_DROP_REASON_") ? String(name.dropFirst("SKB_DROP_REASON_".count)) : name
        }
    }

    /// A kernel enum from its BTF: value → enumerator name.
    static func kernelEnum(_ enumName: String) throws(DatapathError) -> [UInt32: String] {
        var buffer = [CChar](repeating: 0, count: 64 * 1024)
        let count = osp_btf_enum_dump(enumName, &buffer, buffer.count)
        guard count >= 0 else { throw .btf("enum \(enumName): \(DatapathError.text(-count))") }
        let text = String(decoding: buffer.prefix(Int(count)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var values: [UInt32: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let value = Int64(parts[0]) else { continue }
            values[UInt32(truncatingIfNeeded: value)] = String(parts[1])
        }
        return values
    }
}
