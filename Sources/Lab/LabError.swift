import Foundation

/// Everything that can stop a lab command, each as one sentence saying what to do.
public enum LabError: Error, Equatable, CustomStringConvertible {
    case invalidNodeCount(Int)
    case unknownTopology(String)
    case invalidName(String)
    case notRoot
    case alreadyUp(name: String, found: [String])
    case notUp(name: String)
    case missingTool(tool: String, package: String)
    case commandFailed(command: String, status: Int32, output: String)
    case workloadNotReady(what: String, detail: String)
    case fileFailed(path: String, reason: String)
    case unknownDeployment(String, known: [String])
    case invalidReplicas(Int)

    public var description: String {
        switch self {
        case .invalidNodeCount(let count):
            "--nodes must be between \(LabConfig.nodeRange.lowerBound) and \(LabConfig.nodeRange.upperBound), not \(count)."
        case .unknownTopology(let text):
            "Unknown topology '\(text)'; use one of: \(Topology.allCases.map(\.rawValue).joined(separator: ", "))."
        case .invalidName(let name):
            "Lab name '\(name)' must be 'osp' followed by at most 5 lowercase letters or digits (e.g. osp, osp2)."
        case .notRoot:
            "The lab needs root (it creates network namespaces, veths and nftables rules); run it with sudo."
        case .alreadyUp(let name, let found):
            "A lab named '\(name)' is already up (\(found.prefix(3).joined(separator: ", "))\(found.count > 3 ? ", …" : "")); run `osprey lab down --name \(name)` first or choose another --name."
        case .notUp(let name):
            "No lab named '\(name)' is up; start one with `osprey lab up --name \(name)`."
        case .missingTool(let tool, let package):
            "\(tool) is not installed; run `make bootstrap` (it installs the Debian package \(package))."
        case .commandFailed(let command, let status, let output):
            "`\(command)` failed with exit status \(status): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        case .workloadNotReady(let what, let detail):
            "\(what) did not become ready: \(detail)."
        case .fileFailed(let path, let reason):
            "Cannot write \(path): \(reason)."
        case .unknownDeployment(let name, let known):
            "The lab has no Deployment '\(name)'; it has \(known.joined(separator: ", ")) (give --namespace when a name is in several)."
        case .invalidReplicas(let count):
            "Replicas must be between 0 and \(LabScale.maxReplicas), not \(count)."
        }
    }
}
