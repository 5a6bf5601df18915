import Foundation

/// How Retina's advanced pod-level metrics (`networkobservability_adv_*`) are labelled: Retina's
/// `enablePodLevel`, `remoteContext` and a MetricsConfiguration's `sourceLabels`,
/// `destinationLabels`, `additionalLabels` and `ttl`, as one set for every metric.
public struct PodLevelOptions: Sendable, Equatable {
    /// Local context: a series per pod on this node, unprefixed labels, `direction` says which
    /// side the pod was on. Remote context: a series per flow, `source_*` and `destination_*`.
    public enum Context: String, Sendable, CaseIterable {
        case local, remote
    }

    /// Retina's context options, in the order Retina appends their labels.
    public enum Label: String, Sendable, CaseIterable, Comparable {
        case ip, namespace, podname, workload, service, port, zone

        public static func < (a: Label, b: Label) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }

        /// The label names this option adds (`workload` adds two).
        var names: [String] {
            switch self {
            case .workload: ["workload_kind", "workload_name"]
            default: [rawValue]
            }
        }
    }

    public var context: Context
    /// The labels of a flow's source (remote) or of the local pod (local context).
    public var sourceLabels: [Label]
    /// The labels of a flow's destination (remote context only, as in Retina).
    public var destinationLabels: [Label]
    /// Whether forward metrics carry `is_reply` (Retina's `additionalLabels: [is_reply]`).
    public var isReply: Bool
    /// Seconds after which a series nobody updated is removed (0: never), as Retina's `ttl`.
    public var ttl: Double

    /// Retina's defaults (`DefaultCtxOptions`): `service` and `port` are left out on purpose.
    public static let defaultLabels: [Label] = [.ip, .namespace, .podname, .workload]

    public init(
        context: Context = .local, sourceLabels: [Label] = PodLevelOptions.defaultLabels,
        destinationLabels: [Label] = PodLevelOptions.defaultLabels, isReply: Bool = false, ttl: Double = 0
    ) {
        self.context = context
        self.sourceLabels = Array(Set(sourceLabels)).sorted()
        self.destinationLabels = Array(Set(destinationLabels)).sorted()
        self.isReply = isReply
        self.ttl = ttl
    }

    /// Label names of one side, in order: unprefixed in local context, else with `prefix`.
    func names(_ labels: [Label], prefix: String) -> [String] {
        labels.flatMap(\.names).map { context == .local ? $0 : prefix + $0 }
    }

    /// Parses a comma-separated list of context options (case-insensitive, as Retina reads
    /// them); an unknown one is an error naming it and the valid ones (Retina would ignore it
    /// silently, leaving the user to wonder why a label is missing).
    public static func labels(_ text: String, flag: String) throws(PodLevelError) -> [Label] {
        var labels: [Label] = []
        for part in text.split(separator: ",") {
            let token = part.trimmingCharacters(in: .whitespaces).lowercased()
            guard !token.isEmpty else { continue }
            guard let label = Label(rawValue: token) else {
                throw PodLevelError(
                    message:
                        "\(flag) has an unknown label `\(token)`; use \(Label.allCases.map(\.rawValue).joined(separator: ", "))."
                )
            }
            labels.append(label)
        }
        return labels
    }

    /// Parses `--pod-level-additional-labels`: only `is_reply` exists (on forward metrics).
    public static func isReply(_ text: String, flag: String) throws(PodLevelError) -> Bool {
        var isReply = false
        for part in text.split(separator: ",") {
            let token = part.trimmingCharacters(in: .whitespaces).lowercased()
            guard !token.isEmpty else { continue }
            guard token == "is_reply" else {
                throw PodLevelError(message: "\(flag) has an unknown label `\(token)`; the only one is is_reply.")
            }
            isReply = true
        }
        return isReply
    }
}

/// A pod-level metrics option that cannot be used, in one sentence.
public struct PodLevelError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
