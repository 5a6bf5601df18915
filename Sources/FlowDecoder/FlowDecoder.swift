import CDatapathABI
import Flows
import Foundation

/// Turns raw datapath events into flows with Hubble's fields, and measures what Hubble cannot
/// for non-HTTP traffic: the TCP handshake round trip (on the SYN-ACK flow) and DNS latency
/// (on the response flow). Queries without an answer become flows of their own.
///
/// Not thread-safe: one decoder per event reader, used on its thread.
public struct FlowDecoder {
    public let nodeName: String
    /// How long a DNS query may wait for its answer before it is reported unanswered.
    public let dnsTimeout: Double
    /// The agent's `dnsTimeout`, in seconds.
    public static let defaultDNSTimeout: Double = 5
    /// Kernel drop reason values → names (from the datapath's BTF).
    let kernelDropReasons: [UInt32: String]
    /// Names a kernel text address (`Datapath.kernelLocation(of:)`); nil: drops carry no location.
    let kernelLocation: (@Sendable (UInt64) -> String?)?
    /// The drop locations named so far, and those that could not be (nil): a node's drops come
    /// from a few dozen places in the kernel, and naming one reads the kernel's symbol list.
    private var kernelLocations: [UInt64: String?] = [:]
    /// Wall clock minus CLOCK_MONOTONIC, to turn bpf_ktime_get_ns() into dates. The two clocks
    /// run at one rate (NTP's frequency corrections steer both), so it changes only when the wall
    /// clock is set: NTP stepping it, a VM resumed, `date -s`. `followWallClock` adopts such steps.
    var clockOffset: Double
    private var pendingSYNs: [PendingKey: UInt64] = [:]
    /// Flow UUIDs come from a generator seeded once from the system: a system call per flow
    /// would dominate decoding.
    private var uuids = UUIDGenerator()
    /// Recently formatted IPv4 addresses: flows repeat a few addresses, and text is the costly part.
    private var ipv4Texts = IPv4TextCache()
    private var pendingQueries: [PendingKey: (sentNs: UInt64, flow: Flow)] = [:]
    /// Every pending query's deadline, the soonest first, so finding the lapsed ones costs only
    /// what lapsed: a DNS server down for every pod leaves tens of thousands waiting, and the
    /// reader looks after every batch. Entries of answered queries stay until their deadline
    /// (skipped then), bounded by `pruneDeadlines`.
    private var queryDeadlines = MinHeap<QueryDeadline>()
    /// The client port of the latest query waiting at the node (matching interface 0) under
    /// each key without its client port. Between two pods of this node, the query is reported
    /// where it enters the server and its answer where it enters the client, and the node's NAT
    /// may have given the query another source port than the client's socket has (it does when
    /// the reply tuple would clash with another connection's): the answer then names the
    /// socket's port, the query the node's. Addresses, server port, DNS ID and name still join
    /// them. One entry per waiting query at most: bounded with `pendingQueries`.
    private var nodeQueryPorts: [PendingKey: UInt16] = [:]
    /// Which names each client resolved to which addresses (`source_names`/`destination_names`).
    private var names = DNSNames()

    /// A connection (or DNS exchange) at one observation point, oriented initiator → responder.
    /// Addresses as their 16 raw bytes: hashing two words is far cheaper than hashing text.
    struct PendingKey: Hashable {
        var client: AddressBits
        var clientPort: UInt16
        var server: AddressBits
        var serverPort: UInt16
        var ifindex: UInt32
        var dnsID: UInt16

        /// The key without its client port (`nodeQueryPorts`).
        var anyClientPort: PendingKey {
            var key = self
            key.clientPort = 0
            return key
        }

