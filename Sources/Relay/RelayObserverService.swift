import FlowFilters
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import HubbleAPI
import HubbleServer
import HubbleWire
import Locking
import SwiftProtobuf

/// `observer.Observer` for the whole cluster: every call goes to every connected agent.
///
/// GetFlows forwards the request to each agent and merges their streams by time through a
/// bounded sort buffer, so `number` (hubble's `--last N`) means N per node, as with Hubble
/// Relay. A follow asks Osprey agents for progress marks (`ProgressMark`): once every agent's
/// stream has passed a flow's time, the flow leaves at once; without marks from every agent
/// (Cilium's send none, a reconnecting one has sent none yet) it waits out the sort window. It first reports which nodes are connected and which are not (NODE_CONNECTED /
/// NODE_UNAVAILABLE); a follow stream survives an agent that dies (NODE_UNAVAILABLE), takes it
/// back when it returns (NODE_CONNECTED, then its flows since the last one seen, so nothing is
/// repeated) and picks up agents that appear while it runs. Agents that fail with the same
/// error within `errorAggregationWindow` are named in one NODE_ERROR.
public struct RelayObserverService: Observer_Observer.SimpleServiceProtocol {
    let pool: PeerPool
    let sortBufferMaxLength: Int
    let sortBufferDrainTimeout: Duration
    let peerRequestTimeout: Duration
    /// How long a NODE_ERROR waits for the same error from other nodes (Hubble Relay: 10 s).
    let errorAggregationWindow: Duration
    /// The relay's own name: the `node_name` of the node status events it sends, as Hubble Relay's.
    let relayName: String

    public init(
        pool: PeerPool, sortBufferMaxLength: Int = 100, sortBufferDrainTimeout: Duration = .seconds(1),
        peerRequestTimeout: Duration = .seconds(5), errorAggregationWindow: Duration = .seconds(10),
        relayName: String = ProcessInfo.processInfo.hostName
    ) {
        self.pool = pool
        self.relayName = relayName
        self.sortBufferMaxLength = max(1, sortBufferMaxLength)
        self.sortBufferDrainTimeout = sortBufferDrainTimeout
        self.peerRequestTimeout = peerRequestTimeout
        self.errorAggregationWindow = errorAggregationWindow
    }

    /// What the per-agent readers hand the merging loop.
    enum Item: Sendable {
        case flow(RawFlowResponse)
        /// An Osprey agent's `FlowBatch`: flows, lost events and its marks, in the order sent.
        case batch(String, [RawFlowResponse])
        case status(Observer_GetFlowsResponse)
        /// An agent's stream (re)started: it has sent no mark yet.
        case joined(String)
        /// An agent says every flow before this time (ns since the epoch) has been sent.
        case mark(String, Int64)
        /// An agent's stream failed or ended.
        case left(String)
        /// The sort buffer's drain clock, and the moment to look for new agents.
        case tick
        /// An agent's stream is over for good (not following, or the peer was deleted).
        case finished
    }

    /// How many responses may wait between the agents' streams and the client (besides one
    /// batch per agent whose reader waits for room).
    static let channelCapacity = 256

    /// What an item weighs in the channel: the responses it carries.
    static func weight(_ item: Item) -> Int {
        if case .batch(_, let responses) = item { return responses.count }
        return 1
    }

    /// GetFlows with typed responses (what the generated service registers; `passthrough`
    /// replaces it with the same merge sending the agents' bytes as they came).
    public func getFlows(
        request: Observer_GetFlowsRequest, response: RPCWriter<Observer_GetFlowsResponse>, context: ServerContext
    ) async throws {
        try await Self.untilClientLeaves(context) { [self] in
            try await merge(request) { try await response.write(contentsOf: try $0.map { try $0.decoded() }) }
        }
    }

