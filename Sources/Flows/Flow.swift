import Foundation

/// Hubble's verdicts (flow.Verdict), by their wire values.
public enum Verdict: Int, Sendable, CustomStringConvertible {
    case unknown = 0, forwarded = 1, dropped = 2

    public var description: String {
        switch self {
        case .unknown: "VERDICT_UNKNOWN"
        case .forwarded: "FORWARDED"
        case .dropped: "DROPPED"
        }
    }
}

/// Where a flow was seen (flow.TraceObservationPoint), by wire value.
public enum ObservationPoint: Int, Sendable {
    case unknown = 0, fromEndpoint = 5, toEndpoint = 101

    /// The trace sub-type name Hubble prints and counts (`from-endpoint`, `to-endpoint`).
    public var name: String {
        switch self {
        case .unknown: "unknown"
        case .fromEndpoint: "from-endpoint"
        case .toEndpoint: "to-endpoint"
        }
    }

    /// Monitor trace sub_type (CiliumEventType.sub_type) of the point.
    public var traceSubType: Int {
        switch self {
        case .unknown: 0
        case .fromEndpoint: 5
        case .toEndpoint: 0
        }
    }
}

/// flow.TrafficDirection, by wire value.
public enum TrafficDirection: Int, Sendable {
    case unknown = 0, ingress = 1, egress = 2
}

/// The L4 part of a flow.
public enum Layer4: Sendable, Equatable {
    case tcp(sourcePort: UInt16, destinationPort: UInt16, flags: TCPFlags)
    case udp(sourcePort: UInt16, destinationPort: UInt16)
    case icmpv4(type: UInt8, code: UInt8)
    case icmpv6(type: UInt8, code: UInt8)
    case other(protocolNumber: UInt8)

    /// Hubble's protocol name for metrics (`TCP`, `UDP`, `ICMPv4`, `ICMPv6`, `Unknown L4`).
    public var protocolName: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .icmpv4: "ICMPv4"
        case .icmpv6: "ICMPv6"
        case .other: "Unknown L4"
        }
    }

    public var ports: (source: UInt16, destination: UInt16) {
        switch self {
        case .tcp(let s, let d, _), .udp(let s, let d): (s, d)
        default: (0, 0)
        }
    }

    /// The same L4 header with other ports (TCP and UDP; others have none).
    public func withPorts(source: UInt16, destination: UInt16) -> Layer4 {
        switch self {
        case .tcp(_, _, let flags): .tcp(sourcePort: source, destinationPort: destination, flags: flags)
        case .udp: .udp(sourcePort: source, destinationPort: destination)
        default: self
        }
    }

    /// The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    public var protocolNumber: UInt8 {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .icmpv4: 1
        case .icmpv6: 58
        case .other(let number): number
        }
    }
}

/// The TCP flags byte, with Hubble's names.
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)

    /// Names in the order Hubble prints them: SYN, ACK, RST, FIN, PSH, URG, ECE, CWR.
    public var names: [String] {
        [
            (TCPFlags.syn, "SYN"), (.ack, "ACK"), (.rst, "RST"), (.fin, "FIN"), (.psh, "PSH"), (.urg, "URG"),
            (.ece, "ECE"),
            (.cwr, "CWR"),
        ].compactMap { contains($0.0) ? $0.1 : nil }
    }
}

/// Cilium's reserved identities that Osprey assigns to addresses without a pod: their numbers
/// and `reserved:` labels mean the same as on a Cilium cluster.
public enum ReservedIdentity: UInt32, Sendable, CaseIterable {
    /// An address of the node that reports the flow.
    case host = 1
    /// An address outside the cluster: no pod, node or Service has it.
    case world = 2
    /// An address of another node of the cluster.
    case remoteNode = 6
    /// An address of the Kubernetes API server (the endpoints of `default/kubernetes`).
    case kubeAPIServer = 7

    /// The name Hubble prints (`(host)`) and filters take (`--identity remote-node`).
    public var name: String {
        switch self {
        case .host: "host"
        case .world: "world"
        case .remoteNode: "remote-node"
        case .kubeAPIServer: "kube-apiserver"
        }
    }

    /// The endpoint label: `reserved:host`.
    public var label: String { "reserved:\(name)" }
}

