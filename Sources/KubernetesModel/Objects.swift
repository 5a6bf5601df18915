import Foundation

// Kubernetes API objects as JSON, trimmed to the fields Osprey reads (the agent's source) or
// serves (the lab's API server). Field names are the API's; a decoder skips every other field,
// so a real server's full objects decode into these.

/// `metadata` of every object.
public struct ObjectMeta: Codable, Sendable, Equatable {
    public var name: String
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    /// RFC 3339, as the API writes it.
    public var creationTimestamp: String?
    public var labels: [String: String]?
    public var ownerReferences: [OwnerReference]?

    public init(
        name: String, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil,
        creationTimestamp: String? = nil, labels: [String: String]? = nil, ownerReferences: [OwnerReference]? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.creationTimestamp = creationTimestamp
        self.labels = labels
        self.ownerReferences = ownerReferences
    }

    /// `namespace/name`, or the name of a cluster-scoped object: the object's key in a cache.
    public var key: String { namespace.map { "\($0)/\(name)" } ?? name }

    /// When the object was created; nil when absent or not RFC 3339.
    public var created: Date? { creationTimestamp.flatMap(KubeTime.parse) }
}

public struct OwnerReference: Codable, Sendable, Equatable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?

    public init(apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = true) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
    }
}

/// Times as the API writes them: RFC 3339 in UTC, whole seconds.
public enum KubeTime {
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
    }

    public static func parse(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601))
            ?? (try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }
}

/// Every object kind the agent watches or the lab serves.
public protocol KubeObject: Codable, Sendable {
    var metadata: ObjectMeta { get set }
    /// Equal to `other` but perhaps for the resourceVersion: not a change worth a new one.
    func sameContent(as other: any KubeObject) -> Bool
}

extension KubeObject where Self: Equatable {
    public func sameContent(as other: any KubeObject) -> Bool {
        guard var other = other as? Self else { return false }
        var mine = self
        mine.metadata.resourceVersion = nil
        other.metadata.resourceVersion = nil
        return mine == other
    }
}

// MARK: - core/v1

public struct Pod: KubeObject, Equatable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Pod"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var nodeName: String?
        public var hostNetwork: Bool?
        public var containers: [Container]?
        public init(nodeName: String?, hostNetwork: Bool? = nil, containers: [Container]? = nil) {
            self.nodeName = nodeName
            self.hostNetwork = hostNetwork
            self.containers = containers
        }
    }

    public struct Container: Codable, Sendable, Equatable {
        public var name: String
        public var image: String?
        public init(name: String, image: String?) {
            self.name = name
            self.image = image
        }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var phase: String?
        public var podIP: String?
        public var podIPs: [PodIP]?
        public var hostIP: String?
        public var startTime: String?
        public init(phase: String?, podIP: String?, podIPs: [PodIP]?, hostIP: String? = nil, startTime: String? = nil) {
            self.phase = phase
            self.podIP = podIP
            self.podIPs = podIPs
            self.hostIP = hostIP
            self.startTime = startTime
        }
    }

    public struct PodIP: Codable, Sendable, Equatable {
        public var ip: String
        public init(ip: String) { self.ip = ip }
    }

    public init(metadata: ObjectMeta, spec: Spec?, status: Status?) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// Every address of the pod, IPv4 first as the API lists them (`podIPs`, else `podIP`).
    public var ips: [String] {
        if let podIPs = status?.podIPs, !podIPs.isEmpty { return podIPs.map(\.ip) }
        return status?.podIP.map { [$0] } ?? []
    }
}

public struct Service: KubeObject, Equatable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Service"
    public var metadata: ObjectMeta
    public var spec: Spec

    public struct Spec: Codable, Sendable, Equatable {
        public var type: String?
        public var clusterIP: String?
        public var clusterIPs: [String]?
        public var ports: [Port]?
        public var selector: [String: String]?
        public init(
            type: String? = "ClusterIP", clusterIP: String?, clusterIPs: [String]?, ports: [Port]?,
            selector: [String: String]?
        ) {
            self.type = type
            self.clusterIP = clusterIP
            self.clusterIPs = clusterIPs
            self.ports = ports
            self.selector = selector
        }
    }

    public struct Port: Codable, Sendable, Equatable {
        public var name: String?
        public var `protocol`: String?
        public var port: Int
        public var targetPort: IntOrString?
        public init(name: String?, protocol: String?, port: Int, targetPort: IntOrString?) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
            self.targetPort = targetPort
        }
    }

    public init(metadata: ObjectMeta, spec: Spec) {
        self.metadata = metadata
        self.spec = spec
    }

    /// Every ClusterIP (`clusterIPs`, else `clusterIP`), without `None` (headless).
    public var addresses: [String] {
        let all = spec.clusterIPs ?? spec.clusterIP.map { [$0] } ?? []
        return all.filter { !$0.isEmpty && $0 != "None" }
    }
}

/// A port given as a number or as a named container port.
public enum IntOrString: Codable, Sendable, Equatable {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self = .int(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let number): try container.encode(number)
        case .string(let text): try container.encode(text)
        }
    }
}

