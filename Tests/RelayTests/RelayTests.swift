import FlowTestKit
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import HubbleObserver
import HubbleServer
import HubbleTransport
import HubbleWire
import Lab
import Locking
import Logging
import Observer
import Testing

@testable import Flows
@testable import Relay

/// osprey-relay's services over real HTTP/2 (unix sockets) in front of real agent Hubble
/// servers, each on its own observer: merging, per-node counts, node states, follow streams
/// across an agent restart, back-pressure from a stalled client, TLS and mutual TLS.
@Suite("osprey-relay over real gRPC", .serialized)
struct RelayTests {
    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    /// One agent's Hubble server on a unix socket, restartable on the same socket.
    final class Agent: Sendable {
        let name: String
        let socket: String
        let observer: Observer
        let peers: @Sendable () -> [PeerService.Peer]
        let tls: ServerTLS?
        let task = Lock<Task<Void, any Error>?>(nil)

        init(
            _ name: String, flows: [Flow] = [], tls: ServerTLS? = nil,
            peers: @escaping @Sendable () -> [PeerService.Peer] = { [] }
        ) throws {
            self.name = name
            socket = FileManager.default.temporaryDirectory.appendingPathComponent("osp-relay-\(UUID()).sock").path
            observer = try Observer(capacity: 65535)
            observer.append(flows)
            self.peers = peers
            self.tls = tls
        }

        var address: String { "unix://\(socket)" }

        /// Serves; `marks: false` serves like Cilium's agent, which never sends progress marks
        /// and has no osprey.v1.FlowBatches; `batchesOnly` serves FlowBatches without Hubble's
        /// GetFlows, so flows that arrive prove the relay read them in batches.
        func start(observer: Observer? = nil, marks: Bool = true, batchesOnly: Bool = false) async throws {
            let listener = HubbleServer.Listener(address: HubbleAddress(endpoint: .unix(path: socket)), tls: tls)
            let service = ObserverService(observer: observer ?? self.observer, nodeName: name, clusterName: "osp")
            let server =
                batchesOnly
                ? HubbleServer(services: [service.batches, HealthService()], listeners: [listener])
                : marks
                    ? HubbleServer.agent(
                        observer: observer ?? self.observer, nodeName: name, clusterName: "osp", listeners: [listener],
                        peers: peers)
                    : HubbleServer(
                        services: [
                            WithoutMarks(
                                inner: ObserverService(
                                    observer: observer ?? self.observer, nodeName: name, clusterName: "osp")),
                            HealthService(),
                        ], listeners: [listener])
            unlink(socket)
            task.withLock { $0 = Task { try await server.run() } }
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) {
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        /// Stops serving without waiting (for `defer`): the socket file goes at once.
        func stopNow() {
            task.withLock { task in
                task?.cancel()
                task = nil
            }
            unlink(socket)
        }

        func stop() async {
            let running = task.withLock { task in
                defer { task = nil }
                return task
            }
            running?.cancel()
            _ = await running?.result
            unlink(socket)
        }
    }

    /// Two agents, osp-n1 and osp-n2, serving for the length of `body`.
    func withTwoAgents(_ body: (Agent, Agent) async throws -> Void) async throws {
        let n1 = try Agent("osp-n1")
        let n2 = try Agent("osp-n2")
        defer {
            n1.stopNow()
            n2.stopNow()
        }
        try await n1.start()
        try await n2.start()
        try await body(n1, n2)
    }

    /// A flow of `node` at `offset` seconds after the fixtures' start; `number` ends its UUID.
    static func flow(_ node: String, at offset: Double, number: Int) -> Flow {
        var flow = Fixtures.syn
        flow.time = Fixtures.start.addingTimeInterval(offset)
        flow.uuid = UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", number))!
        flow.nodeName = node
        return flow
    }

    /// A relay over `discovery`, serving on a fresh socket, handed to `body` once `connected`
    /// of its peers passed their health check (and `known` are known, connected or not).
    func withRelay(
        _ discovery: PeerPool.Discovery, connected: Int, known: Int? = nil,
        dialer: HubbleDialer = HubbleDialer(tls: nil), sortWindow: Duration = .milliseconds(200),
        serverTLS: ServerTLS? = nil, connect clientTLS: ClientTLS? = nil,
        _ body: (Client, PeerPool, String) async throws -> Void
    ) async throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("osp-relay-\(UUID()).sock").path
        defer { unlink(socket) }
        var logger = Logger(label: "osprey-relay-test")
        logger.logLevel = .critical
        let pool = PeerPool(
            discovery: discovery, dialer: dialer, checkInterval: .milliseconds(100),
            retryInterval: .milliseconds(200), logger: logger)
        let observer = RelayObserverService(pool: pool, sortBufferDrainTimeout: sortWindow, relayName: "osp-relay")
        let relay = HubbleServer(
            services: [
                observer, observer.passthrough,
                HealthService(),
            ],
            listeners: [.init(address: HubbleAddress(endpoint: .unix(path: socket)), tls: serverTLS)])
        let tasks = [Task { await pool.run() }, Task { try await relay.run() }]
        defer { for task in tasks { task.cancel() } }
        // Generous: the lab suites' synchronous tests can hold every thread of the cooperative
        // pool for a while (2 on this machine), and the pool's health checks wait for one.
        // Seen: 111 s for a test whose work takes under one, and once no peer connected in 60 s.
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline,
            pool.peers.filter(\.isConnected).count < connected || pool.peers.count < (known ?? connected)
                || !FileManager.default.fileExists(atPath: socket)
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(pool.peers.filter(\.isConnected).count == connected, "peers: \(pool.peers.map(\.name))")
        let transport = try HubbleDialer(tls: clientTLS).transport(to: HubbleAddress(endpoint: .unix(path: socket)))
        try await withGRPCClient(transport: transport) { client in try await body(client, pool, socket) }
    }