/// Kubernetes identity of one side of a flow (flow.Endpoint).
public struct Endpoint: Sendable, Equatable {
    /// The fields live in one shared, copy-on-write box: a flow copied between pipeline stages
    /// then costs one reference count per endpoint instead of one per field.
    final class Storage: @unchecked Sendable {
        // Mutated only while uniquely referenced (see `mutate`).
        var namespace = ""
        var podName = ""
        var labels: [String] = []
        var workloads: [(kind: String, name: String)] = []
        var clusterName = ""
        var podQualifiedName = ""
        var identity: UInt32 = 0
        /// The reserved identity of an endpoint without a namespace (0: world, printed as such).
        var reserved: UInt32 = 0

        static let empty = Storage()

        func copy() -> Storage {
            let copy = Storage()
            copy.namespace = namespace
            copy.podName = podName
            copy.labels = labels
            copy.workloads = workloads
            copy.clusterName = clusterName
            copy.podQualifiedName = podQualifiedName
            copy.identity = identity
            copy.reserved = reserved
            return copy
        }
    }

    private var storage: Storage

    public var namespace: String {
        get { storage.namespace }
        set { mutate { $0.namespace = newValue } }
    }
    public var podName: String {
        get { storage.podName }
        set { mutate { $0.podName = newValue } }
    }
    /// `k8s:key=value`, sorted, as Hubble shows them.
    public var labels: [String] {
        get { storage.labels }
        set { mutate { $0.labels = newValue } }
    }
    public var workloads: [(kind: String, name: String)] {
        get { storage.workloads }
        set { mutate { $0.workloads = newValue } }
    }
    public var clusterName: String {
        get { storage.clusterName }
        set { mutate { $0.clusterName = newValue } }
    }
    /// The identity of this endpoint's box: two endpoints with the same box are the same
    /// endpoint (a changed endpoint gets a new box), so consumers may remember per-endpoint
    /// answers by it — as long as they keep the endpoint alive.
    public var boxIdentity: ObjectIdentifier { ObjectIdentifier(storage) }

    /// `namespace/pod`, or empty: kept ready because every flow's metrics need it.
    public var podQualifiedName: String { storage.podQualifiedName }

    /// A numeric identity in Hubble's range for cluster identities (256…65535), the same for
    /// every pod with the same namespace and labels on every node — what Cilium's security
    /// identity means to Hubble users (`(ID:12345)`), derived without a CNI. For an address
    /// without a pod, the reserved identity (`host` 1, `remote-node` 6, `kube-apiserver` 7), or
    /// 0 for an unknown address (shown as `world`, 2).
    public var identity: UInt32 { storage.identity }

    /// The identity for a namespace and label set: FNV-1a over them, folded into 256…65535.
    public static func identity(namespace: String, labels: [String]) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in namespace.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        for label in labels {
            hash = (hash ^ 0) &* 16_777_619
            for byte in label.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        }
        return 256 + hash % (65536 - 256)
    }

    /// An unknown endpoint (shares one empty box: creating it allocates nothing).
    public init() { storage = Storage.empty }

    /// An address without a pod that Cilium gives a reserved identity (labels `reserved:…`).
    public init(reserved: ReservedIdentity) {
        storage = Storage()
        storage.labels = [reserved.label]
        storage.reserved = reserved.rawValue
        storage.identity = reserved.rawValue
    }

    /// Shared endpoints for the reserved identities (one box each for every flow).
    public static let host = Endpoint(reserved: .host)
    public static let remoteNode = Endpoint(reserved: .remoteNode)
    public static let kubeAPIServer = Endpoint(reserved: .kubeAPIServer)

    /// The reserved identity of an endpoint without a pod, nil for pods and unknown addresses.
    public var reservedIdentity: ReservedIdentity? { ReservedIdentity(rawValue: storage.reserved) }

    public init(
        namespace: String, podName: String, labels: [String], workloads: [(kind: String, name: String)],
        clusterName: String
    ) {
        storage = Storage()
        storage.namespace = namespace
        storage.podName = podName
        storage.labels = labels
        storage.workloads = workloads
        storage.clusterName = clusterName
        storage.podQualifiedName = podName.isEmpty ? "" : "\(namespace)/\(podName)"
        storage.identity = namespace.isEmpty ? 0 : Endpoint.identity(namespace: namespace, labels: labels)
    }

    private mutating func mutate(_ change: (Storage) -> Void) {
        if !isKnownUniquelyReferenced(&storage) || storage === Storage.empty { storage = storage.copy() }
        change(storage)
        storage.podQualifiedName = storage.podName.isEmpty ? "" : "\(storage.namespace)/\(storage.podName)"
        storage.identity =
            storage.namespace.isEmpty
            ? storage.reserved : Endpoint.identity(namespace: storage.namespace, labels: storage.labels)
    }

    public static func == (a: Endpoint, b: Endpoint) -> Bool {
        a.namespace == b.namespace && a.podName == b.podName && a.labels == b.labels
            && a.workloads.map(\.kind) == b.workloads.map(\.kind) && a.workloads.map(\.name) == b.workloads.map(\.name)
    }
}