public struct Node: KubeObject, Equatable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Node"
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var podCIDR: String?
        public var podCIDRs: [String]?
        public init(podCIDR: String?, podCIDRs: [String]?) {
            self.podCIDR = podCIDR
            self.podCIDRs = podCIDRs
        }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var addresses: [Address]?
        public var conditions: [Condition]?
        public var nodeInfo: NodeInfo?
        public init(addresses: [Address]?, conditions: [Condition]?, nodeInfo: NodeInfo?) {
            self.addresses = addresses
            self.conditions = conditions
            self.nodeInfo = nodeInfo
        }
    }

    public struct Address: Codable, Sendable, Equatable {
        public var type: String
        public var address: String
        public init(type: String, address: String) {
            self.type = type
            self.address = address
        }
    }

    public struct Condition: Codable, Sendable, Equatable {
        public var type: String
        public var status: String
        public init(type: String, status: String) {
            self.type = type
            self.status = status
        }
    }

    public struct NodeInfo: Codable, Sendable, Equatable {
        public var kubeletVersion: String?
        public var osImage: String?
        public var kernelVersion: String?
        public var containerRuntimeVersion: String?
        public init(kubeletVersion: String?, osImage: String?, kernelVersion: String?, containerRuntimeVersion: String?)
        {
            self.kubeletVersion = kubeletVersion
            self.osImage = osImage
            self.kernelVersion = kernelVersion
            self.containerRuntimeVersion = containerRuntimeVersion
        }
    }

    public init(metadata: ObjectMeta, spec: Spec?, status: Status?) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// The node's InternalIP addresses, in the API's order.
    public var internalIPs: [String] { (status?.addresses ?? []).filter { $0.type == "InternalIP" }.map(\.address) }
    public var podCIDRs: [String] { spec?.podCIDRs ?? spec?.podCIDR.map { [$0] } ?? [] }
}

public struct Namespace: KubeObject, Equatable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Namespace"
    public var metadata: ObjectMeta
    public var status: Status?

    public struct Status: Codable, Sendable, Equatable {
        public var phase: String?
        public init(phase: String?) { self.phase = phase }
    }

    public init(metadata: ObjectMeta, status: Status? = Status(phase: "Active")) {
        self.metadata = metadata
        self.status = status
    }
}

// MARK: - discovery.k8s.io/v1

public struct EndpointSlice: KubeObject, Equatable {
    public var apiVersion: String? = "discovery.k8s.io/v1"
    public var kind: String? = "EndpointSlice"
    public var metadata: ObjectMeta
    public var addressType: String
    public var endpoints: [Endpoint]?
    public var ports: [Port]?

    /// The label naming the Service a slice belongs to.
    public static let serviceNameLabel = "kubernetes.io/service-name"

    public struct Endpoint: Codable, Sendable, Equatable {
        public var addresses: [String]
        public var conditions: Conditions?
        public var nodeName: String?
        public var targetRef: TargetRef?
        public init(addresses: [String], conditions: Conditions?, nodeName: String?, targetRef: TargetRef?) {
            self.addresses = addresses
            self.conditions = conditions
            self.nodeName = nodeName
            self.targetRef = targetRef
        }
    }

    public struct Conditions: Codable, Sendable, Equatable {
        public var ready: Bool?
        public init(ready: Bool?) { self.ready = ready }
    }

    public struct TargetRef: Codable, Sendable, Equatable {
        public var kind: String?
        public var namespace: String?
        public var name: String?
        public var uid: String?
        public init(kind: String?, namespace: String?, name: String?, uid: String?) {
            self.kind = kind
            self.namespace = namespace
            self.name = name
            self.uid = uid
        }
    }

    public struct Port: Codable, Sendable, Equatable {
        public var name: String?
        public var `protocol`: String?
        public var port: Int?
        public init(name: String?, protocol: String?, port: Int?) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
        }
    }

    public init(metadata: ObjectMeta, addressType: String, endpoints: [Endpoint]?, ports: [Port]?) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    /// The Service this slice belongs to (`namespace/name`), from its service-name label.
    public var serviceKey: String? {
        guard let namespace = metadata.namespace, let name = metadata.labels?[Self.serviceNameLabel] else { return nil }
        return "\(namespace)/\(name)"
    }

    /// Addresses of the endpoints that are ready (a missing condition counts as ready, as the API says).
    public var readyAddresses: [String] {
        (endpoints ?? []).filter { $0.conditions?.ready ?? true }.flatMap(\.addresses)
    }
}

// MARK: - apps/v1 (served by the lab for kubectl; the agent names workloads without them)

/// A ReplicaSet or a Deployment: the same fields serve both (`kind` tells which).
public struct AppsWorkload: KubeObject, Equatable {
    public var apiVersion: String? = "apps/v1"
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: WorkloadSpec
    public var status: WorkloadStatus

    public init(kind: String, metadata: ObjectMeta, spec: WorkloadSpec, status: WorkloadStatus) {
        self.kind = kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct WorkloadSpec: Codable, Sendable, Equatable {
    public var replicas: Int
    public var selector: LabelSelector
    public init(replicas: Int, selector: LabelSelector) {
        self.replicas = replicas
        self.selector = selector
    }
}

public struct LabelSelector: Codable, Sendable, Equatable {
    public var matchLabels: [String: String]
    public init(matchLabels: [String: String]) { self.matchLabels = matchLabels }
}

public struct WorkloadStatus: Codable, Sendable, Equatable {
    public var replicas: Int
    public var readyReplicas: Int
    public var availableReplicas: Int
    public var updatedReplicas: Int
    public init(replicas: Int) {
        self.replicas = replicas
        readyReplicas = replicas
        availableReplicas = replicas
        updatedReplicas = replicas
    }
}
