import Foundation

/// How a lab's Deployments were scaled since `lab up` (`osprey lab scale`), kept in the lab's
/// state so that every later plan places the same pods at the same addresses.
///
/// Replicas the catalog has keep their planned node and address when scaled down and up again
/// (a re-created pod gets a new name on the old address: an IP reused by another pod, as a real
/// cluster does). Replicas beyond the catalog are placed on the least loaded node, at its
/// lowest free address above the catalog's.
public struct LabScale: Codable, Sendable, Equatable {
    /// Desired replicas by `namespace/deployment`; absent: the catalog's count.
    public var replicas: [String: Int] = [:]
    /// Pods beyond the catalog's replicas: where each lives.
    public var extras: [Extra] = []
    /// How many times each `namespace/deployment/replica` was created again (its name changes each time).
    public var incarnations: [String: Int] = [:]

    public struct Extra: Codable, Sendable, Equatable {
        public var namespace: String
        public var deployment: String
        public var replica: Int
        public var node: Int
        public var slot: Int
    }

    public init() {}

    /// The most pods a Deployment may have in a lab.
    public static let maxReplicas = 20

    /// This scale with `namespace/deployment` set to `count` replicas, placed by `plan`'s rules.
    public func scaling(_ spec: WorkloadSpec, to count: Int, in plan: LabPlan) -> LabScale {
        var next = self
        let key = "\(spec.namespace)/\(spec.name)"
        let current = replicas[key] ?? spec.replicas
        next.replicas[key] = count
        if count < current {
            next.extras.removeAll {
                $0.namespace == spec.namespace && $0.deployment == spec.name && $0.replica >= count
            }
            return next
        }
        var load = Dictionary(grouping: plan.pods, by: \.node.index).mapValues(\.count)
        for replica in current..<count {
            // A replica that existed before (the catalog's, or an earlier scale's) comes back
            // under a new name.
            let incarnationKey = "\(key)/\(replica)"
            if next.incarnations[incarnationKey] != nil || replica < spec.replicas {
                next.incarnations[incarnationKey, default: 0] += 1
            } else {
                next.incarnations[incarnationKey] = 0
            }
            guard replica >= spec.replicas else { continue }  // the catalog's place, kept for it
            let node = plan.nodes.map(\.index).min { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) } ?? 1
            let used = Set(plan.pods.filter { $0.node.index == node }.map(\.slot))
                .union(next.extras.filter { $0.node == node }.map(\.slot))
            let slot = (plan.catalogSlots(on: node)...).first { !used.contains($0) } ?? 0
            next.extras.append(
                Extra(namespace: spec.namespace, deployment: spec.name, replica: replica, node: node, slot: slot))
            load[node, default: 0] += 1
        }
        return next
    }

    /// The scale file of a lab (absent: the catalog as planned).
    public static func load(from path: String) throws(LabError) -> LabScale {
        guard FileManager.default.fileExists(atPath: path) else { return LabScale() }
        do { return try JSONDecoder().decode(LabScale.self, from: Data(contentsOf: URL(fileURLWithPath: path))) } catch
        {
            throw .fileFailed(path: path, reason: "\(error)")
        }
    }

    public func write(to path: String) throws(LabError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw .fileFailed(path: path, reason: "\(error)")
        }
    }
}