/// A service a flow's address belongs to (flow.Service).
public struct ServiceRef: Sendable, Equatable {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }
}

/// DNS details of an L7 flow (flow.DNS).
public struct DNSInfo: Sendable, Equatable {
    /// The query name with its trailing dot, as Hubble shows it.
    public var query: String
    public var isResponse: Bool
    public var rcode: Int
    public var qtypes: [String]
    public var ips: [String] = []
    public var ttl: UInt32 = 0
    public var cnames: [String] = []
    public var rrtypes: [String] = []
    public var id: UInt16 = 0
    /// A query that got no answer within the decoder's timeout (reported as its own flow).
    public var unanswered = false

    public init(query: String, isResponse: Bool, rcode: Int, qtypes: [String]) {
        self.query = query
        self.isResponse = isResponse
        self.rcode = rcode
        self.qtypes = qtypes
    }

    /// Hubble's names for response codes (`No Error`, `Non-Existent Domain`, …).
    public var rcodeName: String { DNSMessage.rcodeNames[rcode] ?? "RCode \(rcode)" }
}

/// One flow: a packet (or a connection's packets since the last report) seen at one point.
///
/// The compact form used inside the agent; the Hubble protobuf message is built only where a
/// flow leaves the process. Its fields live in one copy-on-write box, so handing a flow from
/// stage to stage (decoder, ring, metrics, subscribers) costs one reference count, not one per
/// string, endpoint and array inside it.
public struct Flow: Sendable {
    final class Storage: @unchecked Sendable {
        // Mutated only while uniquely referenced (see `unique`).
        var time: Date
        var uuid: UUID
        var verdict: Verdict
        var dropReason: Int = 0
        var kernelDropReason: String? = nil
        var ethernet: (source: MACAddress, destination: MACAddress)? = nil
        var ipVersion: Int
        var sourceIP: String
        var destinationIP: String
        var l4: Layer4
        var source: Endpoint = Endpoint()
        var destination: Endpoint = Endpoint()
        var sourceService: ServiceRef? = nil
        var destinationService: ServiceRef? = nil
        var serviceAddress: String? = nil
        var sourceNames: [String] = []
        var destinationNames: [String] = []
        var nodeName: String
        var trafficDirection: TrafficDirection
        var isReply: Bool?
        var observationPoint: ObservationPoint
        var interface: (index: Int32, name: String)?
        var dns: DNSInfo? = nil
        var latencyNanoseconds: UInt64 = 0
        var packets: UInt64
        var bytes: UInt64

        init(
            time: Date, uuid: UUID, verdict: Verdict, ipVersion: Int, sourceIP: String, destinationIP: String,
            l4: Layer4, nodeName: String, trafficDirection: TrafficDirection, isReply: Bool?,
            observationPoint: ObservationPoint, interface: (index: Int32, name: String)?, packets: UInt64,
            bytes: UInt64
        ) {
            self.time = time
            self.uuid = uuid
            self.verdict = verdict
            self.ipVersion = ipVersion
            self.sourceIP = sourceIP
            self.destinationIP = destinationIP
            self.l4 = l4
            self.nodeName = nodeName
            self.trafficDirection = trafficDirection
            self.isReply = isReply
            self.observationPoint = observationPoint
            self.interface = interface
            self.packets = packets
            self.bytes = bytes
        }

        func copy() -> Storage {
            let copy = Storage(
                time: time, uuid: uuid, verdict: verdict, ipVersion: ipVersion, sourceIP: sourceIP,
                destinationIP: destinationIP, l4: l4, nodeName: nodeName, trafficDirection: trafficDirection,
                isReply: isReply, observationPoint: observationPoint, interface: interface, packets: packets,
                bytes: bytes)
            copy.dropReason = dropReason
            copy.kernelDropReason = kernelDropReason
            copy.ethernet = ethernet
            copy.source = source
            copy.destination = destination
            copy.sourceService = sourceService
            copy.destinationService = destinationService
            copy.serviceAddress = serviceAddress
            copy.sourceNames = sourceNames
            copy.destinationNames = destinationNames
            copy.dns = dns
            copy.latencyNanoseconds = latencyNanoseconds
            return copy
        }
    }

