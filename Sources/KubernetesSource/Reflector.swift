import Foundation
import KubernetesModel
import Locking
import Logging
import NIOCore

/// A change a reflector hands to its cache, in the cache's own form of an object (only what
/// the enricher needs, so a cluster's worth of objects stays small).
enum CacheUpdate<Cached: Sendable>: Sendable {
    /// A fresh list: exactly these objects exist (by key).
    case replace([String: Cached])
    /// An object (key, uid) added or changed; nil: it no longer counts (e.g. a pod that finished).
    case upsert(String, uid: String, Cached?)
    /// An object (key, uid) deleted.
    case delete(String, uid: String)
}

/// One kind of object the source watches, and where.
struct WatchedKind: Sendable {
    /// The resource as RBAC names it (`pods`, `endpointslices`).
    var resource: String
    /// The collection's path across all namespaces.
    var path: String

    static let pods = WatchedKind(resource: "pods", path: "/api/v1/pods")
    static let services = WatchedKind(resource: "services", path: "/api/v1/services")
    static let endpointSlices = WatchedKind(
        resource: "endpointslices", path: "/apis/discovery.k8s.io/v1/endpointslices")
    static let nodes = WatchedKind(resource: "nodes", path: "/api/v1/nodes")
    static let namespaces = WatchedKind(resource: "namespaces", path: "/api/v1/namespaces")

    static let all: [WatchedKind] = [pods, services, endpointSlices, nodes, namespaces]

    /// The API group, as RBAC rules name it ("" for the core group).
    var group: String { path.hasPrefix("/apis/") ? String(path.split(separator: "/")[1]) : "" }
}

/// Timing of list and watch, client-go's defaults unless a test says otherwise.
public struct ReflectorTiming: Sendable {
    /// Retries after an error wait this long at first, doubling up to `maxBackoff`, ±25 % jitter.
    public var initialBackoff: Duration = .milliseconds(800)
    public var maxBackoff: Duration = .seconds(30)
    /// Each watch asks the server to end it after a random time in this range (as client-go).
    public var watchSeconds: ClosedRange<Int> = 300...600
    /// Objects per list page.
    public var pageSize = 500

    public init() {}
}

/// List then watch one kind, forever: pages of `pageSize`; watches resume from the last
/// resourceVersion seen (bookmarks included), so a broken stream loses nothing; `410 Gone`
/// lists again; errors back off with jitter. Every request has a deadline.
struct Reflector<Object: KubeObject, Cached: Sendable>: Sendable {
    let kind: WatchedKind
    let client: APIClient
    let timing: ReflectorTiming
    let health: SourceHealth
    let logger: Logger
    /// What the cache keeps of an object (nil: nothing).
    let convert: @Sendable (Object) -> Cached?
    let apply: @Sendable (CacheUpdate<Cached>) -> Void

    func run() async {
        var resourceVersion: String?
        var backoff = timing.initialBackoff
        var lastError = ""
        while !Task.isCancelled {
            do {
                if resourceVersion == nil {
                    let (objects, version) = try await list()
                    apply(.replace(objects))
                    resourceVersion = version
                    health.synced(kind.resource)
                    if !lastError.isEmpty { logger.info("listing \(kind.resource) works again", metadata: [:]) }
                    lastError = ""
                }
                try await watch(from: &resourceVersion)
                // The server ended the watch (its timeout, or a restart): resume from where it was.
                health.watchRestarted(kind.resource)
                backoff = timing.initialBackoff
            } catch KubernetesClientError.gone {
                health.relisted(kind.resource)
                resourceVersion = nil
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                health.failed(kind.resource)
                let sentence = describe(error)
                if sentence != lastError {
                    logger.warning("\(sentence)")
                    lastError = sentence
                }
                let jitter = Double.random(in: 0.75...1.25)
                try? await Task.sleep(for: backoff * jitter)
                backoff = min(backoff * 2, timing.maxBackoff)
            }
        }
    }

