import Foundation
import KubernetesModel

/// A resource the server serves: where it lives in the API and how kubectl prints it.
struct Resource: Sendable, Hashable {
    /// The plural name in URLs: `pods`.
    var name: String
    var singular: String
    var kind: String
    /// "" for the core group.
    var group: String
    var version: String
    var namespaced: Bool
    var shortNames: [String]

    var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    var listKind: String { kind + "List" }

    static let pods = Resource(
        name: "pods", singular: "pod", kind: "Pod", group: "", version: "v1", namespaced: true, shortNames: ["po"])
    static let services = Resource(
        name: "services", singular: "service", kind: "Service", group: "", version: "v1", namespaced: true,
        shortNames: ["svc"])
    static let nodes = Resource(
        name: "nodes", singular: "node", kind: "Node", group: "", version: "v1", namespaced: false, shortNames: ["no"])
    static let namespaces = Resource(
        name: "namespaces", singular: "namespace", kind: "Namespace", group: "", version: "v1", namespaced: false,
        shortNames: ["ns"])
    static let endpointSlices = Resource(
        name: "endpointslices", singular: "endpointslice", kind: "EndpointSlice", group: "discovery.k8s.io",
        version: "v1", namespaced: true, shortNames: [])
    static let replicaSets = Resource(
        name: "replicasets", singular: "replicaset", kind: "ReplicaSet", group: "apps", version: "v1",
        namespaced: true, shortNames: ["rs"])
    static let deployments = Resource(
        name: "deployments", singular: "deployment", kind: "Deployment", group: "apps", version: "v1",
        namespaced: true, shortNames: ["deploy"])

    static let all: [Resource] = [pods, services, nodes, namespaces, endpointSlices, replicaSets, deployments]

    static func find(group: String, version: String, name: String) -> Resource? {
        all.first { $0.group == group && $0.version == version && $0.name == name }
    }

    /// kubectl's printer columns for the resource (Name first; priority 1 only with `-o wide`).
    var columns: [Column] {
        switch self {
        case .pods:
            [
                .name, .init("Ready", "The aggregate readiness state of this pod for accepting traffic."),
                .init("Status", "The aggregate status of the containers in this pod."),
                .init("Restarts", "The number of times the containers in this pod have been restarted."), .age,
                .init("IP", "IP address allocated to the pod.", wide: true),
                .init("Node", "Name of the node this pod is assigned to.", wide: true),
                .init("Nominated Node", "Name of the node where the pod is nominated.", wide: true),
                .init("Readiness Gates", "Pod readiness gates.", wide: true),
            ]
        case .services:
            [
                .name, .init("Type", "The type of the service."), .init("Cluster-IP", "The cluster IP of the service."),
                .init("External-IP", "The external IP of the service."),
                .init("Port(s)", "The ports of the service."), .age,
                .init("Selector", "The label selector of the service.", wide: true),
            ]
        case .endpointSlices:
            [
                .name, .init("AddressType", "Type of the addresses of the endpoints."),
                .init("Ports", "Ports of the endpoints."), .init("Endpoints", "Addresses of the endpoints."), .age,
            ]
        case .nodes:
            [
                .name, .init("Status", "The status of the node."), .init("Roles", "The roles of the node."), .age,
                .init("Version", "Kubelet version of the node."),
                .init("Internal-IP", "The node's internal IP.", wide: true),
                .init("External-IP", "The node's external IP.", wide: true),
                .init("OS-Image", "The node's operating system image.", wide: true),
                .init("Kernel-Version", "The node's kernel version.", wide: true),
                .init("Container-Runtime", "The node's container runtime.", wide: true),
            ]
        case .namespaces: [.name, .init("Status", "The status of the namespace."), .age]
        case .deployments:
            [
                .name, .init("Ready", "Number of ready replicas out of the desired."),
                .init("Up-to-date", "Replicas updated to the desired state."),
                .init("Available", "Replicas available to users."), .age,
                .init("Selector", "The label selector of the deployment.", wide: true),
            ]
        default:
            [
                .name, .init("Desired", "Number of desired pods."), .init("Current", "Number of pods created."),
                .init("Ready", "Number of ready pods."), .age,
                .init("Selector", "The label selector of the replica set.", wide: true),
            ]
        }
    }
}

/// A column of a `Table` (meta.k8s.io/v1).
struct Column: Encodable, Sendable, Hashable {
    var name: String
    var type = "string"
    var format = ""
    var description: String
    var priority = 0

