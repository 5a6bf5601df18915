import Foundation
import HubbleAPI
import HubbleWire
import Locking
import ServiceMap
import SwiftProtobuf

/// What one view of the UI shows — a namespace (or all), verdicts, filter bar entries and a
/// time window — kept live from one upstream `GetFlows(follow)` and shared by every browser tab
/// showing it. Tabs receive Server-Sent Events: `map` (the laid-out map, at most twice a
/// second, when it changed), `flows` (new table rows in batches, as jsonpb lines) and `status`
/// (every few seconds: upstream state, nodes, flow rate).
final class MapView: Sendable {
    struct Key: Hashable, Sendable {
        var query: ViewQuery
        var window: Double
    }

    let key: Key
    let upstream: any HubbleUpstream
    private let state = Lock(State())

    /// Rows kept for a tab that opens the view (Hubble UI shows at most 1000).
    static let maxRows = 1000
    /// Flows asked for when the view starts (the map's first picture).
    static let history: UInt64 = 2000

    struct State {
        var map = ServiceMap()
        var layout = MapLayout()
        var mapChanged = true
        var rows: [String] = []
        var pendingRows: [String] = []
        var subscribers: [UInt64: AsyncStream<String>.Continuation] = [:]
        var nextSubscriber: UInt64 = 0
        var connected = false
        var lastError = ""
        var lastFlowTime: Google_Protobuf_Timestamp?
        var received: UInt64 = 0
        var lostUpstream: UInt64 = 0
        /// (time, received) samples for the flow rate.
        var rate: [(Date, UInt64)] = []
        var status = StatusEvent()
        var idleSince: Date?
        var tasks: [Task<Void, Never>] = []
    }

    struct StatusEvent: Codable, Sendable, Equatable {
        var upstream = "connecting"
        var message = ""
        var nodesConnected = 0
        var nodesTotal = 0
        var flowsPerSecond = 0.0
        var flowsReceived: UInt64 = 0
        var lostEvents: UInt64 = 0
    }

    init(key: Key, upstream: any HubbleUpstream) {
        self.key = key
        self.upstream = upstream
    }

    // MARK: - tabs

    /// A new tab: it first gets the current map, rows and status, then what changes.
    func subscribe() -> (id: UInt64, events: AsyncStream<String>) {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let id = state.withLock { state -> UInt64 in
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = continuation
            state.idleSince = nil
            continuation.yield(Self.event("map", Self.json(Self.snapshot(&state, key))))
            continuation.yield(Self.event("flows", Self.json(state.rows)))
            continuation.yield(Self.event("status", Self.json(state.status)))
            return state.nextSubscriber
        }
        return (id, stream)
    }

    func unsubscribe(_ id: UInt64) {
        state.withLock { state in
            state.subscribers.removeValue(forKey: id)?.finish()
            if state.subscribers.isEmpty { state.idleSince = Date() }
        }
    }

    /// How long the view has had no tab (nil: it has some).
    var idleSince: Date? { state.withLock { $0.idleSince } }

    /// The current map (`/api/map`) and rows (`/api/flows`).
    func currentMap() -> Snapshot { state.withLock { Self.snapshot(&$0, key) } }
    func currentRows() -> [String] { state.withLock { $0.rows } }

    // MARK: - running

    func start() {
        let following = Task { [self] in await follow() }
        let publishing = Task { [self] in await publish() }
        state.withLock { $0.tasks = [following, publishing] }
    }

