import Foundation

/// One flow: a packet (or a connection's packets since the last report) seen at one point.
///
/// The compact form used inside the agent; the Hubble protobuf message is built only where a
/// flow leaves the process. Its fields live in one copy-on-write box, so handing a flow from
/// stage to stage (decoder, ring, metrics, subscribers) costs one reference count, not one per
/// string, endpoint and array inside it. The fields most flows leave empty (DNS, resolved
/// names, the kernel's drop reason) wait in a second box that only the flows carrying one of
/// them allocate, so that a full ring of flows takes fewer cache lines.
public struct Flow: Sendable {
    /// Every field of a flow, in one value: copying the box copies them all (a new field
    /// cannot be forgotten by a copy).
    struct Fields {
        var time: Date
        var uuid: UUID
        var verdict: Verdict
        var dropReason: Int = 0
        var ethernet: (source: MACAddress, destination: MACAddress)? = nil
        var ipVersion: Int
        var sourceIP: String
        var destinationIP: String
        var l4: Layer4
        var source: Endpoint = Endpoint()
        var destination: Endpoint = Endpoint()
        var nodeName: String
        var trafficDirection: TrafficDirection
        var isReply: Bool?
        var observationPoint: ObservationPoint
        var interface: (index: Int32, name: String)?
        var latencyNanoseconds: UInt64 = 0
        var packets: UInt64
        var bytes: UInt64
        var isRetransmission = false
        var opensConnection = false
        var departureUnreported = false
        var awaitsTranslation = false
        var sourceService: ServiceRef? = nil
        var destinationService: ServiceRef? = nil
        var serviceAddress: String? = nil
        /// The rarely set fields; nil while all of them are empty.
        var rare: RareStorage? = nil
    }

    /// The fields most flows leave empty.
    struct RareFields {
        var kernelDropReason: String? = nil
        var kernelDropLocation: String? = nil
        var sourceNames: [String] = []
        var destinationNames: [String] = []
        var dns: DNSInfo? = nil
    }

    final class Storage: @unchecked Sendable {
        // Mutated only while uniquely referenced (see `unique`).
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    final class RareStorage: @unchecked Sendable {
        // Mutated only while uniquely referenced (see `mutateRare`).
        var fields: RareFields
        init(_ fields: RareFields) { self.fields = fields }
    }

    private var storage: Storage

    /// Makes the box this flow's own before a change (copy-on-write).
    private mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
    }

    /// Changes the rare fields, making their box this flow's own first (or creating it) —
    /// unless `clears` (the new value is empty) and the flow has none.
    private mutating func mutateRare(clears: Bool, _ change: (inout RareFields) -> Void) {
        if clears, case .none = storage.fields.rare { return }
        unique()
        if case .some = storage.fields.rare, isKnownUniquelyReferenced(&storage.fields.rare!) {
            change(&storage.fields.rare!.fields)
        } else {
            var fields = storage.fields.rare?.fields ?? RareFields()
            change(&fields)
            storage.fields.rare = RareStorage(fields)
        }
    }