    private var storage: Storage

    /// Makes the box this flow's own before a change (copy-on-write).
    private mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    public var time: Date {
        get { storage.time }
        _modify {
            unique()
            yield &storage.time
        }
    }
    public var uuid: UUID {
        get { storage.uuid }
        _modify {
            unique()
            yield &storage.uuid
        }
    }
    public var verdict: Verdict {
        get { storage.verdict }
        _modify {
            unique()
            yield &storage.verdict
        }
    }
    /// Hubble's DropReason value (e.g. 133 POLICY_DENIED), 0 when not dropped.
    public var dropReason: Int {
        get { storage.dropReason }
        _modify {
            unique()
            yield &storage.dropReason
        }
    }
    /// The kernel's own drop reason name (e.g. `NETFILTER_DROP`), kept next to Hubble's.
    public var kernelDropReason: String? {
        get { storage.kernelDropReason }
        _modify {
            unique()
            yield &storage.kernelDropReason
        }
    }
    /// Ethernet addresses (`aa:bb:cc:dd:ee:ff`) where the packet was seen; nil for drops.
    /// Kept as numbers (48 bits each): their text is only needed where a flow leaves the process.
    public var ethernet: (source: MACAddress, destination: MACAddress)? {
        get { storage.ethernet }
        _modify {
            unique()
            yield &storage.ethernet
        }
    }
    public var ipVersion: Int {
        get { storage.ipVersion }
        _modify {
            unique()
            yield &storage.ipVersion
        }
    }
    public var sourceIP: String {
        get { storage.sourceIP }
        _modify {
            unique()
            yield &storage.sourceIP
        }
    }
    public var destinationIP: String {
        get { storage.destinationIP }
        _modify {
            unique()
            yield &storage.destinationIP
        }
    }
    public var l4: Layer4 {
        get { storage.l4 }
        _modify {
            unique()
            yield &storage.l4
        }
    }
    public var source: Endpoint {
        get { storage.source }
        _modify {
            unique()
            yield &storage.source
        }
    }
    public var destination: Endpoint {
        get { storage.destination }
        _modify {
            unique()
            yield &storage.destination
        }
    }
    public var sourceService: ServiceRef? {
        get { storage.sourceService }
        _modify {
            unique()
            yield &storage.sourceService
        }
    }
    public var destinationService: ServiceRef? {
        get { storage.destinationService }
        _modify {
            unique()
            yield &storage.destinationService
        }
    }
    /// The Service address (`10.96.0.11:80`, `[fd00:10:96::b]:80`) the client used, when the
    /// node's NAT translated it to the backend this flow now names: the destination's on
    /// requests, the source's on replies (the end whose `…Service` is set).
    public var serviceAddress: String? {
        get { storage.serviceAddress }
        _modify {
            unique()
            yield &storage.serviceAddress
        }
    }
    /// DNS names the other end resolved to this flow's source address (Hubble's
    /// `source_names`), without the trailing dot.
    public var sourceNames: [String] {
        get { storage.sourceNames }
        _modify {
            unique()
            yield &storage.sourceNames
        }
    }
    /// DNS names this flow's source resolved to its destination address (`destination_names`).
    public var destinationNames: [String] {
        get { storage.destinationNames }
        _modify {
            unique()
            yield &storage.destinationNames
        }
    }
    public var nodeName: String {
        get { storage.nodeName }
        _modify {
            unique()
            yield &storage.nodeName
        }
    }
    public var trafficDirection: TrafficDirection {
        get { storage.trafficDirection }
        _modify {
            unique()
            yield &storage.trafficDirection
        }
    }
    /// nil when unknown (drops).
    public var isReply: Bool? {
        get { storage.isReply }
        _modify {
            unique()
            yield &storage.isReply
        }
    }
    public var observationPoint: ObservationPoint {
        get { storage.observationPoint }
        _modify {
            unique()
            yield &storage.observationPoint
        }
    }
    public var interface: (index: Int32, name: String)? {
        get { storage.interface }
        _modify {
            unique()
            yield &storage.interface
        }
    }
    public var dns: DNSInfo? {
        get { storage.dns }
        _modify {
            unique()
            yield &storage.dns
        }
    }
    public var latencyNanoseconds: UInt64 {
        get { storage.latencyNanoseconds }
        _modify {
            unique()
            yield &storage.latencyNanoseconds
        }
    }
    public var packets: UInt64 {
        get { storage.packets }
        _modify {
            unique()
            yield &storage.packets
        }
    }
    public var bytes: UInt64 {
        get { storage.bytes }
        _modify {
            unique()
            yield &storage.bytes
        }
    }