        /// One word into the hasher, as `FlowSignature` does: a SYN and its SYN-ACK each look a
        /// key up, and the hasher's rounds per field were most of it. Equality compares every
        /// field.
        func hash(into hasher: inout Hasher) {
            let addresses =
                (client.high &* 0x9E37_79B9_7F4A_7C15) ^ (client.low &* 0xFF51_AFD7_ED55_8CCD)
                ^ (server.high &* 0xC4CE_B9FE_1A85_EC53) ^ (server.low &* 0x2545_F491_4F6C_DD1D)
            let numbers = UInt64(clientPort) | UInt64(serverPort) << 16 | UInt64(dnsID) << 32
            hasher.combine(
                addresses ^ (numbers &* 0xD6E8_FEB8_6659_FD93) ^ (UInt64(ifindex) &* 0xA076_1D64_78BD_642F))
        }
    }

    struct QueryDeadline: Comparable {
        var deadline: UInt64
        var sentNs: UInt64
        var key: PendingKey

        static func < (lhs: QueryDeadline, rhs: QueryDeadline) -> Bool { lhs.deadline < rhs.deadline }
        static func == (lhs: QueryDeadline, rhs: QueryDeadline) -> Bool { lhs.deadline == rhs.deadline }
    }

    public init(
        nodeName: String, kernelDropReasons: [UInt32: String], dnsTimeout: Double = FlowDecoder.defaultDNSTimeout,
        clocks: ClockReading = FlowDecoder.readClocks(), kernelLocation: (@Sendable (UInt64) -> String?)? = nil
    ) {
        self.nodeName = nodeName
        self.kernelDropReasons = kernelDropReasons
        self.kernelLocation = kernelLocation
        self.dnsTimeout = dnsTimeout
        clockOffset = clocks.offset
    }

    /// The wall clock and CLOCK_MONOTONIC read at one instant, as near as can be.
    public struct ClockReading: Sendable {
        /// Seconds since the epoch.
        public var wall: Double
        public var monotonicNs: UInt64
        /// How far `wall` may be from the wall clock's time at `monotonicNs`, in seconds.
        public var uncertainty: Double

        public init(wall: Double, monotonicNs: UInt64, uncertainty: Double = 0) {
            self.wall = wall
            self.monotonicNs = monotonicNs
            self.uncertainty = uncertainty
        }

        /// Wall clock minus CLOCK_MONOTONIC, in seconds.
        public var offset: Double { wall - Double(monotonicNs) / 1e9 }
    }

    /// Reads both clocks: the monotonic one between two wall-clock reads, the pair kept whose
    /// reads lay closest together (a reader preempted between them would be off by the pause).
    public static func readClocks() -> ClockReading {
        var best = ClockReading(wall: 0, monotonicNs: 0, uncertainty: .infinity)
        for _ in 0..<3 {
            let before = Date().timeIntervalSince1970
            let monotonic = osp_monotonic_ns()
            let after = Date().timeIntervalSince1970
            let half = abs(after - before) / 2
            if half < best.uncertainty {
                best = ClockReading(wall: before + (after - before) / 2, monotonicNs: monotonic, uncertainty: half)
            }
            if best.uncertainty < 25e-6 { break }
        }
        return best
    }

    /// A change of the offset smaller than this is the reading's own jitter, not a step.
    public static let clockStepTolerance = 0.001

    /// Follows a step of the wall clock: when the offset in `clocks` differs from the one in use
    /// by more than `clockStepTolerance`, flows from now on take the new one (events stamped
    /// before the step, still unread, take it too: they are told in the clock the node now
    /// keeps). A reading less certain than half the tolerance is passed over (the reader was
    /// preempted three times running). Returns the step in seconds (negative: the clock was set
    /// back), or nil.
    public mutating func followWallClock(_ clocks: ClockReading = FlowDecoder.readClocks()) -> Double? {
        let step = clocks.offset - clockOffset
        guard abs(step) > Self.clockStepTolerance, clocks.uncertainty < Self.clockStepTolerance / 2 else {
            return nil
        }
        clockOffset = clocks.offset
        return step
    }

    /// Nanoseconds of CLOCK_MONOTONIC now, the datapath's clock.
    public static func monotonicNow() -> UInt64 { osp_monotonic_ns() }

    /// Decodes one event. `interfaceName` names the observing interface.
    public mutating func decode(_ event: osp_event, interfaceName: String?) -> Flow {
        withUnsafePointer(to: event) { decode($0, interfaceName: interfaceName) }
    }

