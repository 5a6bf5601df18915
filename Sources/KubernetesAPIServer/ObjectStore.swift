import Foundation
import KubernetesModel
import Locking
import Synchronization

/// The server's objects, their resourceVersions and the recent history watches replay.
///
/// Every change gets the next resourceVersion (one counter for the whole server, as etcd's
/// revision). Objects are encoded once, when they change; lists and watches only copy bytes.
final class ObjectStore: Sendable {
    struct Stored: Sendable {
        var resource: Resource
        var key: String
        var namespace: String?
        var revision: Int
        /// The object as JSON, with its resourceVersion.
        var json: [UInt8]
        /// Its metadata as JSON (a Table row's PartialObjectMetadata).
        var metadata: [UInt8]
        var cells: [Cell]
        /// The object itself: an unchanged one is not a new version.
        var object: any KubeObject
    }

    struct Change: Sendable {
        var type: WatchEventType
        var object: Stored
    }

    /// What a watcher receives: changes, bookmarks (at a revision) and the end of the stream.
    enum Delivery: Sendable {
        case change(Change)
        case bookmark(Int)
    }

    struct Watcher {
        var resource: Resource
        var namespace: String?
        var bookmarks: Bool
        var continuation: AsyncStream<Delivery>.Continuation
    }

    struct State {
        var revision: Int
        var objects: [Resource: [String: Stored]] = [:]
        var history: [Change] = []
        /// Watches from a resourceVersion below this one get 410 Gone.
        var compactedBelow: Int
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
        /// Each resource's keys in order, kept until it changes (pages of a list find their
        /// place by binary search instead of sorting every object again).
        var sortedKeys: [Resource: [String]] = [:]
    }

    let historyLimit: Int
    private let state: Lock<State>

    /// Revisions start from the clock (milliseconds), so that a restarted server never hands out
    /// a resourceVersion it gave before: a client resuming from one of the old server gets 410
    /// and lists again, as it would after etcd compacted its history.
    init(historyLimit: Int = 50_000, firstRevision: Int = Int(Date().timeIntervalSince1970 * 1000)) {
        self.historyLimit = historyLimit
        state = Lock(State(revision: firstRevision, compactedBelow: firstRevision))
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }

    var revision: Int { state.withLock { $0.revision } }

    /// Makes `objects` the resource's whole content: new ones are ADDED, changed ones MODIFIED,
    /// missing ones DELETED.
    func replace(_ resource: Resource, with objects: [any KubeObject]) {
        let incoming = Dictionary(objects.map { ($0.metadata.key, $0) }, uniquingKeysWith: { _, last in last })
        state.withLock { state in
            let current = state.objects[resource] ?? [:]
            for key in incoming.keys.sorted() {
                guard let object = incoming[key] else { continue }
                if let existing = current[key], existing.object.sameContent(as: object) { continue }
                Self.put(object, resource, type: current[key] == nil ? .added : .modified, &state)
            }
            for key in current.keys.sorted() where incoming[key] == nil { Self.remove(resource, key: key, &state) }
            trimHistory(&state)
        }
    }

    /// Adds or replaces one object.
    func upsert(_ resource: Resource, _ object: any KubeObject) {
        state.withLock { state in
            let existing = state.objects[resource]?[object.metadata.key]
            if let existing, existing.object.sameContent(as: object) { return }
            Self.put(object, resource, type: existing == nil ? .added : .modified, &state)
            trimHistory(&state)
        }
    }

    /// Deletes one object; false when there was none.
    @discardableResult
    func delete(_ resource: Resource, key: String) -> Bool {
        state.withLock { state in
            guard state.objects[resource]?[key] != nil else { return false }
            Self.remove(resource, key: key, &state)
            trimHistory(&state)
            return true
        }
    }

    /// Forgets the history: every watch from an earlier resourceVersion gets 410 Gone.
    func compact() {
        state.withLock { state in
            state.history.removeAll()
            state.compactedBelow = state.revision + 1
        }
    }

    private static func put(_ object: any KubeObject, _ resource: Resource, type: WatchEventType, _ state: inout State)
    {
        state.revision += 1
        var versioned = object
        versioned.metadata.resourceVersion = String(state.revision)
        let encoder = encoder()
        let stored = Stored(
            resource: resource, key: object.metadata.key, namespace: object.metadata.namespace,
            revision: state.revision, json: (try? [UInt8](encoder.encode(versioned))) ?? [],
            metadata: (try? [UInt8](encoder.encode(versioned.metadata))) ?? [], cells: resource.cells(object),
            object: versioned)
        if state.objects[resource]?[stored.key] == nil { state.sortedKeys[resource] = nil }
        state.objects[resource, default: [:]][stored.key] = stored
        publish(Change(type: type, object: stored), &state)
    }