    func responses(_ client: Client, _ request: Observer_GetFlowsRequest) async throws -> [Observer_GetFlowsResponse] {
        try await Observer_Observer.Client(wrapping: client).getFlows(request) { response in
            var messages: [Observer_GetFlowsResponse] = []
            for try await message in response.messages { messages.append(message) }
            return messages
        }
    }

    @Test("a follow client that leaves: the relay ends its streams to every agent, filters matching nothing or not")
    func followerLeaves() async throws {
        try await withTwoAgents { n1, n2 in
            try await withRelay(.fixed([(n1.name, n1.address), (n2.name, n2.address)]), connected: 2) { client, _, _ in
                let quiet = Observer_GetFlowsRequest.with {
                    $0.follow = true
                    $0.whitelist = [.with { $0.sourcePod = ["nowhere/nothing"] }]
                }
                // The client reads the relay's node status, waits until the relay follows both
                // agents, then goes away.
                let first = try await Observer_Observer.Client(wrapping: client).getFlows(quiet) {
                    response -> Observer_GetFlowsResponse? in
                    for try await message in response.messages {
                        for _ in 0..<250 where n1.observer.subscriberCount + n2.observer.subscriberCount < 2 {
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        return message
                    }
                    return nil
                }
                #expect(first?.isNodeStatus == true)
                #expect(n1.observer.subscriberCount == 1 && n2.observer.subscriberCount == 1)
                for _ in 0..<250 where n1.observer.subscriberCount + n2.observer.subscriberCount > 0 {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(n1.observer.subscriberCount == 0 && n2.observer.subscriberCount == 0)
            }
        }
    }

    /// For follows: they end with DEADLINE_EXCEEDED rather than hang a failing test.
    static let bounded: CallOptions = {
        var options = CallOptions.defaults
        options.timeout = .seconds(60)
        return options
    }()

    static func numbers(_ responses: [Observer_GetFlowsResponse]) -> [Int] {
        responses.compactMap { $0.isFlow ? Int($0.flow.uuid.suffix(4)) : nil }
    }

    static func statuses(_ responses: [Observer_GetFlowsResponse]) -> [(Relay_NodeState, [String])] {
        responses.compactMap {
            guard case .nodeStatus(let status)? = $0.responseTypes else { return nil }
            return (status.stateChange, status.nodeNames)
        }
    }

    @Test(
        "the relay's bounded queue: every element arrives once, in each sender's order, never more than capacity held")
    func boundedChannel() async throws {
        let channel = BoundedChannel<Int>(capacity: 2)
        let senders = 4
        let each = 20000
        #expect(channel.tryReceive() == nil, "nothing queued: no wait, no element")
        async let received: [Int] = {
            // As the merge takes them: what is queued without waiting, then a wait for more.
            var all: [Int] = []
            while true {
                if let value = channel.tryReceive() {
                    all.append(value)
                } else if let value = await channel.receive() {
                    all.append(value)
                } else {
                    return all
                }
            }
        }()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<senders {
                group.addTask { for index in 0..<each { try await channel.send(sender * each + index) } }
            }
            try await group.waitForAll()
        }
        channel.finish()
        let all = await received
        #expect(all.count == senders * each)
        for sender in 0..<senders {
            let mine = all.filter { $0 / each == sender }
            #expect(mine == Array(sender * each..<(sender + 1) * each))
        }
    }

    @Test(
        "the queue weighs batches by what they hold: a sender waits while the load is at capacity, a heavy one passes alone"
    )
    func weightedChannel() async throws {
        // Each element is a batch of that many responses.
        let channel = BoundedChannel<Int>(capacity: 4, weight: { $0 })
        #expect(channel.trySend(10), "heavier than the capacity, but the queue is empty")
        #expect(!channel.trySend(1), "the load (10) is at capacity")
        #expect(channel.tryReceive() == 10)
        #expect(channel.trySend(3) && channel.trySend(3), "3 < 4 leaves room for one more")
        #expect(!channel.trySend(1), "the load is 6")
        // A waiting sender is let in once the load drops below the capacity, in order.
        let waiting = Task {
            try await channel.send(2)
            try await channel.send(1)
        }
        try await Task.sleep(for: .milliseconds(50))
        var received: [Int] = []
        while received.count < 4 {
            if let value = channel.tryReceive() {
                received.append(value)
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        try await waiting.value
        #expect(received == [3, 3, 2, 1])
    }

    @Test("GetFlows merges every node's flows in time order, --last N is N per node, connected nodes come first")
    func mergesInTimeOrder() async throws {
        let agents = [
            try Agent("osp-n1", flows: [1, 3, 5, 7].map { Self.flow("osp-n1", at: Double($0), number: $0) }),
            try Agent("osp-n2", flows: [2, 4, 6, 8].map { Self.flow("osp-n2", at: Double($0), number: $0) }),
            try Agent(
                "osp-n3", flows: [Self.flow("osp-n3", at: 0.5, number: 10), Self.flow("osp-n3", at: 9, number: 9)]),
        ]
        for agent in agents { try await agent.start() }
        defer { for agent in agents { agent.stopNow() } }
        try await withRelay(.fixed(agents.map { ($0.name, $0.address) }), connected: 3) { client, _, _ in
            let all = try await responses(client, .with { $0.number = 100 })
            #expect(Self.statuses(all).first.map { $0.0 } == .nodeConnected)
            #expect(Self.statuses(all).first.map { $0.1 } == ["osp-n1", "osp-n2", "osp-n3"])
            #expect(all.first?.isNodeStatus == true, "the node status comes before any flow")
            #expect(Self.numbers(all) == [10, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            let fromN3 = all.filter { $0.isFlow && $0.nodeName == "osp-n3" }
            #expect(fromN3.count == 2)

            // --all (number at its maximum) is every flow, not an overflow.
            #expect(Self.numbers(try await responses(client, .with { $0.number = .max })) == Self.numbers(all))
            // Hubble Relay's --last N: the newest N of each node, merged.
            let last = try await responses(client, .with { $0.number = 2 })
            #expect(Self.numbers(last) == [10, 5, 6, 7, 8, 9])
            // Filters travel to the agents.
            let filtered = try await responses(
                client, .with { $0.whitelist = [.with { $0.nodeName = ["osp-n2"] }] })
            #expect(Self.numbers(filtered) == [2, 4, 6, 8])
            // A request the agents would refuse is refused once, by the relay.
            await #expect(throws: RPCError.self) {
                _ = try await responses(client, .with { $0.whitelist = [.with { $0.sourceIp = ["10.0.0.300"] }] })
            }
        }
    }

    @Test("Osprey agents are read through osprey.v1.FlowBatches, Cilium's through GetFlows, merged alike")
    func batchesAndGetFlows() async throws {
        // Flows of the last minute, so that the follow below releases them by the sort window.
        @Sendable func recent(_ node: String, _ number: Int) -> Flow {
            var flow = Self.flow(node, at: 0, number: number)
            flow.time = Date().addingTimeInterval(Double(number) - 60)
            return flow
        }
        let batched = try Agent("osp-n1", flows: [1, 3, 5].map { recent("osp-n1", $0) })
        let cilium = try Agent("osp-n2", flows: [2, 4, 6].map { recent("osp-n2", $0) })
        try await batched.start(batchesOnly: true)
        try await cilium.start(marks: false)
        defer {
            batched.stopNow()
            cilium.stopNow()
        }
        try await withRelay(.fixed([batched, cilium].map { ($0.name, $0.address) }), connected: 2) { client, _, _ in
            #expect(Self.numbers(try await responses(client, .with { $0.number = 100 })) == [1, 2, 3, 4, 5, 6])
            #expect(Self.numbers(try await responses(client, .with { $0.number = 1 })) == [5, 6])
            // A follow: history, then a new flow from each, in time order.
            let followed = try await Observer_Observer.Client(wrapping: client).getFlows(
                .with {
                    $0.follow = true
                    $0.number = 1
                }, options: Self.bounded
            ) { response -> [Int] in
                Task {
                    try await Task.sleep(for: .milliseconds(300))
                    batched.observer.append([recent("osp-n1", 60)])
                    try await Task.sleep(for: .milliseconds(10))
                    cilium.observer.append([recent("osp-n2", 61)])
                }
                var numbers: [Int] = []
                for try await message in response.messages {
                    numbers += Self.numbers([message])
                    if numbers.count == 4 { break }
                }
                return numbers
            }
            #expect(followed == [5, 6, 60, 61])
        }
    }

    @Test("NODE_ERROR events with the same message are coalesced over the window; another message releases them")
    func nodeErrorAggregation() {
        func error(_ node: String, _ message: String) -> Observer_GetFlowsResponse {
            RelayObserverService.status(.nodeError, [node], message: message, relay: "osp-relay")
        }
        var errors = NodeErrorAggregator(window: .seconds(10))
        let start = ContinuousClock.now
        #expect(errors.add(error("osp-n1", "refused"), now: start) == nil)
        #expect(errors.add(error("osp-n2", "refused"), now: start + .seconds(3)) == nil)
        #expect(errors.expired(now: start + .seconds(9)) == nil, "held for the whole window")
        // A different error releases the held one, with every node that had it.
        let released = errors.add(error("osp-n3", "timed out"), now: start + .seconds(9))
        #expect(released?.nodeStatus.nodeNames == ["osp-n1", "osp-n2"])
        #expect(released?.nodeStatus.message == "refused")
        // Its own window starts when it arrives.
        #expect(errors.expired(now: start + .seconds(18)) == nil)
        #expect(errors.expired(now: start + .seconds(19))?.nodeStatus.nodeNames == ["osp-n3"])
        #expect(errors.flush() == nil, "nothing held twice")
        #expect(errors.add(error("osp-n4", "refused"), now: start + .seconds(20)) == nil)
        #expect(errors.flush()?.nodeStatus.nodeNames == ["osp-n4"], "the end of a stream releases it")
    }

    @Test("two nodes that fail GetFlows with the same error are named in one NODE_ERROR; the healthy one's flows come")
    func nodeErrorsCoalescedOverGRPC() async throws {
        // Nodes that answer health checks but serve no observer: GetFlows fails (UNIMPLEMENTED).
        let broken = (1...2).map { index in
            let socket = FileManager.default.temporaryDirectory.appendingPathComponent("osp-relay-\(UUID()).sock").path
            let server = HubbleServer(
                services: [HealthService()],
                listeners: [.init(address: HubbleAddress(endpoint: .unix(path: socket)), tls: nil)])
            return (name: "osp-broken-\(index)", socket: socket, task: Task { try await server.run() })
        }
        defer {
            for node in broken {
                node.task.cancel()
                unlink(node.socket)
            }
        }
        let healthy = try Agent("osp-n1", flows: [Self.flow("osp-n1", at: 1, number: 1)])
        try await healthy.start()
        defer { healthy.stopNow() }
        let peers = [(healthy.name, healthy.address)] + broken.map { ($0.name, "unix://\($0.socket)") }
        try await withRelay(.fixed(peers), connected: 3) { client, _, _ in
            let all = try await responses(client, .with { $0.number = 10 })
            #expect(Self.numbers(all) == [1])
            let errors = Self.statuses(all).filter { $0.0 == .nodeError }
            #expect(errors.count == 1, "\(Self.statuses(all))")
            #expect(errors.first?.1.sorted() == ["osp-broken-1", "osp-broken-2"])
        }
    }

    @Test("an unreachable node is named in GetFlows, ServerStatus and GetNodes; the others still answer")
    func unreachableNode() async throws {
        let agents = [
            try Agent("osp-n1", flows: [Self.flow("osp-n1", at: 1, number: 1)]),
            try Agent("osp-n2", flows: [Self.flow("osp-n2", at: 2, number: 2)]),
        ]
        for agent in agents { try await agent.start() }
        defer { for agent in agents { agent.stopNow() } }
        let peers = agents.map { ($0.name, $0.address) } + [("osp-gone", "unix:///run/osprey/osp-no-such.sock")]
        try await withRelay(.fixed(peers), connected: 2, known: 3) { client, _, _ in
            let all = try await responses(client, .with { $0.number = 10 })
            let states = Self.statuses(all)
            #expect(states.count == 2)
            #expect(states.first.map { $0.0 } == .nodeConnected)
            #expect(states.first.map { $0.1 } == ["osp-n1", "osp-n2"])
            #expect(states.last.map { $0.0 } == .nodeUnavailable)
            #expect(states.last.map { $0.1 } == ["osp-gone"])
            // As Hubble Relay: the relay names itself on its node status events.
            #expect(all.filter { !$0.isFlow }.allSatisfy { $0.nodeName == "osp-relay" })
            #expect(Self.numbers(all) == [1, 2])

            let observer = Observer_Observer.Client(wrapping: client)
            let status = try await observer.serverStatus(Observer_ServerStatusRequest())
            #expect(status.numFlows == 2)
            #expect(status.maxFlows == 2 * 65535)
            #expect(status.numConnectedNodes.value == 2)
            #expect(status.numUnavailableNodes.value == 1)
            #expect(status.unavailableNodes == ["osp-gone"])
            #expect(status.version == OspreyVersion.current)

            let nodes = try await observer.getNodes(Observer_GetNodesRequest()).nodes
            #expect(nodes.map(\.name) == ["osp-gone", "osp-n1", "osp-n2"])
            #expect(nodes.map(\.state) == [.nodeUnavailable, .nodeConnected, .nodeConnected])
            #expect(nodes[1].numFlows == 1)
            #expect(
                nodes[1].version == OspreyVersion.current, "one version format: the agent's own GetNodes says the same")
            #expect(nodes[0].address == "unix:///run/osprey/osp-no-such.sock")

            let namespaces = try await observer.getNamespaces(Observer_GetNamespacesRequest()).namespaces
            #expect(namespaces.map(\.namespace) == ["shop"])
            let health = try await Grpc_Health_V1_Health.Client(wrapping: client).check(
                .with { $0.service = HealthService.observerServiceName })
            #expect(health.status == .serving)
        }
    }

    @Test("peer.Peer/Notify drives the relay: PEER_ADDED, PEER_DELETED and PEER_UPDATED (a new address)")
    func peerChanges() async throws {
        let n2 = try Agent("osp-n2", flows: [Self.flow("osp-n2", at: 2, number: 2)])
        let n3 = try Agent("osp-n3", flows: [Self.flow("osp-n3", at: 3, number: 3)])
        let listed = Lock<[PeerService.Peer]>([])
        let n1 = try Agent("osp-n1", flows: [Self.flow("osp-n1", at: 1, number: 1)]) { listed.withLock { $0 } }
        listed.withLock {
            $0 = [.init(name: "osp-n1", address: n1.address), .init(name: "osp-n2", address: n2.address)]
        }
        for agent in [n1, n2, n3] { try await agent.start() }
        defer { for agent in [n1, n2, n3] { agent.stopNow() } }
        try await withRelay(
            .peerService(HubbleAddress(endpoint: .unix(path: n1.socket)), serverName: nil), connected: 2
        ) { client, pool, _ in
            #expect(Self.numbers(try await responses(client, .with { $0.number = 10 })) == [1, 2])
            func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
                let deadline = Date().addingTimeInterval(60)  // generous: the pool can stall (see withRelay)
                while Date() < deadline, !condition() { try await Task.sleep(for: .milliseconds(50)) }
                #expect(condition(), "\(what)")
            }
            // osp-n2 leaves the peer list: PEER_DELETED.
            listed.withLock { $0.removeAll { $0.name == "osp-n2" } }
            try await waitUntil("osp-n2 deleted") { pool.peers.map(\.name) == ["osp-n1"] }
            #expect(Self.numbers(try await responses(client, .with { $0.number = 10 })) == [1])
            // osp-n2 comes back at another agent's address: PEER_ADDED, then PEER_UPDATED.
            listed.withLock { $0.append(.init(name: "osp-n2", address: n2.address)) }
            try await waitUntil("osp-n2 added") { pool.peer(named: "osp-n2")?.isConnected == true }
            listed.withLock { $0[1] = .init(name: "osp-n2", address: n3.address) }
            try await waitUntil("osp-n2 updated to n3's address") {
                pool.peer(named: "osp-n2")?.address == n3.address && pool.peer(named: "osp-n2")?.isConnected == true
            }
            #expect(Self.numbers(try await responses(client, .with { $0.number = 10 })) == [1, 3])
        }
    }