    /// Decodes the event where it lies (in the reader's batch), keeping no pointer to it: an
    /// `osp_event` is 416 bytes, and copying each one was a few per cent of the agent's time
    /// under churn.
    public mutating func decode(_ event: UnsafePointer<osp_event>, interfaceName: String?) -> Flow {
        var tuple = event.pointee.tuple
        let family = Int(tuple.family)
        let source = family == 6 ? Self.address(&tuple.saddr, family: family) : ipv4Texts.text(tuple.saddr)
        let destination = family == 6 ? Self.address(&tuple.daddr, family: family) : ipv4Texts.text(tuple.daddr)
        let l4: Layer4
        switch Int32(tuple.protocol) {
        case Int32(IPPROTO_TCP):
            l4 = .tcp(
                sourcePort: tuple.sport, destinationPort: tuple.dport,
                flags: TCPFlags(rawValue: event.pointee.tcp_flags))
        case Int32(IPPROTO_UDP): l4 = .udp(sourcePort: tuple.sport, destinationPort: tuple.dport)
        case 1: l4 = .icmpv4(type: UInt8(truncatingIfNeeded: tuple.sport), code: UInt8(truncatingIfNeeded: tuple.dport))
        case 58:
            l4 = .icmpv6(type: UInt8(truncatingIfNeeded: tuple.sport), code: UInt8(truncatingIfNeeded: tuple.dport))
        default: l4 = .other(protocolNumber: tuple.protocol)
        }
        let isDrop = event.pointee.kind == UInt8(OSP_EVENT_DROP.rawValue)
        let isRetransmission = event.pointee.kind == UInt8(OSP_EVENT_RETRANSMIT.rawValue)
        let observation: ObservationPoint =
            switch UInt32(event.pointee.observation) {
            case OSP_OBS_FROM_ENDPOINT.rawValue: .fromEndpoint
            case OSP_OBS_TO_ENDPOINT.rawValue: .toEndpoint
            default: .unknown
            }
        // An ICMP error is related to a connection, not its reply, as in Cilium's flows.
        let isReply = event.pointee.is_reply == 2 ? nil : event.pointee.is_reply == 1 && !l4.isICMPError
        var flow = Flow(
            time: Date(timeIntervalSince1970: Double(event.pointee.timestamp_ns) / 1e9 + clockOffset),
            uuid: uuids.next(),
            verdict: isDrop ? .dropped : .forwarded, ipVersion: family == 6 ? 2 : 1, sourceIP: source,
            destinationIP: destination, l4: l4, nodeName: nodeName,
            trafficDirection: isRetransmission
                ? .egress : TrafficDirection.ofConnection(at: observation, isReply: isReply),
            isReply: isReply, observationPoint: observation,
            interface: event.pointee.ifindex == 0
                ? nil : (Int32(bitPattern: event.pointee.ifindex), interfaceName ?? ""),
            packets: event.pointee.packets, bytes: event.pointee.bytes)
        if !isDrop {
            let sourceMAC = MACAddress(event.pointee.smac)
            let destinationMAC = MACAddress(event.pointee.dmac)
            if !sourceMAC.isZero || !destinationMAC.isZero { flow.ethernet = (sourceMAC, destinationMAC) }
        }
        if isRetransmission {
            flow.isRetransmission = true
            return flow
        }
        if event.pointee.report == UInt8(OSP_REPORT_NEW.rawValue) && !isDrop { flow.opensConnection = true }
        let matchedAt = isDrop ? event.pointee.ifindex : Self.matchingInterface(event)
        if !isDrop, event.pointee.flags & UInt8(OSP_QUIET_PEER.rawValue) != 0 { flow.departureUnreported = true }
        if isDrop {
            let kernel = kernelDropReasons[event.pointee.drop_reason] ?? "REASON_\(event.pointee.drop_reason)"
            flow.kernelDropReason = kernel
            flow.dropReason = DropReasons.hubbleReason(forKernel: kernel)
            flow.kernelDropLocation = dropLocation(event)
        }
        if event.pointee.payload_len > 0 { decodeDNS(event, into: &flow, matchedAt: matchedAt) }
        if names.mayKnow(event.pointee.tuple.daddr) {
            flow.destinationNames = names.names(
                client: event.pointee.tuple.saddr, resolved: event.pointee.tuple.daddr, at: event.pointee.timestamp_ns)
        }
        if names.mayKnow(event.pointee.tuple.saddr) {
            flow.sourceNames = names.names(
                client: event.pointee.tuple.daddr, resolved: event.pointee.tuple.saddr, at: event.pointee.timestamp_ns)
        }
        if case .tcp(let sport, let dport, let flags) = l4, !isDrop, flags.contains(.syn) {
            if let matchedAt { measureHandshake(event, flow: &flow, sport, dport, flags, at: matchedAt) }
        }
        return flow
    }

