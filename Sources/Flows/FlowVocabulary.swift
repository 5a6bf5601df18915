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

/// flow.TraceReason, by wire value: what the connection table said of a forwarded packet.
public enum TraceReason: Int, Sendable {
    case new = 1, established = 2, reply = 3, related = 4
}

/// flow.TrafficDirection, by wire value.
public enum TrafficDirection: Int, Sendable {
    case unknown = 0, ingress = 1, egress = 2

    /// Hubble's `traffic_direction`, as Cilium's parser gives it for a packet its connection
    /// tracking has seen: the direction of the packet's connection at the pod it crosses, not of
    /// the packet. A request leaving a pod and a reply entering one belong to a connection out of
    /// that pod (EGRESS); a request entering a pod and a reply leaving it, to one into it
    /// (INGRESS). Unknown without an observation point (drops: the enricher decides).
    public static func ofConnection(at observation: ObservationPoint, isReply: Bool?) -> TrafficDirection {
        switch observation {
        case .fromEndpoint: isReply == true ? .ingress : .egress
        case .toEndpoint: isReply == true ? .egress : .ingress
        case .unknown: .unknown
        }
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