    public var time: Date {
        get { storage.fields.time }
        _modify {
            unique()
            yield &storage.fields.time
        }
    }
    public var uuid: UUID {
        get { storage.fields.uuid }
        _modify {
            unique()
            yield &storage.fields.uuid
        }
    }
    public var verdict: Verdict {
        get { storage.fields.verdict }
        _modify {
            unique()
            yield &storage.fields.verdict
        }
    }
    /// Hubble's DropReason value (e.g. 133 POLICY_DENIED), 0 when not dropped.
    public var dropReason: Int {
        get { storage.fields.dropReason }
        _modify {
            unique()
            yield &storage.fields.dropReason
        }
    }
    /// The kernel's own drop reason name (e.g. `NETFILTER_DROP`), kept next to Hubble's.
    public var kernelDropReason: String? {
        get { storage.fields.rare?.fields.kernelDropReason }
        set { mutateRare(clears: newValue == nil) { $0.kernelDropReason = newValue } }
    }
    /// Where in the kernel the packet was freed, as the kernel prints a code address
    /// (`nf_hook_slow+0x9c/0x120`); nil when the kernel's symbols are hidden from the agent.
    public var kernelDropLocation: String? {
        get { storage.fields.rare?.fields.kernelDropLocation }
        set { mutateRare(clears: newValue == nil) { $0.kernelDropLocation = newValue } }
    }
    /// Ethernet addresses (`aa:bb:cc:dd:ee:ff`) where the packet was seen; nil for drops.
    /// Kept as numbers (48 bits each): their text is only needed where a flow leaves the process.
    public var ethernet: (source: MACAddress, destination: MACAddress)? {
        get { storage.fields.ethernet }
        _modify {
            unique()
            yield &storage.fields.ethernet
        }
    }
    public var ipVersion: Int {
        get { storage.fields.ipVersion }
        _modify {
            unique()
            yield &storage.fields.ipVersion
        }
    }
    public var sourceIP: String {
        get { storage.fields.sourceIP }
        _modify {
            unique()
            yield &storage.fields.sourceIP
        }
    }
    public var destinationIP: String {
        get { storage.fields.destinationIP }
        _modify {
            unique()
            yield &storage.fields.destinationIP
        }
    }
    public var l4: Layer4 {
        get { storage.fields.l4 }
        _modify {
            unique()
            yield &storage.fields.l4
        }
    }
    public var source: Endpoint {
        get { storage.fields.source }
        _modify {
            unique()
            yield &storage.fields.source
        }
    }
    public var destination: Endpoint {
        get { storage.fields.destination }
        _modify {
            unique()
            yield &storage.fields.destination
        }
    }
    public var sourceService: ServiceRef? {
        get { storage.fields.sourceService }
        _modify {
            unique()
            yield &storage.fields.sourceService
        }
    }
    public var destinationService: ServiceRef? {
        get { storage.fields.destinationService }
        _modify {
            unique()
            yield &storage.fields.destinationService
        }
    }
    /// The Service address (`10.96.0.11:80`, `[fd00:10:96::b]:80`) the client used, when the
    /// node's NAT translated it to the backend this flow now names: the destination's on
    /// requests, the source's on replies (the end whose `…Service` is set).
    public var serviceAddress: String? {
        get { storage.fields.serviceAddress }
        _modify {
            unique()
            yield &storage.fields.serviceAddress
        }
    }
    /// DNS names the other end resolved to this flow's source address (Hubble's
    /// `source_names`), without the trailing dot.
    public var sourceNames: [String] {
        get { storage.fields.rare?.fields.sourceNames ?? [] }
        set { mutateRare(clears: newValue.isEmpty) { $0.sourceNames = newValue } }
    }
    /// DNS names this flow's source resolved to its destination address (`destination_names`).
    public var destinationNames: [String] {
        get { storage.fields.rare?.fields.destinationNames ?? [] }
        set { mutateRare(clears: newValue.isEmpty) { $0.destinationNames = newValue } }
    }
    public var nodeName: String {
        get { storage.fields.nodeName }
        _modify {
            unique()
            yield &storage.fields.nodeName
        }
    }
    public var trafficDirection: TrafficDirection {
        get { storage.fields.trafficDirection }
        _modify {
            unique()
            yield &storage.fields.trafficDirection
        }
    }
    /// nil when unknown (drops).
    public var isReply: Bool? {
        get { storage.fields.isReply }
        _modify {
            unique()
            yield &storage.fields.isReply
        }
    }
    public var observationPoint: ObservationPoint {
        get { storage.fields.observationPoint }
        _modify {
            unique()
            yield &storage.fields.observationPoint
        }
    }
    public var interface: (index: Int32, name: String)? {
        get { storage.fields.interface }
        _modify {
            unique()
            yield &storage.fields.interface
        }
    }
    public var dns: DNSInfo? {
        get { storage.fields.rare?.fields.dns }
        set { mutateRare(clears: newValue == nil) { $0.dns = newValue } }
    }
    /// A TCP segment a socket of this node sent again (tcp:tcp_retransmit_skb), source → destination
    /// as the socket sees it. Not a Hubble flow: only Retina's retransmission metric counts it.
    public var isRetransmission: Bool {
        get { storage.fields.isRetransmission }
        _modify {
            unique()
            yield &storage.fields.isRetransmission
        }
    }
    /// The report that put its connection in this observation point's connection table: the
    /// first packet of it seen here (trace reason NEW).
    public var opensConnection: Bool {
        get { storage.fields.opensConnection }
        _modify {
            unique()
            yield &storage.fields.opensConnection
        }
    }
    /// A packet entering a pod from another pod of this node whose own interface did not report
    /// it leaving (monitor aggregation above `none`, as Cilium's default): this `to-endpoint`
    /// flow stands for that `from-endpoint` one too. Not on the wire; the metrics counted
    /// where a packet leaves its pod count it here.
    public var departureUnreported: Bool {
        get { storage.fields.departureUnreported }
        _modify {
            unique()
            yield &storage.fields.departureUnreported
        }
    }
    /// The flow's destination is a Service address the node had not translated when the flow
    /// was enriched: the reply that carries the translation may follow in the next poll (see
    /// `FlowPipeline`). Not on the wire.
    public var awaitsTranslation: Bool {
        get { storage.fields.awaitsTranslation }
        _modify {
            unique()
            yield &storage.fields.awaitsTranslation
        }
    }
    /// Whether the flow reports its packet leaving its source pod: a `from-endpoint` flow, or a
    /// `to-endpoint` one standing for it (`departureUnreported`).
    public var reportsDeparture: Bool { observationPoint == .fromEndpoint || departureUnreported }
    /// Hubble's `trace_reason`, as Cilium's connection tracking gives it: RELATED for an ICMP
    /// error, REPLY from a connection's responder, NEW for the report that opened the
    /// connection here, ESTABLISHED for the others; nil where the reply status is unknown
    /// and for what is not a trace event (drops, L7 records).
    public var traceReason: TraceReason? {
        guard isTrace, let isReply else { return nil }
        if l4.isICMPError { return .related }
        if isReply { return .reply }
        return opensConnection ? .new : .established
    }
    /// Whether the flow carries DNS, asked without copying the DNS details out.
    public var hasDNS: Bool {
        if case .none = storage.fields.rare?.fields.dns { return false }
        return true
    }
    /// The endpoints' box identities (`Endpoint.boxIdentity`), without copying them out.
    public var sourceBoxIdentity: ObjectIdentifier { storage.fields.source.boxIdentity }
    public var destinationBoxIdentity: ObjectIdentifier { storage.fields.destination.boxIdentity }
    public var latencyNanoseconds: UInt64 {
        get { storage.fields.latencyNanoseconds }
        _modify {
            unique()
            yield &storage.fields.latencyNanoseconds
        }
    }
    public var packets: UInt64 {
        get { storage.fields.packets }
        _modify {
            unique()
            yield &storage.fields.packets
        }
    }
    public var bytes: UInt64 {
        get { storage.fields.bytes }
        _modify {
            unique()
            yield &storage.fields.bytes
        }
    }