    /// Runs `body` until it ends or the RPC is cancelled (the client went away): gRPC says so
    /// through the context's cancellation handle, not by cancelling the handler's task, and a
    /// follow whose filters rarely match would otherwise keep every agent's stream open.
    static func untilClientLeaves(
        _ context: ServerContext, _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                try await context.cancellation.cancelled
                return false
            }
            defer { group.cancelAll() }
            _ = try await group.next()
        }
    }

    /// GetFlows registered over the generated one: flows go from the agents to the client as
    /// the bytes they came in (no decoding and encoding again). List it after the service.
    public var passthrough: some RegistrableRPCService { FlowPassthrough(relay: self) }

    struct FlowPassthrough: RegistrableRPCService {
        let relay: RelayObserverService

        func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
            router.registerServerStreaming(
                Observer_Observer.Method.GetFlows.descriptor,
                deserializer: ProtobufDeserializer<Observer_GetFlowsRequest>(), serializer: RawFlowResponseSerializer()
            ) { [relay] request, _, context, writer in
                try await RelayObserverService.untilClientLeaves(context) {
                    try await relay.merge(request) { try await writer.write(contentsOf: $0) }
                }
            }
        }
    }

    /// At most this many responses go to the client in one write.
    static let writeBatch = 256

    /// The merge behind GetFlows: every agent's stream, in time order, handed to `write` in
    /// batches. What the agents have sent is merged until nothing more is waiting (or a batch is
    /// full), then written at once: one write per message cost the relay a hop to the
    /// connection's event loop and a flush per flow, most of its time at high rates.
    func merge(
        _ request: Observer_GetFlowsRequest, write: ([RawFlowResponse]) async throws -> Void
    ) async throws {
        var outbox: [RawFlowResponse] = []
        func send(_ response: RawFlowResponse) { outbox.append(response) }
        func flush() async throws {
            guard !outbox.isEmpty else { return }
            try await write(outbox)
            outbox.removeAll(keepingCapacity: true)
        }
        // Refused once here rather than by every agent.
        do { _ = try FlowRequest(request) } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
        let started = Date()
        let peers = pool.peers
        let connected = peers.filter(\.isConnected)
        let unavailable = peers.filter { !$0.isConnected }
        if !connected.isEmpty {
            send(try RawFlowResponse(Self.status(.nodeConnected, connected.map(\.name), relay: relayName)))
        }
        if !unavailable.isEmpty {
            send(
                try RawFlowResponse(
                    Self.status(
                        .nodeUnavailable, unavailable.map(\.name),
                        message: unavailable.compactMap { $0.lastError.map { "\($0)" } }.first ?? "", relay: relayName))
            )
        }
        try await flush()
        guard !connected.isEmpty || request.follow else { return }

        // N per node for `number`, never more than the configured maximum (nor an overflow).
        let perNode = request.number > 0 ? Int(clamping: request.number) : sortBufferMaxLength
        let wanted = perNode.multipliedReportingOverflow(by: max(1, connected.count))
        var buffer = SortBuffer(
            capacity: wanted.overflow ? sortBufferMaxLength : min(sortBufferMaxLength, wanted.partialValue))
        let channel = BoundedChannel<Item>(capacity: Self.channelCapacity, weight: Self.weight)
        let drainNanoseconds = Durations.nanoseconds(sortBufferDrainTimeout)
        var errors = NodeErrorAggregator(window: errorAggregationWindow)
        // The agents whose stream runs, and the last mark of each (nil: none yet).
        var marks: [String: Int64?] = [:]
        /// Flows before this time may leave: every running agent has passed it (Int64.min while
        /// an agent has sent no mark yet, or none is running).
        var passed = Int64.min
        /// Flows before `window` (the sort window's edge, wall clock) that reached the relay
        /// before `arrivedBefore` (as long ago, monotonic) may leave as well: a flow waits out the
        /// window from its arrival too, so that the history a follow starts with, older than the
        /// window, is merged like live flows. Both move at each tick.
        var window = Int64.min
        var arrivedBefore = Int64.min
        func recompute(tick: Bool = false) {
            var lowest = Int64.max
            for mark in marks.values {
                guard let mark else {
                    lowest = .min
                    break
                }
                lowest = min(lowest, mark)
            }
            passed = marks.isEmpty ? .min : lowest
            guard tick else { return }
            window = SortBuffer.nanoseconds(FlowMessage.timestamp(Date())) - drainNanoseconds
            arrivedBefore = Self.monotonicNow() - drainNanoseconds
        }
        func release() {
            for flow in buffer.popReleased(passed: passed, window: window, arrivedBefore: arrivedBefore) {
                send(flow)
            }
        }
        func add(_ flow: RawFlowResponse, arrived: Int64) {
            if let oldest = buffer.push(flow, arrived: arrived) { send(oldest) }
            release()
        }
        func mark(_ name: String, _ time: Int64) {
            let before = marks[name] ?? nil
            marks[name] = time
            if let before, time < before {
                // The agent's wall clock was set back (its marks otherwise only move forward).
                // Flows told in the old clock and in the new one cannot be merged by time: what
                // is held leaves now, in order, rather than wait until the new clock reaches
                // the old one's times, and the merge starts again from the marks as they are.
                for flow in buffer.drain() { send(flow) }
                recompute()
                return
            }
            // Only the agent furthest behind can move the minimum (the scan is O(agents)).
            guard before.map({ $0 <= passed }) ?? true else { return }
            recompute()
            release()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var streaming = Set<String>()
            var active = 0
            func start(_ peer: PeerPool.Peer, _ request: Observer_GetFlowsRequest) {
                streaming.insert(peer.name)
                active += 1
                group.addTask { await read(from: peer.name, request: request, started: started, into: channel) }
            }
            for peer in connected { start(peer, request) }
            // Four ticks a window: a flow released by the window waits it out and a quarter more
            // at most.
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: sortBufferDrainTimeout / 4)
                    channel.trySend(.tick)
                }
            }
            defer {
                channel.finish()
                group.cancelAll()
            }
            /// The next item: one already waiting while the batch has room, else (the batch
            /// written) the next to arrive.
            func next() async throws -> Item? {
                if outbox.count < Self.writeBatch, let ready = channel.tryReceive() { return ready }
                try await flush()
                return await channel.receive()
            }
            merging: while let item = try await next() {
                switch item {
                case .flow(let flow):
                    add(flow, arrived: Self.monotonicNow())
                case .batch(let name, let responses):
                    let arrived = Self.monotonicNow()
                    for response in responses {
                        if response.kind == .mark { mark(name, response.time) } else { add(response, arrived: arrived) }
                    }
                case .joined(let name):
                    marks[name] = .some(nil)
                    recompute()
                case .mark(let name, let time):
                    mark(name, time)
                case .left(let name):
                    marks[name] = nil
                    recompute()
                    release()
                case .status(let status) where NodeErrorAggregator.isNodeError(status):
                    if let released = errors.add(status, now: .now) { send(try RawFlowResponse(released)) }
                case .status(let status):
                    send(try RawFlowResponse(status))
                case .tick:
                    recompute(tick: true)
                    release()
                    if let due = errors.expired(now: .now) { send(try RawFlowResponse(due)) }
                    guard request.follow else { continue }
                    // Agents that appeared (or came back before their first stream) join now.
                    for peer in pool.peers where peer.isConnected && !streaming.contains(peer.name) {
                        send(try RawFlowResponse(Self.status(.nodeConnected, [peer.name], relay: relayName)))
                        start(peer, Self.resuming(request, after: nil, started: started))
                    }
                case .finished:
                    active -= 1
                    if active == 0, !request.follow { break merging }
                }
            }
            for flow in buffer.drain() { send(flow) }
            if let held = errors.flush() { send(try RawFlowResponse(held)) }
            try await flush()
        }
    }

    /// One agent's part of a GetFlows call: forwards its responses; when following, outlives
    /// the agent's failures and resumes after the last flow it delivered.
    private func read(
        from name: String, request original: Observer_GetFlowsRequest, started: Date,
        into channel: BoundedChannel<Item>
    ) async {
        var request = original
        // The time of the last flow delivered (ns since the epoch), to resume after it.
        let last = Lock<Int64?>(nil)
        // Only a follow without an end is merged by marks.
        let metadata: Metadata = original.follow && !original.hasUntil ? [ProgressMark.header: "1"] : [:]
        // Osprey agents send their flows in batches; others (Cilium's) answer UNIMPLEMENTED and
        // are read one response at a time through Hubble's GetFlows.
        var batched = true
        while !Task.isCancelled {
            guard let client = pool.peer(named: name)?.client else { break }
            let reason: String
            do {
                if !metadata.isEmpty { try await channel.send(.joined(name)) }
                /// The call, with `each` taking every message the agent sends.
                func call<Message: Sendable>(
                    _ descriptor: MethodDescriptor, _ deserializer: some MessageDeserializer<Message>,
                    each: @escaping @Sendable (Message) async throws -> Void
                ) async throws {
                    try await client.serverStreaming(
                        request: ClientRequest(message: request, metadata: metadata), descriptor: descriptor,
                        serializer: ProtobufSerializer<Observer_GetFlowsRequest>(), deserializer: deserializer,
                        options: .defaults
                    ) { stream in
                        for try await message in stream.messages { try await each(message) }
                    }
                }
                if batched {
                    try await call(Osprey_V1_FlowBatches.Method.GetFlowBatches.descriptor, FlowBatchDeserializer()) {
                        batch in
                        if let time = batch.last(where: { $0.hasTime && $0.kind != .mark })?.time {
                            last.withLock { $0 = time }
                        }
                        try await channel.send(.batch(name, batch))
                    }
                } else {
                    try await call(Observer_Observer.Method.GetFlows.descriptor, RawFlowResponseDeserializer()) {
                        message in
                        if message.kind == .mark {
                            try await channel.send(.mark(name, message.time))
                            return
                        }
                        if message.hasTime { last.withLock { $0 = message.time } }
                        try await channel.send(.flow(message))
                    }
                }
                guard request.follow, !request.hasUntil else { break }
                reason = "the stream ended"
            } catch let error as RPCError where batched && error.code == .unimplemented {
                batched = false  // not an Osprey agent: nothing was sent yet, ask again with GetFlows
                continue
            } catch {
                if Task.isCancelled { return }
                reason = PeerPool.describe(error)
                if !request.follow {
                    let state: Relay_NodeState =
                        (error as? RPCError)?.code == .unavailable ? .nodeUnavailable : .nodeError
                    _ = try? await channel.send(.status(Self.status(state, [name], message: reason, relay: relayName)))
                    break
                }
            }
            if !metadata.isEmpty { _ = try? await channel.send(.left(name)) }
            pool.reportOffline(name: name, reason: reason)
            guard
                (try? await channel.send(
                    .status(Self.status(.nodeUnavailable, [name], message: reason, relay: relayName)))) != nil
            else { return }
            // Wait for the agent's health check to pass again, however long that takes.
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                guard let peer = pool.peer(named: name) else {
                    _ = try? await channel.send(.finished)
                    return
                }
                if peer.isConnected { break }
            }
            guard (try? await channel.send(.status(Self.status(.nodeConnected, [name], relay: relayName)))) != nil
            else { return }
            request = Self.resuming(original, after: last.withLock { $0 }, started: started)
        }
        _ = try? await channel.send(.finished)
    }

    /// Monotonic nanoseconds: when a flow reached the relay.
    static func monotonicNow() -> Int64 { Int64(truncatingIfNeeded: DispatchTime.now().uptimeNanoseconds) }

    /// The request that continues a follow stream: the flows after `after` (else since the
    /// call started), then live ones.
    static func resuming(
        _ request: Observer_GetFlowsRequest, after last: Int64?, started: Date
    ) -> Observer_GetFlowsRequest {
        var next = request
        next.number = 0
        next.first = false
        let after = (last ?? SortBuffer.nanoseconds(FlowMessage.timestamp(started))) + 1
        let since = Google_Protobuf_Timestamp.with {
            $0.seconds = after / 1_000_000_000
            $0.nanos = Int32(after % 1_000_000_000)
        }
        if !request.hasSince || SortBuffer.nanoseconds(request.since) < SortBuffer.nanoseconds(since) {
            next.since = since
        }
        return next
    }

    /// A node status event, sent in the name of `relay`.
    static func status(
        _ state: Relay_NodeState, _ names: [String], message: String = "", relay: String
    ) -> Observer_GetFlowsResponse {
        .with {
            $0.nodeName = relay
            $0.nodeStatus = .with {
                $0.stateChange = state
                $0.nodeNames = names
                $0.message = message
            }
            $0.time = FlowMessage.timestamp(Date())
        }
    }

    public func getAgentEvents(
        request: Observer_GetAgentEventsRequest, response: RPCWriter<Observer_GetAgentEventsResponse>,
        context: ServerContext
    ) async throws {
        throw RPCError(code: .unimplemented, message: "osprey-relay does not serve agent events; use GetFlows.")
    }

    public func getDebugEvents(
        request: Observer_GetDebugEventsRequest, response: RPCWriter<Observer_GetDebugEventsResponse>,
        context: ServerContext
    ) async throws {
        throw RPCError(code: .unimplemented, message: "osprey-relay does not serve debug events; use GetFlows.")
    }

    /// Asks every connected agent the same unary question at once; the answers by node name
    /// (agents that fail or time out are left out).
    private func askConnected<Answer: Sendable>(
        _ peers: [PeerPool.Peer],
        _ question:
            @escaping @Sendable (Observer_Observer.Client<HTTP2ClientTransport.Posix>, CallOptions)
            async throws -> Answer
    ) async -> [String: Answer] {
        var options = CallOptions.defaults
        options.timeout = peerRequestTimeout
        let call = options
        return await withTaskGroup(of: (String, Answer?).self) { group in
            for peer in peers where peer.isConnected {
                guard let client = peer.client else { continue }
                group.addTask { (peer.name, try? await question(Observer_Observer.Client(wrapping: client), call)) }
            }
            var answers: [String: Answer] = [:]
            for await (name, answer) in group { answers[name] = answer }
            return answers
        }
    }

    /// Each connected agent's ServerStatus.
    private func statuses(of peers: [PeerPool.Peer]) async -> [String: Observer_ServerStatusResponse] {
        await askConnected(peers) { try await $0.serverStatus(Observer_ServerStatusRequest(), options: $1) }
    }

    /// The agents' figures summed; nodes that did not answer are named (at most 10).
    public func serverStatus(
        request: Observer_ServerStatusRequest, context: ServerContext
    ) async throws
        -> Observer_ServerStatusResponse
    {
        let peers = pool.peers
        let answers = await statuses(of: peers)
        let down = peers.map(\.name).filter { answers[$0] == nil }
        return .with {
            for status in answers.values {
                $0.numFlows += status.numFlows
                $0.maxFlows += status.maxFlows
                $0.seenFlows += status.seenFlows
                $0.flowsRate += status.flowsRate
                $0.uptimeNs = max($0.uptimeNs, status.uptimeNs)
            }
            $0.version = OspreyVersion.current
            $0.numConnectedNodes = Google_Protobuf_UInt32Value(UInt32(answers.count))
            $0.numUnavailableNodes = Google_Protobuf_UInt32Value(UInt32(down.count))
            $0.unavailableNodes = Array(down.prefix(10))
        }
    }

    /// Every known node: connected ones with their agent's figures, the others with their state.
    public func getNodes(
        request: Observer_GetNodesRequest, context: ServerContext
    ) async throws
        -> Observer_GetNodesResponse
    {
        let peers = pool.peers
        let answers = await statuses(of: peers)
        return .with {
            $0.nodes = peers.map { peer in
                .with {
                    $0.name = peer.name
                    $0.address = peer.address
                    $0.tls = .with {
                        $0.enabled = peer.tlsEnabled
                        $0.serverName = peer.tlsServerName ?? ""
                    }
                    guard peer.isConnected else {
                        $0.state = peer.state == .nodeError ? .nodeError : .nodeUnavailable
                        return
                    }
                    guard let status = answers[peer.name] else {
                        $0.state = .nodeError
                        return
                    }
                    $0.state = .nodeConnected
                    $0.version = status.version
                    $0.uptimeNs = status.uptimeNs
                    $0.numFlows = status.numFlows
                    $0.maxFlows = status.maxFlows
                    $0.seenFlows = status.seenFlows
                }
            }
        }
    }

    /// The namespaces every connected agent saw in the last hour, merged; agents that do not
    /// answer are left out (a partial answer beats none).
    public func getNamespaces(
        request: Observer_GetNamespacesRequest, context: ServerContext
    ) async throws
        -> Observer_GetNamespacesResponse
    {
        let answers = await askConnected(pool.peers) {
            try await $0.getNamespaces(Observer_GetNamespacesRequest(), options: $1).namespaces
        }
        var all: [String: Observer_Namespace] = [:]
        for namespace in answers.values.joined() { all["\(namespace.cluster)/\(namespace.namespace)"] = namespace }
        return .with {
            $0.namespaces = all.values.sorted {
                ($0.cluster, $0.namespace) < ($1.cluster, $1.namespace)
            }
        }
    }
}