    init(_ name: String, _ description: String, wide: Bool = false, type: String = "string", format: String = "") {
        self.name = name
        self.description = description
        self.priority = wide ? 1 : 0
        self.type = type
        self.format = format
    }

    static let name = Column(
        "Name", "Name must be unique within a namespace.", type: "string", format: "name")
    static let age = Column("Age", "Time since the object was created.")
}

/// A table cell: text, a number, or an age rendered when the table is served.
enum Cell: Sendable, Equatable {
    case text(String)
    case number(Int)
    case age(Date?)
}

extension Resource {
    /// The row kubectl prints for an object of this resource.
    func cells(_ object: any KubeObject) -> [Cell] {
        let age = Cell.age(object.metadata.created)
        let name = Cell.text(object.metadata.name)
        switch object {
        case let pod as Pod:
            let phase = pod.status?.phase ?? "Pending"
            let containers = pod.spec?.containers?.count ?? 1
            return [
                name, .text("\(phase == "Running" ? containers : 0)/\(containers)"), .text(phase), .text("0"), age,
                .text(pod.status?.podIP ?? "<none>"), .text(pod.spec?.nodeName ?? "<none>"), .text("<none>"),
                .text("<none>"),
            ]
        case let service as Service:
            let ports = (service.spec.ports ?? []).map { "\($0.port)/\($0.protocol ?? "TCP")" }
            return [
                name, .text(service.spec.type ?? "ClusterIP"), .text(service.spec.clusterIP ?? "<none>"),
                .text("<none>"), .text(ports.isEmpty ? "<none>" : ports.joined(separator: ",")), age,
                .text(Self.selectorText(service.spec.selector)),
            ]
        case let slice as EndpointSlice:
            let ports = (slice.ports ?? []).compactMap { $0.port.map(String.init) }
            let addresses = (slice.endpoints ?? []).flatMap(\.addresses)
            var endpoints = addresses.prefix(3).joined(separator: ",")
            if addresses.count > 3 { endpoints += " + \(addresses.count - 3) more..." }
            return [
                name, .text(slice.addressType), .text(ports.isEmpty ? "<unset>" : ports.joined(separator: ",")),
                .text(addresses.isEmpty ? "<unset>" : endpoints), age,
            ]
        case let node as Node:
            let ready = node.status?.conditions?.first { $0.type == "Ready" }?.status == "True"
            let info = node.status?.nodeInfo
            return [
                name, .text(ready ? "Ready" : "NotReady"), .text("<none>"), age, .text(info?.kubeletVersion ?? ""),
                .text(node.internalIPs.first ?? "<none>"), .text("<none>"), .text(info?.osImage ?? "<unknown>"),
                .text(info?.kernelVersion ?? "<unknown>"), .text(info?.containerRuntimeVersion ?? "<unknown>"),
            ]
        case let namespace as Namespace:
            return [name, .text(namespace.status?.phase ?? "Active"), age]
        case let deployment as AppsWorkload where deployment.kind == "Deployment":
            return [
                name, .text("\(deployment.status.readyReplicas)/\(deployment.spec.replicas)"),
                .number(deployment.status.updatedReplicas), .number(deployment.status.availableReplicas), age,
                .text(Self.selectorText(deployment.spec.selector.matchLabels)),
            ]
        case let set as AppsWorkload:
            return [
                name, .number(set.spec.replicas), .number(set.status.replicas), .number(set.status.readyReplicas), age,
                .text(Self.selectorText(set.spec.selector.matchLabels)),
            ]
        default:
            return [name, age]
        }
    }

    static func selectorText(_ selector: [String: String]?) -> String {
        guard let selector, !selector.isEmpty else { return "<none>" }
        return selector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}

/// Ages as kubectl prints them (`45s`, `3m12s`, `17m`, `5h3m`, `2d4h`, `40d`).
enum Age {
    static func text(since date: Date?, now: Date = Date()) -> String {
        guard let date else { return "<unknown>" }
        let seconds = Int(now.timeIntervalSince(date))
        if seconds < -1 { return "<invalid>" }
        let s = max(seconds, 0)
        let minutes = s / 60
        let hours = s / 3600
        let days = s / 86400
        switch s {
        case ..<120: return "\(s)s"
        case ..<600: return s % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(s % 60)s"
        case ..<10800: return "\(minutes)m"
        case ..<28800: return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m"
        case ..<172_800: return "\(hours)h"
        case ..<691_200: return hours % 24 == 0 ? "\(days)d" : "\(days)d\(hours % 24)h"
        case ..<(86400 * 365 * 2): return "\(days)d"
        default: return "\(days / 365)y"
        }
    }
}