    @Test("a follow stream outlives an agent that dies, says so, and takes the agent back when it returns")
    func followAcrossRestart() async throws {
        try await withTwoAgents { n1, n2 in try await followAcrossRestart(n1, n2) }
    }

    func followAcrossRestart(_ n1: Agent, _ n2: Agent) async throws {
        try await withRelay(.fixed([(n1.name, n1.address), (n2.name, n2.address)]), connected: 2) { client, pool, _ in
            let seen = Received()
            func wait(_ what: String, _ condition: @escaping ([Observer_GetFlowsResponse]) -> Bool) async throws {
                let deadline = Date().addingTimeInterval(60)  // generous: the pool can stall (see withRelay)
                while Date() < deadline, !condition(seen.all) { try await Task.sleep(for: .milliseconds(20)) }
                #expect(condition(seen.all), "\(what)")
            }
            let stream = Task { [client] in
                try await Observer_Observer.Client(wrapping: client).getFlows(.with { $0.follow = true }) { response in
                    for try await message in response.messages { seen.append(message) }
                }
            }
            defer { stream.cancel() }
            try await wait("connected status") { Self.statuses($0).count == 1 }
            func live(_ node: String, _ number: Int) -> Flow {
                var flow = Self.flow(node, at: 0, number: number)
                flow.time = Date()
                return flow
            }
            // The relay subscribes to each agent just after announcing it: probe until both stream.
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, !Set(Self.numbers(seen.all)).isSuperset(of: [91, 92]) {
                n1.observer.append([live("osp-n1", 91)])
                n2.observer.append([live("osp-n2", 92)])
                try await Task.sleep(for: .milliseconds(100))
            }
            n1.observer.append([live("osp-n1", 1)])
            n2.observer.append([live("osp-n2", 2)])
            try await wait("both nodes' flows") { Set(Self.numbers($0)).isSuperset(of: [1, 2]) }

            await n2.stop()
            try await wait("n2 reported unavailable") {
                Self.statuses($0).contains { $0.0 == .nodeUnavailable && $0.1 == ["osp-n2"] }
            }
            n1.observer.append([live("osp-n1", 3)])
            try await wait("n1 still streams") { Self.numbers($0).contains(3) }
            #expect(pool.peer(named: "osp-n2")?.isConnected == false)

            // The agent comes back with an empty ring (a restarted process) and new flows.
            let restarted = try Observer(capacity: 4095)
            try await n2.start(observer: restarted)
            try await wait("n2 reported connected again") {
                Self.statuses($0).filter { $0.0 == .nodeConnected && $0.1 == ["osp-n2"] }.count == 1
            }
            restarted.append([live("osp-n2", 4)])
            try await wait("n2's new flow") { Self.numbers($0).contains(4) }
            #expect(
                Self.numbers(seen.all).filter { $0 < 90 }.sorted() == [1, 2, 3, 4], "nothing lost, nothing repeated")
        }
    }

    /// Keeps telling each observer that its node's clock has got to now, as an agent's event
    /// reader does after every poll, except for the observers in `paused`.
    final class Clocks: Sendable {
        let paused = Lock<Set<ObjectIdentifier>>([])
        let observers: [Observer]
        /// How far the nodes' wall clocks are ahead of this process's, in seconds.
        let ahead = Lock<Double>(0)

        init(_ observers: [Observer]) { self.observers = observers }

        /// Runs until the task is cancelled.
        func run() -> Task<Void, Never> {
            Task { [self] in
                // How far ahead each node's clock was at its last mark.
                var previous: [ObjectIdentifier: Double] = [:]
                while !Task.isCancelled {
                    let held = paused.withLock { $0 }
                    let ahead = ahead.withLock { $0 }
                    for observer in observers where !held.contains(ObjectIdentifier(observer)) {
                        // As the agent's pipeline: a mark may go back only after the clock was set back.
                        let setBack = previous[ObjectIdentifier(observer)].map { ahead < $0 } ?? false
                        observer.advance(to: Date().addingTimeInterval(ahead), afterClockStep: setBack)
                        previous[ObjectIdentifier(observer)] = ahead
                    }
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
        }

        /// Appends flow `number` to `agent`'s observer, stamped with the node's clock (or `at`);
        /// returns when.
        @discardableResult
        func live(_ agent: Agent, _ number: Int, at time: Date? = nil) -> Date {
            var flow = RelayTests.flow(agent.name, at: 0, number: number)
            flow.time = time ?? Date().addingTimeInterval(ahead.withLock { $0 })
            agent.observer.append([flow])
            return Date()
        }

        func pause(_ observer: Observer) { _ = paused.withLock { $0.insert(ObjectIdentifier(observer)) } }
        func resume(_ observer: Observer) { _ = paused.withLock { $0.remove(ObjectIdentifier(observer)) } }
    }

    /// A follow through the relay, with when each numbered flow arrived, until `cancel()`.
    final class LiveFollow: Sendable {
        let seen = Received()
        let stream: Task<Void, any Error>

        init(_ client: Client) {
            stream = Task { [seen] in
                try await Observer_Observer.Client(wrapping: client).getFlows(.with { $0.follow = true }) { response in
                    for try await message in response.messages { seen.append(message) }
                }
            }
        }

        var numbers: [Int] { RelayTests.numbers(seen.all) }

        /// Seconds from `start` to the arrival of flow `number` (nil: not arrived).
        func arrival(_ number: Int, since start: Date) -> Double? {
            seen.arrivals.withLock { $0[number] }.map { $0.timeIntervalSince(start) }
        }

        /// Waits until every flow in `numbers` arrived, or `seconds` passed.
        func wait(_ wanted: Set<Int>, for seconds: Double) async throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline, !Set(numbers).isSuperset(of: wanted) {
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        func cancel() { stream.cancel() }
    }

    @Test("an agent sends progress marks only to a follow that asks for them; hubble's requests see none")
    func marksOnlyWhenAsked() async throws {
        let n1 = try Agent("osp-n1")
        try await n1.start()
        defer { n1.stopNow() }
        let clocks = Clocks([n1.observer]).run()
        defer { clocks.cancel() }
        let transport = try HubbleDialer(tls: nil).transport(to: HubbleAddress(endpoint: .unix(path: n1.socket)))
        try await withGRPCClient(transport: transport) { client in
            for asks in [false, true] {
                let seen = Received()
                let stream = Task { [client] in
                    try await Observer_Observer.Client(wrapping: client).getFlows(
                        .with { $0.follow = true }, metadata: asks ? [ProgressMark.header: "1"] : [:]
                    ) { response in
                        for try await message in response.messages { seen.append(message) }
                    }
                }
                for number in 1...5 {
                    var flow = Self.flow("osp-n1", at: 0, number: number)
                    flow.time = Date()
                    n1.observer.append([flow])
                    try await Task.sleep(for: .milliseconds(100))
                }
                stream.cancel()
                let marks = seen.all.filter(ProgressMark.isMark)
                #expect(Self.numbers(seen.all).count >= 1, "flows came")
                if asks {
                    #expect(marks.count >= 3, "marks come about every 25 ms: \(marks.count) in 0.5 s")
                    #expect(marks.allSatisfy { $0.nodeName == "osp-n1" })
                    // A mark comes after every flow stamped before it.
                    var passed = Int64.min
                    for message in seen.all {
                        let time = SortBuffer.nanoseconds(message.time)
                        if ProgressMark.isMark(message) {
                            passed = max(passed, time)
                        } else {
                            #expect(time >= passed, "a flow older than a mark before it")
                        }
                    }
                } else {
                    #expect(marks.isEmpty, "a request without the header gets Hubble's stream, nothing else")
                }
            }
        }
    }

    @Test(
        "with progress marks the relay releases a flow once every agent has passed its time, in time order, without waiting out its sort window; an agent without marks brings the window back"
    )
    func progressMarks() async throws {
        try await withTwoAgents { n1, n2 in try await progressMarks(n1, n2) }
    }

    /// A relay with sort window `window` over `n1` and `n2`, whose clocks run `ahead` seconds
    /// ahead of this process's, and a follow through it; once both agents stream, `body` runs.
    func withMarkedMerge(
        _ n1: Agent, _ n2: Agent, ahead: Double = 0, window: Double,
        _ body: (Clocks, LiveFollow) async throws -> Void
    ) async throws {
        let clocks = Clocks([n1.observer, n2.observer])
        clocks.ahead.withLock { $0 = ahead }
        let ticking = clocks.run()
        defer { ticking.cancel() }
        try await withRelay(
            .fixed([(n1.name, n1.address), (n2.name, n2.address)]), connected: 2, sortWindow: .seconds(window)
        ) { client, _, _ in
            let follow = LiveFollow(client)
            defer { follow.cancel() }
            // Both agents stream (the relay subscribes just after announcing them).
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, !Set(follow.numbers).isSuperset(of: [91, 92]) {
                clocks.live(n1, 91)
                clocks.live(n2, 92)
                try await Task.sleep(for: .milliseconds(100))
            }
            try #require(Set(follow.numbers).isSuperset(of: [91, 92]), "both agents stream")
            try await Task.sleep(for: .milliseconds(300))
            try await body(clocks, follow)
        }
    }

    /// n2's clock stops: n1's flow `later` waits for it; n2's flow `earlier`, stamped before
    /// `later` but sent after it, goes first once n2's clock runs again. Returns when it did.
    func expectMergeWaits(
        _ clocks: Clocks, _ follow: LiveFollow, _ n1: Agent, _ n2: Agent, later: Int, earlier: Int, window: Double
    ) async throws -> Date {
        clocks.pause(n2.observer)
        let pausedAt = Date().addingTimeInterval(clocks.ahead.withLock { $0 })
        try await Task.sleep(for: .milliseconds(300))
        clocks.live(n1, later)
        try await Task.sleep(for: .milliseconds(500))
        #expect(!follow.numbers.contains(later), "held while n2 has not passed its time")
        // n2 was behind: its flow from between its last mark and n1's flow comes now.
        clocks.live(n2, earlier, at: pausedAt.addingTimeInterval(0.15))
        let resumed = Date()
        clocks.resume(n2.observer)
        try await follow.wait([later, earlier], for: window)
        let order = follow.numbers.filter { $0 == later || $0 == earlier }
        #expect(order == [earlier, later], "time order across nodes: \(order)")
        return resumed
    }

    /// The sort window of the relays that merge by marks: so long that a flow released by marks
    /// stays far below it even when a loaded CI machine stalls this process's tasks for seconds
    /// (a flow released after half of it has been waited for, not released by marks).
    static let markedWindow = 60.0

    func progressMarks(_ n1: Agent, _ n2: Agent) async throws {
        let window = Self.markedWindow
        try await withMarkedMerge(n1, n2, window: window) { clocks, follow in
            // Both clocks run: a flow leaves long before the sort window.
            let sent = clocks.live(n1, 1)
            try await follow.wait([1], for: window)
            let latency = follow.arrival(1, since: sent)
            #expect(latency.map { $0 < window / 2 } == true, "released by marks after \(latency ?? -1) s")

            let resumed = try await expectMergeWaits(clocks, follow, n1, n2, later: 2, earlier: 3, window: window)
            let released = follow.arrival(2, since: resumed)
            #expect(released.map { $0 < window / 2 } == true, "released once n2 passed: \(released ?? -1) s")
        }
        // An agent that reconnects without marks (as Cilium's): the window is back. A short one
        // here, so that waiting it out is quick; the wait is a lower bound, which load cannot break.
        let short = 4.0
        try await withMarkedMerge(n1, n2, window: short) { clocks, follow in
            await n2.stop()
            try await n2.start(marks: false)
            let back = Date().addingTimeInterval(short + 10)  // held for the window now
            while Date() < back, !follow.numbers.contains(93) {
                clocks.live(n2, 93)
                try await Task.sleep(for: .milliseconds(200))
            }
            try #require(follow.numbers.contains(93), "n2 streams again")
            let held = clocks.live(n1, 4)
            try await follow.wait([4], for: short * 3)
            let waited = follow.arrival(4, since: held)
            #expect(waited.map { $0 >= short * 0.9 } == true, "held for the window: \(waited ?? -1) s")
        }
    }

    @Test(
        "the nodes' wall clocks set back 20 s: what the relay held in the old time leaves at once, and the merge goes on in the new time"
    )
    func clockSetBack() async throws {
        try await withTwoAgents { n1, n2 in
            let window = Self.markedWindow
            try await withMarkedMerge(n1, n2, ahead: 20, window: window) { clocks, follow in
                // n1's flow waits for n2, whose clock stands still.
                clocks.pause(n2.observer)
                try await Task.sleep(for: .milliseconds(300))
                clocks.live(n1, 1)
                try await Task.sleep(for: .milliseconds(500))
                #expect(!follow.numbers.contains(1), "held while n2 has not passed its time")

                // Both clocks are set back 20 s: the held flow no longer waits for marks 20 s on.
                clocks.ahead.withLock { $0 = 0 }
                let stepped = Date()
                clocks.resume(n2.observer)
                try await follow.wait([1], for: window * 2)
                let released = follow.arrival(1, since: stepped)
                #expect(released.map { $0 < window / 2 } == true, "released at the step: \(released ?? -1) s")

                // In the new time the merge holds a flow for the node behind it, as before.
                _ = try await expectMergeWaits(clocks, follow, n1, n2, later: 2, earlier: 3, window: window)
            }
        }
    }

    @Test("a client that stops reading does not make the relay buffer: the agents count what could not be sent")
    func stalledClientBackPressure() async throws {
        let n1 = try Agent("osp-n1")
        try await n1.start()
        defer { n1.stopNow() }
        try await withRelay(.fixed([(n1.name, n1.address)]), connected: 1) { client, _, _ in
            // More than every HTTP/2 window (agent→relay, relay→client) and buffer between them holds.
            let total = 300_000
            // Bounded: a stream that never delivers fails the test (deadline exceeded) instead of hanging it.
            var bounded = CallOptions.defaults
            bounded.timeout = .seconds(60)
            let result = try await Observer_Observer.Client(wrapping: client).getFlows(
                .with { $0.follow = true }, options: bounded
            ) {
                response -> (flows: Int, probesUndelivered: Int, lost: Flow_LostEvent?) in
                var iterator = response.messages.makeAsyncIterator()
                _ = try await iterator.next()  // NODE_CONNECTED
                // The relay subscribes to the agent just after that: wait until a flow comes through.
                // Probes are numbered 9999; every probe not delivered may count as lost, so count them.
                let probe = Self.flow("osp-n1", at: 0, number: 9999)
                let subscribed = Task { () -> Int in
                    var appended = 0
                    while !Task.isCancelled {
                        var fresh = probe
                        fresh.time = Date()
                        n1.observer.append([fresh])
                        appended += 1
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    return appended
                }
                var probesDelivered = 0
                while let message = try await iterator.next() {
                    if message.isFlow {
                        probesDelivered += 1
                        break
                    }
                }
                subscribed.cancel()
                // No probe may be appended once the flood starts: wait for the prober to finish.
                let probesAppended = await subscribed.value
                var batch: [Flow] = []
                for number in 0..<total {
                    var flow = Self.flow("osp-n1", at: 0, number: number % 9000)
                    flow.time = Date()
                    batch.append(flow)
                    if batch.count == 1000 {
                        n1.observer.append(batch)
                        batch = []
                    }
                }
                var flows = 0
                while let message = try await iterator.next() {
                    if case .lostEvents(let record)? = message.responseTypes {
                        return (flows, probesAppended - probesDelivered, record)
                    }
                    if message.isFlow, message.flow.uuid.hasSuffix("9999") {
                        probesDelivered += 1
                    } else if message.isFlow {
                        flows += 1
                    }
                    if flows >= total { break }
                }
                return (flows, probesAppended - probesDelivered, nil)
            }
            let lost = try #require(result.lost, "the agent must have lost flows for this stalled client")
            #expect(lost.source == .hubbleRingBuffer)
            #expect(lost.numEventsLost > 0)
            // What the relay held is bounded: the client got only a small part of the flood.
            // Nothing is counted twice: every flow (flood or probe) was delivered, lost or still queued.
            #expect(result.flows + Int(lost.numEventsLost) <= total + result.probesUndelivered)
            #expect(result.flows < total / 2, "\(result.flows) flows delivered before the loss record")
        }
    }

    @Test(
        "TLS: a client without the relay's CA or without a certificate is refused; agents are reached over mutual TLS")
    func mutualTLS() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("osp-tls-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = LabCertificates(config: try LabConfig(name: "osptls", stateRoot: directory))
        try certificates.create(with: Host())
        let agentTLS = try #require(
            try ServerTLS(
                certificateFile: certificates.agentCertificate.cert, keyFile: certificates.agentCertificate.key,
                clientCAFiles: [certificates.caFile], flagPrefix: "hubble-tls-"))
        let n2 = try Agent("osp-n2", flows: [Self.flow("osp-n2", at: 2, number: 2)], tls: agentTLS)
        // n1 is the peer service: it lists itself and n2, each with the name its certificate carries.
        let n1Address = Lock("")
        let n1 = try Agent("osp-n1", flows: [Self.flow("osp-n1", at: 1, number: 1)], tls: agentTLS) {
            [n2] in
            [
                PeerService.Peer(
                    name: "osp-n1", address: n1Address.withLock { $0 },
                    tlsServerName: HubbleTLSNames.agent(node: "osp-n1", cluster: "osptls")),
                PeerService.Peer(
                    name: "osp-n2", address: n2.address,
                    tlsServerName: HubbleTLSNames.agent(node: "osp-n2", cluster: "osptls")),
            ]
        }
        n1Address.withLock { $0 = n1.address }
        try await n1.start()
        try await n2.start()
        defer {
            n1.stopNow()
            n2.stopNow()
        }
        let relayTLS = try ServerTLS(
            certificateFile: certificates.relayCertificate.cert, keyFile: certificates.relayCertificate.key,
            clientCAFiles: [certificates.caFile], flagPrefix: "tls-relay-server-")
        let towardsAgents = try ClientTLS(
            caFiles: [certificates.caFile], certificateFile: certificates.clientCertificate.cert,
            keyFile: certificates.clientCertificate.key, flagPrefix: "tls-client-")
        let client = try ClientTLS(
            caFiles: [certificates.caFile], certificateFile: certificates.clientCertificate.cert,
            keyFile: certificates.clientCertificate.key, serverName: certificates.relayServerName,
            flagPrefix: "tls-client-")
        try await withRelay(
            .peerService(
                HubbleAddress(endpoint: .unix(path: n1.socket)),
                serverName: HubbleTLSNames.agent(node: "osp-n1", cluster: "osptls")),
            connected: 2, dialer: HubbleDialer(tls: towardsAgents), serverTLS: relayTLS, connect: client
        ) { client, pool, socket in
            let all = try await responses(client, .with { $0.number = 10 })
            #expect(Self.numbers(all) == [1, 2])
            #expect(pool.peers.map(\.isConnected) == [true, true])
            let nodes = try await Observer_Observer.Client(wrapping: client).getNodes(Observer_GetNodesRequest()).nodes
            #expect(nodes.first { $0.name == "osp-n2" }?.tls.enabled == true)
            #expect(
                nodes.first { $0.name == "osp-n2" }?.tls.serverName
                    == HubbleTLSNames.agent(node: "osp-n2", cluster: "osptls"))

            // The same relay, without a client certificate, with no TLS at all, with a CA that
            // did not sign it: each is refused before any flow.
            let relay = HubbleAddress(endpoint: .unix(path: socket))
            let refused: [(String, ClientTLS?)] = [
                (
                    "no client certificate",
                    try ClientTLS(
                        caFiles: [certificates.caFile], serverName: certificates.relayServerName,
                        flagPrefix: "tls-client-")
                ),
                ("plaintext", nil),
                (
                    "the system's CAs",
                    try ClientTLS(
                        certificateFile: certificates.clientCertificate.cert,
                        keyFile: certificates.clientCertificate.key, serverName: certificates.relayServerName,
                        flagPrefix: "tls-client-")
                ),
            ]
            for (what, tls) in refused {
                var options = CallOptions.defaults
                options.timeout = .seconds(3)
                let transport = try HubbleDialer(tls: tls).transport(to: relay)
                await #expect(throws: (any Error).self, "\(what)") {
                    try await withGRPCClient(transport: transport) { client in
                        _ = try await Grpc_Health_V1_Health.Client(wrapping: client).check(
                            .with { $0.service = HealthService.observerServiceName }, options: options)
                    }
                }
            }
        }
    }
}