    func describe(_ error: any Error) -> String {
        switch error {
        case KubernetesClientError.forbidden(let message):
            "RBAC forbids the agent to list and watch \(kind.resource) (\(message)); grant the verbs list and watch on \(kind.resource) to its ServiceAccount (deploy/kubernetes/rbac.yaml). Serving what is known and retrying."
        default:
            "Kubernetes API \(client.access.server): \(kind.resource): \(error); retrying."
        }
    }

    /// Every object, page by page (each page kept only in the cache's form), and the
    /// resourceVersion to watch from.
    func list() async throws -> ([String: Cached], String) {
        var objects: [String: Cached] = [:]
        var next: String?
        var version = ""
        repeat {
            var query = "?limit=\(timing.pageSize)"
            if let next { query += "&continue=\(Self.escape(next))" }
            let body = try await client.get(kind.path + query)
            let page: ObjectList<Object>
            do { page = try JSONDecoder().decode(ObjectList<Object>.self, from: Data(body.readableBytesView)) } catch {
                throw KubernetesClientError.undecodable("\(error)")
            }
            for item in page.items { objects[item.metadata.key] = convert(item) }
            version = page.metadata.resourceVersion ?? version
            next = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
        } while next != nil
        return (objects, version)
    }

    /// Watches from `resourceVersion` until the server ends the stream, keeping it current.
    func watch(from resourceVersion: inout String?) async throws {
        let seconds = Int.random(in: timing.watchSeconds)
        let query =
            "?watch=true&allowWatchBookmarks=true&timeoutSeconds=\(seconds)&resourceVersion=\(Self.escape(resourceVersion ?? ""))"
        let latest = Lock(resourceVersion)
        defer { resourceVersion = latest.withLock { $0 } }
        try await client.stream(kind.path + query, lasting: .seconds(seconds)) { [apply, health, kind] line in
            let data = Data(line)
            let decoder = JSONDecoder()
            let header: WatchEventHeader
            do { header = try decoder.decode(WatchEventHeader.self, from: data) } catch {
                throw KubernetesClientError.undecodable("a watch event: \(error)")
            }
            switch header.type {
            case .bookmark:
                let event = try decoder.decode(WatchEvent<Bookmark>.self, from: data)
                latest.withLock { $0 = event.object.metadata.resourceVersion }
            case .error:
                let status = try? decoder.decode(WatchEvent<APIStatus>.self, from: data).object
                if status?.code == 410 { throw KubernetesClientError.gone }
                throw KubernetesClientError.failed(
                    status: status?.code ?? 500, message: status?.message ?? "watch error")
            case .added, .modified, .deleted:
                let event: WatchEvent<Object>
                do { event = try decoder.decode(WatchEvent<Object>.self, from: data) } catch {
                    throw KubernetesClientError.undecodable("a \(kind.resource) watch event: \(error)")
                }
                let key = event.object.metadata.key
                let uid = event.object.metadata.uid ?? key
                apply(header.type == .deleted ? .delete(key, uid: uid) : .upsert(key, uid: uid, convert(event.object)))
                health.event(kind.resource)
                if let version = event.object.metadata.resourceVersion { latest.withLock { $0 = version } }
            }
        }
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? text
    }
}

/// The source's health, by kind: what the agent's /metrics shows.
final class SourceHealth: Sendable {
    struct Counts {
        var objects = 0
        var events = 0
        var watchRestarts = 0
        var relists = 0
        var errors = 0
        var lastSync: Date?
    }

    private let counts = Lock([String: Counts]())

    /// A list or a watch of the kind completed.
    func synced(_ kind: String) { counts.withLock { $0[kind, default: Counts()].lastSync = Date() } }

    func event(_ kind: String) { counts.withLock { $0[kind, default: Counts()].events += 1 } }
    func watchRestarted(_ kind: String) {
        counts.withLock { $0[kind, default: Counts()].watchRestarts += 1 }
        synced(kind)
    }
    func relisted(_ kind: String) { counts.withLock { $0[kind, default: Counts()].relists += 1 } }
    func failed(_ kind: String) { counts.withLock { $0[kind, default: Counts()].errors += 1 } }
    func cached(_ kind: String, _ count: Int) { counts.withLock { $0[kind, default: Counts()].objects = count } }

    var snapshot: [String: Counts] { counts.withLock { $0 } }
}
