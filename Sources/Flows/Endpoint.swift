import Foundation

/// Kubernetes identity of one side of a flow (flow.Endpoint).
public struct Endpoint: Sendable, Equatable {
    /// The fields live in one shared, copy-on-write box: a flow copied between pipeline stages
    /// then costs one reference count per endpoint instead of one per field.
    /// Every field of an endpoint, in one value: copying the box copies them all.
    struct Fields {
        var namespace = ""
        var podName = ""
        var labels: [String] = []
        var workloads: [(kind: String, name: String)] = []
        var clusterName = ""
        var nodeName = ""
        var podQualifiedName = ""
        var identity: UInt32 = 0
        /// The reserved identity of an endpoint without a namespace (0: world, printed as such).
        var reserved: UInt32 = 0
    }

    final class Storage: @unchecked Sendable {
        // Mutated only while uniquely referenced (see `mutate`).
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }

        static let empty = Storage(Fields())
    }

    private var storage: Storage

    public var namespace: String {
        get { storage.fields.namespace }
        set { mutate { $0.namespace = newValue } }
    }
    public var podName: String {
        get { storage.fields.podName }
        set { mutate { $0.podName = newValue } }
    }
    /// `k8s:key=value`, sorted, as Hubble shows them.
    public var labels: [String] {
        get { storage.fields.labels }
        set { mutate { $0.labels = newValue } }
    }
    public var workloads: [(kind: String, name: String)] {
        get { storage.fields.workloads }
        set { mutate { $0.workloads = newValue } }
    }
    public var clusterName: String {
        get { storage.fields.clusterName }
        set { mutate { $0.clusterName = newValue } }
    }
    /// The node a pod runs on (empty when not a pod, or unknown). Not on Hubble's wire: it
    /// tells a pod on this node from one elsewhere (Retina's local context) and names the
    /// node whose zone a metric reports.
    public var nodeName: String {
        get { storage.fields.nodeName }
        set { mutate { $0.nodeName = newValue } }
    }
    /// The identity of this endpoint's box: two endpoints with the same box are the same
    /// endpoint (a changed endpoint gets a new box), so consumers may remember per-endpoint
    /// answers by it — as long as they keep the endpoint alive.
    public var boxIdentity: ObjectIdentifier { ObjectIdentifier(storage) }

    /// `namespace/pod`, or empty: kept ready because every flow's metrics need it.
    public var podQualifiedName: String { storage.fields.podQualifiedName }

    /// A numeric identity in Hubble's range for cluster identities (256…65535), the same for
    /// every pod with the same namespace and labels on every node — what Cilium's security
    /// identity means to Hubble users (`(ID:12345)`), derived without a CNI. For an address
    /// without a pod, the reserved identity (`host` 1, `remote-node` 6, `kube-apiserver` 7), or
    /// 0 for an unknown address (shown as `world`, 2).
    public var identity: UInt32 { storage.fields.identity }

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
        storage = Storage(Fields())
        storage.fields.labels = [reserved.label]
        storage.fields.reserved = reserved.rawValue
        storage.fields.identity = reserved.rawValue
    }

    /// Shared endpoints for the reserved identities (one box each for every flow).
    public static let host = Endpoint(reserved: .host)
    public static let remoteNode = Endpoint(reserved: .remoteNode)
    public static let kubeAPIServer = Endpoint(reserved: .kubeAPIServer)

    /// The reserved identity of an endpoint without a pod, nil for pods and unknown addresses.
    public var reservedIdentity: ReservedIdentity? { ReservedIdentity(rawValue: storage.fields.reserved) }

    public init(
        namespace: String, podName: String, labels: [String], workloads: [(kind: String, name: String)],
        clusterName: String, nodeName: String = ""
    ) {
        var fields = Fields(
            namespace: namespace, podName: podName, labels: labels, workloads: workloads, clusterName: clusterName,
            nodeName: nodeName)
        Self.derive(&fields)
        storage = Storage(fields)
    }

    /// Changes fields, then keeps the derived ones (qualified name, identity) in step.
    private mutating func mutate(_ change: (inout Fields) -> Void) {
        if !isKnownUniquelyReferenced(&storage) || storage === Storage.empty { storage = Storage(storage.fields) }
        change(&storage.fields)
        Self.derive(&storage.fields)
    }

    private static func derive(_ fields: inout Fields) {
        fields.podQualifiedName = fields.podName.isEmpty ? "" : "\(fields.namespace)/\(fields.podName)"
        fields.identity =
            fields.namespace.isEmpty
            ? fields.reserved : Endpoint.identity(namespace: fields.namespace, labels: fields.labels)
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