/// What a follow stream has delivered so far, shared with the test.
final class Received: Sendable {
    private let items = Lock<[Observer_GetFlowsResponse]>([])
    /// When each flow numbered by its UUID's last digits arrived.
    let arrivals = Lock<[Int: Date]>([:])
    var all: [Observer_GetFlowsResponse] { items.withLock { $0 } }

    func append(_ item: Observer_GetFlowsResponse) {
        items.withLock { $0.append(item) }
        if item.isFlow, let number = Int(item.flow.uuid.suffix(4)) { arrivals.withLock { $0[number] = Date() } }
    }
}

extension Observer_GetFlowsResponse {
    var isNodeStatus: Bool {
        if case .nodeStatus? = responseTypes { return true }
        return false
    }
}

/// An agent's Observer service that ignores request headers, as Cilium's does: it never sends
/// progress marks.
struct WithoutMarks: Observer_Observer.SimpleServiceProtocol {
    let inner: ObserverService

    func getFlows(
        request: Observer_GetFlowsRequest, response: RPCWriter<Observer_GetFlowsResponse>, context: ServerContext
    ) async throws { try await inner.getFlows(request: request, response: response, context: context) }

    func getAgentEvents(
        request: Observer_GetAgentEventsRequest, response: RPCWriter<Observer_GetAgentEventsResponse>,
        context: ServerContext
    ) async throws { try await inner.getAgentEvents(request: request, response: response, context: context) }

    func getDebugEvents(
        request: Observer_GetDebugEventsRequest, response: RPCWriter<Observer_GetDebugEventsResponse>,
        context: ServerContext
    ) async throws { try await inner.getDebugEvents(request: request, response: response, context: context) }

    func getNodes(request: Observer_GetNodesRequest, context: ServerContext) async throws -> Observer_GetNodesResponse {
        try await inner.getNodes(request: request, context: context)
    }

    func getNamespaces(
        request: Observer_GetNamespacesRequest, context: ServerContext
    ) async throws -> Observer_GetNamespacesResponse {
        try await inner.getNamespaces(request: request, context: context)
    }

    func serverStatus(
        request: Observer_ServerStatusRequest, context: ServerContext
    ) async throws -> Observer_ServerStatusResponse { try await inner.serverStatus(request: request, context: context) }
}