    public init(
        time: Date, uuid: UUID = UUID(), verdict: Verdict, ipVersion: Int, sourceIP: String, destinationIP: String,
        l4: Layer4, nodeName: String, trafficDirection: TrafficDirection, isReply: Bool?,
        observationPoint: ObservationPoint, interface: (index: Int32, name: String)? = nil, packets: UInt64 = 1,
        bytes: UInt64 = 0
    ) {
        storage = Storage(
            Fields(
                time: time, uuid: uuid, verdict: verdict, ipVersion: ipVersion, sourceIP: sourceIP,
                destinationIP: destinationIP, l4: l4, nodeName: nodeName, trafficDirection: trafficDirection,
                isReply: isReply, observationPoint: observationPoint, interface: interface, packets: packets,
                bytes: bytes))
    }

    /// Sets what enrichment learnt about both ends in one step (one uniqueness check): a nil
    /// endpoint leaves that end as it is; services are replaced.
    public mutating func setIdentities(
        source: consuming Endpoint?, destination: consuming Endpoint?, sourceService: ServiceRef?,
        destinationService: ServiceRef?
    ) {
        unique()
        if let source { storage.fields.source = source }
        if let destination { storage.fields.destination = destination }
        // Most addresses are no service and flows start without one: skip storing nil over nil.
        if case .some = sourceService {
            storage.fields.sourceService = sourceService
        } else if case .some = storage.fields.sourceService {
            storage.fields.sourceService = nil
        }
        if case .some = destinationService {
            storage.fields.destinationService = destinationService
        } else if case .some = storage.fields.destinationService {
            storage.fields.destinationService = nil
        }
    }
}