    /// The kernel function that freed a dropped packet, named once per address.
    private mutating func dropLocation(_ event: UnsafePointer<osp_event>) -> String? {
        guard let kernelLocation else { return nil }
        let address = withUnsafeBytes(of: event.pointee.location) { $0.loadUnaligned(as: UInt64.self) }
        guard address != 0 else { return nil }
        if let known = kernelLocations[address] { return known }
        // Bounded whatever the events say (the kernel has only so many places that drop).
        if kernelLocations.count >= Self.kernelLocationsMax { kernelLocations.removeAll(keepingCapacity: true) }
        let named = kernelLocation(address)
        kernelLocations[address] = .some(named)
        return named
    }

    /// Most drop locations the decoder keeps named.
    static let kernelLocationsMax = 1_024

    private mutating func decodeDNS(_ event: UnsafePointer<osp_event>, into flow: inout Flow, matchedAt: UInt32?) {
        var payload = withUnsafeBytes(of: event.pointee.payload) { Array($0.prefix(Int(event.pointee.payload_len))) }
        if case .tcp = flow.l4 { payload = Array(payload.dropFirst(2)) }  // DNS over TCP: 2-byte length
        guard let message = DNSMessage(payload) else { return }
        let qtype = DNSMessage.typeName(message.qtype)
        var dns = DNSInfo(query: message.query, isResponse: message.isResponse, rcode: message.rcode, qtypes: [qtype])
        dns.id = message.id
        if message.isResponse {
            dns.ips = message.addresses
            dns.ttl = message.ttl
            dns.cnames = message.cnames
            dns.rrtypes = message.rrtypes
        }
        flow.dns = dns
        // A DNS flow stands for the L7 record Retina's DNS plugin makes, whose direction the
        // ACNS dashboards group on (responses by the pod that got them, `destination` in the
        // Hubble metrics): a query is EGRESS, a response INGRESS, wherever it was seen.
        flow.trafficDirection = message.isResponse ? .ingress : .egress
        let ports = flow.l4.ports
        if message.isResponse {
            flow.isReply = true
            if message.rcode == 0 {
                names.learn(
                    client: event.pointee.tuple.daddr, name: message.query, addresses: message.addresses,
                    ttl: message.ttl,
                    at: event.pointee.timestamp_ns)
            }
            guard let matchedAt else { return }
            var key = PendingKey(
                client: AddressBits(event.pointee.tuple.daddr), clientPort: ports.destination,
                server: AddressBits(event.pointee.tuple.saddr), serverPort: ports.source,
                ifindex: matchedAt, dnsID: message.id)
            var pending = pendingQueries.removeValue(forKey: key)
            if pending == nil, matchedAt == 0, let port = nodeQueryPorts[key.anyClientPort] {
                // The query under the source port the node's NAT gave it, if it asked this name.
                key.clientPort = port
                if pendingQueries[key]?.flow.dns?.query == message.query {
                    pending = pendingQueries.removeValue(forKey: key)
                }
            }
            guard let pending else { return }
            if matchedAt == 0 { forgetNodeQueryPort(key) }
            if event.pointee.timestamp_ns >= pending.sentNs {
                flow.latencyNanoseconds = event.pointee.timestamp_ns - pending.sentNs
            }
        } else {
            flow.isReply = false
            guard let matchedAt else { return }
            let key = PendingKey(
                client: AddressBits(event.pointee.tuple.saddr), clientPort: ports.source,
                server: AddressBits(event.pointee.tuple.daddr), serverPort: ports.destination,
                ifindex: matchedAt, dnsID: message.id)
            // Bounded: a flood of unanswered queries must not grow memory without limit.
            if pendingQueries.count < 65536 {
                let again = pendingQueries.updateValue((event.pointee.timestamp_ns, flow), forKey: key)
                // The same query seen twice at one instant (another observation of one packet)
                // already has its deadline: one entry per waiting query keeps pruning rare.
                guard again?.sentNs != event.pointee.timestamp_ns else { return }
                if matchedAt == 0 { nodeQueryPorts[key.anyClientPort] = key.clientPort }
                let limit = UInt64(dnsTimeout * 1e9)
                // A time so late its deadline would overflow never lapses (only a corrupt event has one).
                let deadline =
                    event.pointee.timestamp_ns < UInt64.max - limit ? event.pointee.timestamp_ns + limit : .max
                queryDeadlines.push(QueryDeadline(deadline: deadline, sentNs: event.pointee.timestamp_ns, key: key))
                if queryDeadlines.count > 2 * pendingQueries.count + 4096 { pruneDeadlines() }
            }
        }
    }

