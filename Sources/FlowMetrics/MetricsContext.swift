import Flows

/// What a `source`/`destination` label holds (Hubble's metric context options).
public enum ContextOption: String, Sendable, CaseIterable {
    case pod, namespace, workload, app, ip
    case podName = "pod-name"
    case workloadName = "workload-name"

    func value(_ endpoint: Endpoint, ip: String) -> String {
        switch self {
        case .pod: endpoint.podQualifiedName
        case .podName: endpoint.podName
        case .namespace: endpoint.namespace
        case .workload: endpoint.workloads.first.map { "\(endpoint.namespace)/\($0.name)" } ?? ""
        case .workloadName: endpoint.workloads.first?.name ?? ""
        case .ip: ip
        case .app:
            ["app.kubernetes.io/name", "k8s-app", "app"].lazy.compactMap { key in
                endpoint.labels.first { $0.hasPrefix("k8s:\(key)=") }.map { String($0.dropFirst("k8s:\(key)=".count)) }
            }.first ?? ""
        }
    }
}

/// Hubble's context configuration: `sourceEgressContext` and `destinationIngressContext`, each a
/// list tried in order (first non-empty wins), as in `--hubble-metrics`.
public struct MetricsContext: Sendable {
    public var sourceEgress: [ContextOption]
    public var destinationIngress: [ContextOption]

    public init(sourceEgress: [ContextOption] = [.pod], destinationIngress: [ContextOption] = [.pod]) {
        self.sourceEgress = sourceEgress
        self.destinationIngress = destinationIngress
    }

    /// Parses `pod|ip`-style lists; nil names the bad option.
    public static func options(_ text: String) -> Result<[ContextOption], ContextError> {
        var options: [ContextOption] = []
        for part in text.split(separator: "|") {
            guard let option = ContextOption(rawValue: String(part)) else { return .failure(.unknown(String(part))) }
            options.append(option)
        }
        return .success(options)
    }

    public enum ContextError: Error, CustomStringConvertible {
        case unknown(String)
        public var description: String {
            guard case .unknown(let text) = self else { return "" }
            return
                "Unknown metrics context '\(text)'; use \(ContextOption.allCases.map(\.rawValue).joined(separator: ", "))."
        }
    }

    /// True when no option reads the address: the labels then follow from the endpoints alone.
    var dependsOnEndpointsOnly: Bool { !sourceEgress.contains(.ip) && !destinationIngress.contains(.ip) }

    func labels(_ flow: borrowing Flow) -> (source: String, destination: String) {
        func first(_ options: [ContextOption], _ endpoint: Endpoint, _ ip: String) -> String {
            options.lazy.map { $0.value(endpoint, ip: ip) }.first { !$0.isEmpty } ?? ""
        }
        return (
            flow.trafficDirection == .egress ? first(sourceEgress, flow.source, flow.sourceIP) : "",
            flow.trafficDirection == .ingress ? first(destinationIngress, flow.destination, flow.destinationIP) : ""
        )
    }
}