    private static func remove(_ resource: Resource, key: String, _ state: inout State) {
        guard var stored = state.objects[resource]?.removeValue(forKey: key) else { return }
        state.sortedKeys[resource] = nil
        state.revision += 1
        stored.revision = state.revision
        publish(Change(type: .deleted, object: stored), &state)
    }

    private static func publish(_ change: Change, _ state: inout State) {
        state.history.append(change)
        for watcher in state.watchers.values
        where watcher.resource == change.object.resource
            && (watcher.namespace == nil || watcher.namespace == change.object.namespace)
        {
            watcher.continuation.yield(.change(change))
        }
    }

    private func trimHistory(_ state: inout State) {
        let excess = state.history.count - historyLimit
        guard excess > 0 else { return }
        state.compactedBelow = state.history[excess - 1].object.revision + 1
        state.history.removeFirst(excess)
    }

    /// A page of a resource's objects (in one namespace, or all) in key order: up to `limit`
    /// of them after the key `after`; whether more follow; the current revision.
    func list(
        _ resource: Resource, namespace: String?, after: String? = nil, limit: Int? = nil
    ) -> (objects: [Stored], more: Bool, revision: Int) {
        state.withLock { state in
            let objects = state.objects[resource] ?? [:]
            let keys: [String]
            if let cached = state.sortedKeys[resource] {
                keys = cached
            } else {
                keys = objects.keys.sorted()
                state.sortedKeys[resource] = keys
            }
            var index = 0
            if let after {
                // The first key greater than `after`.
                var (low, high) = (0, keys.count)
                while low < high {
                    let middle = (low + high) / 2
                    if keys[middle] <= after { low = middle + 1 } else { high = middle }
                }
                index = low
            }
            var page: [Stored] = []
            let wanted = limit.map { $0 > 0 ? $0 : Int.max } ?? Int.max
            while index < keys.count, page.count < wanted {
                if let object = objects[keys[index]], namespace == nil || object.namespace == namespace {
                    page.append(object)
                }
                index += 1
            }
            // More follow if any later key is in the namespace.
            let more = keys[index...].contains { key in namespace == nil || objects[key]?.namespace == namespace }
            return (page, more, state.revision)
        }
    }

    func get(_ resource: Resource, key: String) -> Stored? { state.withLock { $0.objects[resource]?[key] } }

    /// Whether a list's continue token or a watch may still start at `revision`.
    func isCompacted(_ revision: Int) -> Bool {
        state.withLock { revision < $0.compactedBelow - 1 || revision > $0.revision }
    }

    enum WatchStart {
        case stream(id: Int, initial: [Change], AsyncStream<Delivery>)
        case gone
    }

    /// Starts a watch: from `revision` (changes after it, from the history), or — when nil —
    /// with every current object as ADDED. Atomic with the changes that follow.
    func watch(_ resource: Resource, namespace: String?, from revision: Int?, bookmarks: Bool) -> WatchStart {
        state.withLock { state in
            var initial: [Change] = []
            if let revision {
                // Older than the history, or newer than this server has been (another server's).
                guard revision >= state.compactedBelow - 1, revision <= state.revision else { return .gone }
                initial = state.history.filter {
                    $0.object.revision > revision && $0.object.resource == resource
                        && (namespace == nil || $0.object.namespace == namespace)
                }
            } else {
                initial = (state.objects[resource] ?? [:]).values.filter {
                    namespace == nil || $0.namespace == namespace
                }
                .sorted { $0.key < $1.key }.map { Change(type: .added, object: $0) }
            }
            let (stream, continuation) = AsyncStream.makeStream(of: Delivery.self)
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = Watcher(
                resource: resource, namespace: namespace, bookmarks: bookmarks, continuation: continuation)
            return .stream(id: id, initial: initial, stream)
        }
    }

    func endWatch(_ id: Int) {
        let watcher = state.withLock { $0.watchers.removeValue(forKey: id) }
        watcher?.continuation.finish()
    }

    /// Ends every open watch (as a restarting API server would).
    func endAllWatches() {
        let all = state.withLock { state -> [Watcher] in
            defer { state.watchers.removeAll() }
            return Array(state.watchers.values)
        }
        for watcher in all { watcher.continuation.finish() }
    }

    var watchCount: Int { state.withLock { $0.watchers.count } }

    /// Sends a bookmark at the current revision to every watch that asked for bookmarks.
    func sendBookmarks() {
        state.withLock { state in
            for watcher in state.watchers.values where watcher.bookmarks {
                watcher.continuation.yield(.bookmark(state.revision))
            }
        }
    }
}