    /// Where a query and its answer (a SYN and its SYN-ACK) are matched: at the interface that
    /// reports both; nil at one that reports only the query (its pod's answers are reported
    /// where they enter the peer, whose interface reported the query leaving too); 0 (the node)
    /// between two pods of this node that each report only what enters them — the query where
    /// it entered the server, the answer where it entered the client (`osp_quiet`).
    static func matchingInterface(_ event: UnsafePointer<osp_event>) -> UInt32? {
        let quiet = UInt32(event.pointee.flags)
        if quiet & OSP_QUIET_PEER.rawValue != 0 { return 0 }
        if quiet & OSP_QUIET_SENDS.rawValue != 0 { return nil }
        return event.pointee.ifindex
    }

    private mutating func measureHandshake(
        _ event: UnsafePointer<osp_event>, flow: inout Flow, _ sport: UInt16, _ dport: UInt16, _ flags: TCPFlags,
        at ifindex: UInt32
    ) {
        if flags.contains(.syn) && !flags.contains(.ack) {
            let key = PendingKey(
                client: AddressBits(event.pointee.tuple.saddr), clientPort: sport,
                server: AddressBits(event.pointee.tuple.daddr),
                serverPort: dport, ifindex: ifindex, dnsID: 0)
            if pendingSYNs[key] == nil { pendingSYNs[key] = event.pointee.timestamp_ns }
            if pendingSYNs.count > 65536 { pendingSYNs.removeAll() }  // bounded: a SYN flood must not grow memory
        } else if flags.contains(.syn) && flags.contains(.ack) {
            let key = PendingKey(
                client: AddressBits(event.pointee.tuple.daddr), clientPort: dport,
                server: AddressBits(event.pointee.tuple.saddr),
                serverPort: sport, ifindex: ifindex, dnsID: 0)
            if let sent = pendingSYNs.removeValue(forKey: key), event.pointee.timestamp_ns >= sent {
                flow.latencyNanoseconds = event.pointee.timestamp_ns - sent
            }
        }
    }

    /// DNS queries that got no answer within `dnsTimeout`, as flows of their own (verdict
    /// FORWARDED, no response, `DNS Query … (no response)`), in the order their deadlines fell;
    /// forgets them. Costs what lapsed, so the event reader asks after every batch: an unanswered
    /// query's flow follows the flows before its deadline and precedes those after.
    public mutating func unansweredQueries(nowNs: UInt64 = FlowDecoder.monotonicNow()) -> [Flow] {
        var expired: [Flow] = []
        while let next = queryDeadlines.first, nowNs > next.deadline {
            _ = queryDeadlines.popFirst()
            // An answered query has left `pendingQueries`; a query asked again under the same
            // key waits under its own, later deadline.
            guard let pending = pendingQueries[next.key], pending.sentNs == next.sentNs else { continue }
            pendingQueries.removeValue(forKey: next.key)
            if next.key.ifindex == 0 { forgetNodeQueryPort(next.key) }
            var flow = pending.flow
            flow.uuid = uuids.next()
            flow.time = Date(timeIntervalSince1970: Double(next.deadline) / 1e9 + clockOffset)
            flow.dns?.unanswered = true
            flow.packets = 0
            flow.bytes = 0
            expired.append(flow)
        }
        return expired
    }