    func stop() {
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            for continuation in state.subscribers.values { continuation.finish() }
            state.subscribers.removeAll()
            return state.tasks
        }
        for task in tasks { task.cancel() }
    }

    /// Follows the upstream; after a failure, resumes from the last flow seen.
    private func follow() async {
        var backoff = 0.5
        while !Task.isCancelled {
            var request = Observer_GetFlowsRequest()
            request.follow = true
            request.whitelist = key.query.allowlist
            request.blacklist = key.query.denylist
            if let since = state.withLock({ $0.lastFlowTime }) {
                request.since = since
            } else {
                request.number = Self.history
            }
            do {
                try await upstream.flows(request) { [self] response in
                    receive(response)
                }
                state.withLock { $0.connected = false }
            } catch {
                state.withLock { state in
                    state.connected = false
                    state.lastError = "\(error)"
                }
            }
            if Task.isCancelled { return }
            try? await Task.sleep(for: .seconds(backoff))
            backoff = min(backoff * 2, 5)
        }
    }

    private func receive(_ response: Observer_GetFlowsResponse) {
        state.withLock { state in
            state.connected = true
            state.lastError = ""
            switch response.responseTypes {
            case .flow(let flow)?:
                state.map.add(flow)
                state.mapChanged = true
                state.received += 1
                if flow.hasTime { state.lastFlowTime = Self.after(flow.time) }
                let line = FlowJSONLines.unorderedLine(response)
                state.rows.append(line)
                if state.rows.count > Self.maxRows { state.rows.removeFirst(state.rows.count - Self.maxRows) }
                state.pendingRows.append(line)
                if state.pendingRows.count > Self.maxRows {
                    state.pendingRows.removeFirst(state.pendingRows.count - Self.maxRows)
                }
            case .lostEvents(let lost)?:
                state.lostUpstream += lost.numEventsLost
            default: break
            }
        }
    }

    /// Rows every 250 ms, the map at most every 500 ms when it changed, status every 3 s.
    private func publish() async {
        var tick = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            tick += 1
            if tick % 12 == 1 { await refreshStatus() }
            state.withLock { state in
                var events: [String] = []
                if !state.pendingRows.isEmpty {
                    events.append(Self.event("flows", Self.json(state.pendingRows)))
                    state.pendingRows.removeAll()
                }
                if tick % 2 == 0, state.mapChanged {
                    state.mapChanged = false
                    events.append(Self.event("map", Self.json(Self.snapshot(&state, key))))
                }
                if tick % 12 == 1 { events.append(Self.event("status", Self.json(state.status))) }
                for event in events {
                    for continuation in state.subscribers.values { continuation.yield(event) }
                }
            }
        }
    }

    private func refreshStatus() async {
        let server = try? await upstream.status()
        state.withLock { state in
            let now = Date()
            state.rate.append((now, state.received))
            state.rate.removeAll { now.timeIntervalSince($0.0) > 15 }
            var status = StatusEvent()
            status.upstream =
                state.connected
                ? "connected" : (state.received == 0 && state.lastError.isEmpty ? "connecting" : "reconnecting")
            status.message = state.lastError
            if let server {
                let connected = server.hasNumConnectedNodes ? Int(server.numConnectedNodes.value) : 1
                let unavailable = server.hasNumUnavailableNodes ? Int(server.numUnavailableNodes.value) : 0
                status.nodesConnected = connected
                status.nodesTotal = connected + unavailable
            } else {
                status.upstream = "reconnecting"
            }
            if let first = state.rate.first, let last = state.rate.last, last.0 > first.0 {
                status.flowsPerSecond = Double(last.1 - first.1) / last.0.timeIntervalSince(first.0)
            }
            status.flowsReceived = state.received
            status.lostEvents = state.lostUpstream
            state.status = status
            state.map.expire(now: now)
        }
    }

    // MARK: - helpers

    private static func snapshot(_ state: inout State, _ key: Key) -> Snapshot {
        var snapshot = state.map.snapshot(window: key.window, now: Date(), namespace: key.query.namespace)
        state.layout.place(&snapshot)
        return snapshot
    }

    /// A nanosecond after `time`: `since` is inclusive, and the flow at `time` was seen.
    static func after(_ time: Google_Protobuf_Timestamp) -> Google_Protobuf_Timestamp {
        var next = time
        next.nanos += 1
        if next.nanos >= 1_000_000_000 {
            next.seconds += 1
            next.nanos -= 1_000_000_000
        }
        return next
    }

    static func event(_ name: String, _ data: String) -> String { "event: \(name)\ndata: \(data)\n\n" }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }
}
