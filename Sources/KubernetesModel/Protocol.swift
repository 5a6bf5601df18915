import ClusterInventory
import Foundation

/// A list response: `{"kind": "PodList", "metadata": {"resourceVersion", "continue"}, "items": […]}`.
public struct ObjectList<Item: KubeObject>: Codable, Sendable {
    public var apiVersion: String?
    public var kind: String?
    public var metadata: ListMeta
    public var items: [Item]

    public init(apiVersion: String, kind: String, metadata: ListMeta, items: [Item]) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.metadata = metadata
        self.items = items
    }
}

public struct ListMeta: Codable, Sendable, Equatable {
    public var resourceVersion: String?
    /// Present when more pages follow (`?limit=`): pass it back as `?continue=`.
    public var `continue`: String?
    public init(resourceVersion: String?, continue: String? = nil) {
        self.resourceVersion = resourceVersion
        self.continue = `continue`
    }
}

/// One line of a watch stream: `{"type": "ADDED", "object": {…}}`.
public enum WatchEventType: String, Codable, Sendable {
    case added = "ADDED"
    case modified = "MODIFIED"
    case deleted = "DELETED"
    /// Only `metadata.resourceVersion` is meaningful: the watch has seen everything up to it.
    case bookmark = "BOOKMARK"
    /// The object is a `Status`; code 410 means the resourceVersion is too old: list again.
    case error = "ERROR"
}

/// The `type` of a watch event, decoded before its object (whose shape depends on it).
public struct WatchEventHeader: Decodable, Sendable {
    public var type: WatchEventType
}

public struct WatchEvent<Object: Codable & Sendable>: Codable, Sendable {
    public var type: WatchEventType
    public var object: Object
    public init(type: WatchEventType, object: Object) {
        self.type = type
        self.object = object
    }
}

/// The object of a BOOKMARK event: its resourceVersion is all that counts.
public struct Bookmark: Codable, Sendable {
    public struct Meta: Codable, Sendable {
        public var resourceVersion: String
    }
    public var kind: String?
    public var apiVersion: String?
    public var metadata: Meta

    public init(kind: String, apiVersion: String, resourceVersion: String) {
        self.kind = kind
        self.apiVersion = apiVersion
        metadata = Meta(resourceVersion: resourceVersion)
    }
}

/// `metav1.Status`: what the API answers for errors (and in ERROR watch events).
public struct APIStatus: Codable, Sendable, Equatable, Error {
    public var kind: String? = "Status"
    public var apiVersion: String? = "v1"
    public var status: String?
    public var message: String?
    public var reason: String?
    public var code: Int?

    public init(code: Int, reason: String, message: String) {
        status = "Failure"
        self.code = code
        self.reason = reason
        self.message = message
    }
}

// MARK: - Workloads

extension Workload {
    /// The workload that runs a pod, named the way Hubble names it: the controller among its
    /// owner references; a ReplicaSet made by a Deployment (the pod carries
    /// `pod-template-hash`) is that Deployment, a Job whose name ends in a schedule's
    /// timestamp is its CronJob.
    public static func of(owners: [OwnerReference]?, labels: [String: String]?) -> Workload? {
        guard let owners, let owner = owners.first(where: { $0.controller == true }) ?? owners.first else {
            return nil
        }
        switch owner.kind {
        case "ReplicaSet":
            if let hash = labels?["pod-template-hash"], owner.name.hasSuffix("-\(hash)") {
                return Workload(kind: "Deployment", name: String(owner.name.dropLast(hash.count + 1)))
            }
        case "Job":
            // `<cronjob>-<8 to 10 digits>`: the scheduled time in minutes.
            if let dash = owner.name.lastIndex(of: "-") {
                let digits = owner.name[owner.name.index(after: dash)...]
                if (8...10).contains(digits.count), digits.allSatisfy(\.isASCIIDigit) {
                    return Workload(kind: "CronJob", name: String(owner.name[..<dash]))
                }
            }
        default: break
        }
        return Workload(kind: owner.kind, name: owner.name)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