    /// Forgets a query that stopped waiting at the node, unless a later one took its place.
    private mutating func forgetNodeQueryPort(_ key: PendingKey) {
        if nodeQueryPorts[key.anyClientPort] == key.clientPort { nodeQueryPorts.removeValue(forKey: key.anyClientPort) }
    }

    /// Keeps one deadline per waiting query: those of queries answered (or asked again) since
    /// would be skipped when due.
    private mutating func pruneDeadlines() {
        var kept = Set<PendingKey>()
        queryDeadlines.filter { [pendingQueries] in
            pendingQueries[$0.key]?.sentNs == $0.sentNs && kept.insert($0.key).inserted
        }
    }

    /// Forgets resolved names past their TTL and SYNs that were never answered.
    public mutating func forgetStale(nowNs: UInt64 = FlowDecoder.monotonicNow()) {
        names.forgetExpired(at: nowNs)
        if pendingSYNs.count > 4096 {
            let limit = UInt64(dnsTimeout * 1e9)
            // Kept while younger than the limit (a time past `nowNs`, from a corrupt event,
            // counts as young; the sum could overflow).
            pendingSYNs = pendingSYNs.filter { nowNs <= $0.value || nowNs - $0.value < limit }
        }
    }

    /// The wall-clock time of a CLOCK_MONOTONIC instant (what `bpf_ktime_get_ns()` returns), on
    /// the same clock as the flows' times.
    public func wallTime(monotonicNs: UInt64) -> Date {
        Date(timeIntervalSince1970: Double(monotonicNs) / 1e9 + clockOffset)
    }

    static func address(_ bytes: inout RawAddress, family: Int) -> String {
        if family != 6 { return IPText.ipv4(bytes.0, bytes.1, bytes.2, bytes.3) }
        return withUnsafeBytes(of: &bytes) { raw in IPText.ipv6(Array(raw)) }
    }
}

/// A direct-mapped cache of IPv4 address text: 4096 slots keyed by the address itself.
struct IPv4TextCache {
    private var keys = [UInt32](repeating: 0, count: 4096)
    private var texts = [String](repeating: "", count: 4096)

    mutating func text(_ bytes: RawAddress) -> String {
        let key = UInt32(bytes.0) << 24 | UInt32(bytes.1) << 16 | UInt32(bytes.2) << 8 | UInt32(bytes.3)
        let slot = Int(truncatingIfNeeded: (key &* 2_654_435_761) >> 20)
        if keys[slot] == key, !texts[slot].isEmpty { return texts[slot] }
        let text = IPText.ipv4(bytes.0, bytes.1, bytes.2, bytes.3)
        keys[slot] = key
        texts[slot] = text
        return text
    }
}

/// Random (version 4) UUIDs from xoshiro256**, seeded once from the system generator.
struct UUIDGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        state = (system.next(), system.next(), system.next(), system.next() | 1)
    }

    private mutating func next64() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    mutating func next() -> UUID {
        var high = next64()
        var low = next64()
        high = (high & ~0xF000) | 0x4000  // version 4
        low = (low & ~(0xC000_0000_0000_0000)) | 0x8000_0000_0000_0000  // RFC 4122 variant
        let h = high.bigEndian
        let l = low.bigEndian
        return withUnsafeBytes(of: (h, l)) { raw in
            UUID(
                uuid: (
                    raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10], raw[11],
                    raw[12], raw[13], raw[14], raw[15]
                ))
        }
    }
}