    public init(
        time: Date, uuid: UUID = UUID(), verdict: Verdict, ipVersion: Int, sourceIP: String, destinationIP: String,
        l4: Layer4, nodeName: String, trafficDirection: TrafficDirection, isReply: Bool?,
        observationPoint: ObservationPoint, interface: (index: Int32, name: String)? = nil, packets: UInt64 = 1,
        bytes: UInt64 = 0
    ) {
        storage = Storage(
            time: time, uuid: uuid, verdict: verdict, ipVersion: ipVersion, sourceIP: sourceIP,
            destinationIP: destinationIP, l4: l4, nodeName: nodeName, trafficDirection: trafficDirection,
            isReply: isReply, observationPoint: observationPoint, interface: interface, packets: packets,
            bytes: bytes)
    }

    /// Sets what enrichment learnt about both ends in one step (one uniqueness check): a nil
    /// endpoint leaves that end as it is; services are replaced.
    public mutating func setIdentities(
        source: consuming Endpoint?, destination: consuming Endpoint?, sourceService: ServiceRef?,
        destinationService: ServiceRef?
    ) {
        unique()
        if let source { storage.source = source }
        if let destination { storage.destination = destination }
        // Most addresses are no service and flows start without one: skip storing nil over nil.
        if case .some = sourceService {
            storage.sourceService = sourceService
        } else if case .some = storage.sourceService {
            storage.sourceService = nil
        }
        if case .some = destinationService {
            storage.destinationService = destinationService
        } else if case .some = storage.destinationService {
            storage.destinationService = nil
        }
    }

    /// Hubble's flow type: L7 for DNS flows, L3_L4 otherwise.
    public var isL7: Bool { dns != nil }

    /// Monitor event type: 1 = drop, 4 = trace, 129 = L7.
    public var eventType: Int { verdict == .dropped ? 1 : (isL7 ? 129 : 4) }

    /// Monitor event sub-type: the drop reason for drops, the observation point for traces.
    public var eventSubType: Int { verdict == .dropped ? dropReason : observationPoint.traceSubType }

    /// The text Hubble prints in parentheses at the end of a flow line.
    public var summary: String {
        if let dns {
            let question = "\(dns.query) \(dns.qtypes.joined(separator: ","))"
            if dns.unanswered { return "DNS Query \(question) (no response)" }
            guard dns.isResponse else { return "DNS Query \(question)" }
            guard dns.rcode == 0 else { return "DNS Answer RCode: \(dns.rcodeName) (\(question))" }
            var text = "DNS Answer \"\(dns.ips.joined(separator: ","))\""
            if !dns.cnames.isEmpty { text += " CNAMEs: \"\(dns.cnames.joined(separator: ","))\"" }
            return text + " TTL: \(dns.ttl) (\(question))"
        }
        switch l4 {
        case .tcp(_, _, let flags): return "TCP Flags: \(flags.names.joined(separator: ", "))"
        case .udp: return "UDP"
        case .icmpv4(let type, _): return "ICMPv4 \(ICMPNames.v4[type] ?? "Type\(type)")"
        case .icmpv6(let type, _): return "ICMPv6 \(ICMPNames.v6[type] ?? "Type\(type)")"
        case .other(let number): return "IP protocol \(number)"
        }
    }
}

enum ICMPNames {
    static let v4: [UInt8: String] = [
        0: "EchoReply", 3: "DestinationUnreachable", 5: "Redirect", 8: "EchoRequest", 11: "TimeExceeded",
    ]
    static let v6: [UInt8: String] = [
        1: "DestinationUnreachable", 2: "PacketTooBig", 3: "TimeExceeded", 128: "EchoRequest", 129: "EchoReply",
        133: "RouterSolicitation", 134: "RouterAdvertisement", 135: "NeighborSolicitation",
        136: "NeighborAdvertisement",
    ]
}

/// An Ethernet address, printed as Hubble does: `aa:bb:cc:dd:ee:ff`.
public struct MACAddress: Sendable, Equatable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init(_ bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) { self.bytes = bytes }

    public var isZero: Bool { bytes == (0, 0, 0, 0, 0, 0) }

    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(17)
        for byte in [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] {
            if !text.isEmpty { text.append(UInt8(ascii: ":")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public static func == (a: MACAddress, b: MACAddress) -> Bool { a.bytes == b.bytes }
}
