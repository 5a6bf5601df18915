import FlowTestKit
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import HubbleObserver
import HubbleTransport
import HubbleWire
import Observer
import SwiftProtobuf
import Synchronization
import Testing

@testable import Flows
@testable import HubbleServer

/// observer.Observer, peer.Peer and grpc.health.v1 served over real HTTP/2 (a unix socket),
/// called with the generated clients, on an observer holding the fixture flows.
@Suite("Hubble gRPC API semantics")
struct ObserverServerTests {
    /// Call options for streams that follow: they end with DEADLINE_EXCEEDED rather than hang.
    /// A safety net, not a measure: long enough for 500 streams under a sanitizer's slowdown.
    static let bounded: CallOptions = {
        var options = CallOptions.defaults
        options.timeout = .seconds(90)
        return options
    }()

    typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

    /// Runs an agent's Hubble server on a fresh socket around `body`.
    func withServer(
        observer: Observer? = nil, _ body: (Observer, Client) async throws -> Void
    ) async throws {
        try await withServer(observer: observer) { observer, client, _ in try await body(observer, client) }
    }

    /// The same, also handing out the socket path (for a second connection).
    func withServer(
        observer: Observer? = nil, _ body: (Observer, Client, String) async throws -> Void
    ) async throws {
        let observer = try observer ?? Observer(capacity: 4095)
        if observer.numFlows == 0 { observer.append(Fixtures.all) }
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("osp-hubble-\(UUID()).sock").path
        defer { unlink(socket) }
        let server = HubbleServer.agent(
            observer: observer, nodeName: "osp-node-1", clusterName: "osp",
            listeners: [.init(address: HubbleAddress(endpoint: .unix(path: socket)), tls: nil)],
            peers: { [PeerService.Peer(name: "osp-node-1", address: "10.240.0.11:4244")] })
        let task = Task { try await server.run() }
        defer { task.cancel() }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: socket) {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .unixDomainSocket(path: socket), transportSecurity: .plaintext)
        ) { client in
            try await body(observer, client, socket)
        }
    }

    @Test("server reflection (v1 and v1alpha): services listed, described from their descriptors, misses answered")
    func reflection() async throws {
        try await withServer { _, client in
            for version in ["v1", "v1alpha"] {
                let requests = [
                    ProtoWire.field(7, Array("*".utf8)), ProtoWire.field(4, Array("observer.Observer".utf8)),
                    ProtoWire.field(4, Array("flow.FlowFilter".utf8)), ProtoWire.field(3, Array("nope.proto".utf8)),
                ]
                let responses = try await client.bidirectionalStreaming(
                    request: StreamingClientRequest(of: [UInt8].self) { writer in
                        for request in requests { try await writer.write(request) }
                    },
                    descriptor: MethodDescriptor(
                        fullyQualifiedService: "grpc.reflection.\(version).ServerReflection",
                        method: "ServerReflectionInfo"),
                    serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                ) { response in
                    var all: [[UInt8]] = []
                    for try await message in response.messages { all.append(message) }
                    return all
                }
                #expect(responses.count == 4)
                let services = Wire.all(Wire.fields(responses[0])[6] ?? []).compactMap {
                    Wire.fields($0.1)[1].flatMap(Wire.string)
                }
                #expect(
                    services == [
                        "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                        "grpc.reflection.v1alpha.ServerReflection", "observer.Observer", "osprey.v1.FlowBatches",
                        "peer.Peer",
                    ])
                let files = try Wire.all(Wire.fields(responses[1])[4] ?? []).map {
                    try Google_Protobuf_FileDescriptorProto(serializedBytes: $0.1)
                }
                #expect(files.first?.name == "observer/observer.proto")
                #expect(files.first?.service.first?.method.map(\.name).contains("GetFlows") == true)
                #expect(files.contains { $0.name == "flow/flow.proto" }, "with its imports")
                let flowFile = try Wire.all(Wire.fields(responses[2])[4] ?? []).first.map {
                    try Google_Protobuf_FileDescriptorProto(serializedBytes: $0.1)
                }
                #expect(flowFile?.name == "flow/flow.proto")
                let error = Wire.fields(Wire.fields(responses[3])[7] ?? [])
                #expect(error[2].flatMap(Wire.string) == "file nope.proto not found")
            }
        }
    }

    func flows(_ client: Client, _ request: Observer_GetFlowsRequest) async throws -> [Observer_GetFlowsResponse] {
        try await Observer_Observer.Client(wrapping: client).getFlows(request) { response in
            var messages: [Observer_GetFlowsResponse] = []
            for try await message in response.messages { messages.append(message) }
            return messages
        }
    }

    /// The fixture numbers (last digits of the UUIDs) of the flows a request returns.
    func check(
        _ client: Client, _ request: Observer_GetFlowsRequest, _ expected: [Int], _ comment: String = "",
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let got = uuids(try await flows(client, request))
        #expect(got == expected, "\(comment)", sourceLocation: sourceLocation)
    }

    func uuids(_ responses: [Observer_GetFlowsResponse]) -> [Int] {
        responses.compactMap { Int($0.flow.uuid.suffix(2)) }
    }

    @Test("number counts the newest flows, first the oldest; results in time order")
    func numberAndFirst() async throws {
        try await withServer { _, client in
            try await check(client, .with { $0.number = 2 }, [5, 6])
            try await check(
                client,
                .with {
                    $0.number = 2; $0.first = true
                }, [1, 2])
            try await check(client, .with { $0.number = .max }, [1, 2, 3, 4, 5, 6])
            let responses = try await flows(client, .with { $0.number = 2 })
            #expect(responses[0].nodeName == "osp-node-2")
            #expect(responses[0].time == FlowMessage.timestamp(Fixtures.drop.time))
        }
    }

    @Test("since and until select by time")
    func timeRange() async throws {
        try await withServer { _, client in
            let since = FlowMessage.timestamp(Fixtures.start.addingTimeInterval(0.5))
            let until = FlowMessage.timestamp(Fixtures.start.addingTimeInterval(1.5))
            try await check(client, .with { $0.since = since }, [5, 6])
            try await check(
                client,
                .with {
                    $0.since = since; $0.until = until
                }, [5])
            // With number, as upstream: the window is bounded by since/until, number caps it.
            let early = FlowMessage.timestamp(Fixtures.start.addingTimeInterval(-1))
            try await check(
                client,
                .with {
                    $0.since = early; $0.until = until; $0.number = 2
                }, [4, 5])
            try await check(
                client,
                .with {
                    $0.since = early; $0.number = 2; $0.first = true
                }, [1, 2])
        }
    }

    @Test(
        "each filter kind selects the flows it names",
        arguments: [
            ("source IP", Flow_FlowFilter.with { $0.sourceIp = ["10.244.1.4"] }, [1, 3, 6]),
            ("destination CIDR", Flow_FlowFilter.with { $0.destinationIp = ["10.244.2.0/24"] }, [1, 5]),
            ("IPv6 CIDR matches no IPv4", Flow_FlowFilter.with { $0.sourceIp = ["fd00::/8"] }, []),
            ("source pod prefix", Flow_FlowFilter.with { $0.sourcePod = ["shop/loadgen"] }, [1, 3, 6]),
            ("namespace only", Flow_FlowFilter.with { $0.destinationPod = ["billing/"] }, [5]),
            ("pod in any namespace", Flow_FlowFilter.with { $0.sourcePod = ["/coredns"] }, [4]),
            // Upstream's rule: a bare name is in `default`, for pods and services alike.
            ("bare pod name is default/", Flow_FlowFilter.with { $0.sourcePod = ["coredns"] }, []),
            ("label selector", Flow_FlowFilter.with { $0.sourceLabel = ["app in (frontend,kube-dns)"] }, [2, 4]),
            ("label with source", Flow_FlowFilter.with { $0.destinationLabel = ["k8s:app=ledger"] }, [5]),
            ("label not", Flow_FlowFilter.with { $0.sourceLabel = ["app!=loadgen"] }, [2, 4, 5]),
            (
                "workload",
                Flow_FlowFilter.with {
                    $0.destinationWorkload = [
                        .with {
                            $0.kind = "Deployment"; $0.name = "frontend"
                        }
                    ]
                }, [1]
            ),
            ("port", Flow_FlowFilter.with { $0.destinationPort = ["53"] }, [3]),
            ("protocol udp", Flow_FlowFilter.with { $0.protocol = ["udp"] }, [3, 4]),
            ("protocol dns", Flow_FlowFilter.with { $0.protocol = ["DNS"] }, [3, 4]),
            ("protocol icmp", Flow_FlowFilter.with { $0.protocol = ["icmp"] }, [6]),
            ("verdict", Flow_FlowFilter.with { $0.verdict = [.dropped] }, [5]),
            ("drop reason", Flow_FlowFilter.with { $0.dropReasonDesc = [.policyDenied] }, [5]),
            (
                "TCP flags",
                Flow_FlowFilter.with {
                    $0.tcpFlags = [
                        .with {
                            $0.syn = true; $0.ack = true
                        }
                    ]
                }, [2]
            ),
            ("reply", Flow_FlowFilter.with { $0.reply = [true] }, [2, 4]),
            // The SYN-ACK entering loadgen belongs to its egress connection, as in Cilium.
            ("traffic direction", Flow_FlowFilter.with { $0.trafficDirection = [.ingress] }, [4]),
            ("node glob", Flow_FlowFilter.with { $0.nodeName = ["osp-*-2"] }, [5]),
            ("node with cluster", Flow_FlowFilter.with { $0.nodeName = ["osp/"] }, [1, 2, 3, 4, 5, 6]),
            ("DNS query regex", Flow_FlowFilter.with { $0.dnsQuery = ["^catalog\\."] }, [3, 4]),
            ("IP version", Flow_FlowFilter.with { $0.ipVersion = [.ipv6] }, []),
            ("event type drop", Flow_FlowFilter.with { $0.eventType = [.with { $0.type = 1 }] }, [5]),
            (
                "trace to-endpoint",
                Flow_FlowFilter.with {
                    $0.eventType = [
                        .with {
                            $0.type = 4; $0.matchSubType = true
                        }
                    ]
                }, [2]
            ),
            ("identity world", Flow_FlowFilter.with { $0.destinationIdentity = [2] }, [6]),
            ("uuid", Flow_FlowFilter.with { $0.uuid = ["00000000-0000-4000-8000-000000000003"] }, [3]),
            ("interface", Flow_FlowFilter.with { $0.interface = [.with { $0.name = "osp0a1b2c3d4e5" }] }, [1]),
            ("cluster", Flow_FlowFilter.with { $0.sourceClusterName = ["osp"] }, [1, 2, 3, 4, 5, 6]),
            ("HTTP matches no DNS/TCP flow", Flow_FlowFilter.with { $0.httpStatusCode = ["5+"] }, []),
        ])
    func filters(name: String, filter: Flow_FlowFilter, expected: [Int]) async throws {
        try await withServer { _, client in
            let request = Observer_GetFlowsRequest.with {
                $0.number = 100
                $0.whitelist = [filter]
            }
            try await check(client, request, expected, name)
        }
    }

    @Test("allow lists are OR'ed, fields inside one filter AND'ed, deny lists subtract")
    func allowDeny() async throws {
        try await withServer { _, client in
            let anyOf = Observer_GetFlowsRequest.with {
                $0.number = 100
                $0.whitelist = [.with { $0.verdict = [.dropped] }, .with { $0.protocol = ["icmp"] }]
            }
            let anyOfFlows = try await flows(client, anyOf)
            #expect(uuids(anyOfFlows) == [5, 6])
            let allOf = Observer_GetFlowsRequest.with {
                $0.number = 100
                $0.whitelist = [
                    .with {
                        $0.sourcePod = ["shop/"]; $0.protocol = ["tcp"]
                    }
                ]
            }
            let allOfFlows = try await flows(client, allOf)
            #expect(uuids(allOfFlows) == [1, 2, 5])
            let minus = Observer_GetFlowsRequest.with {
                $0.number = 100
                $0.whitelist = [.with { $0.sourcePod = ["shop/"] }]
                $0.blacklist = [.with { $0.verdict = [.dropped] }]
            }
            let minusFlows = try await flows(client, minus)
            #expect(uuids(minusFlows) == [1, 2, 3, 6])
        }
    }

    @Test("field_mask keeps only the named fields, with Hubble's upper-case paths, in binary form")
    func fieldMask() async throws {
        try await withServer { _, client in
            let request = Observer_GetFlowsRequest.with {
                $0.number = 1
                $0.whitelist = [.with { $0.verdict = [.dropped] }]
                $0.fieldMask = .with { $0.paths = ["IP", "Summary", "source.pod_name", "l4.TCP.flags"] }
            }
            let flow = try #require(try await flows(client, request).first).flow
            var expected = Flow_Flow()
            expected.ip = .with {
                $0.source = "10.244.2.4"
                $0.destination = "10.244.2.3"
                $0.ipVersion = .ipv4
            }
            expected.summary = "TCP Flags: SYN"
            expected.source = .with { $0.podName = "untrusted-9a8b-pqrst" }
            expected.l4 = .with { $0.tcp = .with { $0.flags = .with { $0.syn = true } } }
            #expect(flow == expected)
        }
    }

    @Test("follow streams flows appended after the request, filtered")
    func follow() async throws {
        try await withServer { observer, client in
            let request = Observer_GetFlowsRequest.with {
                $0.follow = true
                $0.whitelist = [.with { $0.verdict = [.dropped] }]
            }
            // Bounded: a flow that never comes fails the test (deadline exceeded) instead of hanging it.
            let received = try await Observer_Observer.Client(wrapping: client).getFlows(
                request, options: Self.bounded
            ) {
                response -> Observer_GetFlowsResponse? in
                Task {
                    try await Task.sleep(for: .milliseconds(200))
                    var late = Fixtures.drop
                    late.uuid = UUID(uuidString: "00000000-0000-4000-8000-000000000042")!
                    observer.append([Fixtures.syn, late])
                }
                for try await message in response.messages { return message }
                return nil
            }
            #expect(received?.flow.uuid == "00000000-0000-4000-8000-000000000042")
        }
    }

    @Test(
        "osprey.v1.FlowBatches: GetFlows's answer many responses per message, in order, with marks when asked; bad requests refused"
    )
    func flowBatches() async throws {
        let observer = try Observer(capacity: 4095)
        observer.append(Fixtures.all)
        var many: [Flow] = []
        for number in 0..<3000 {
            var flow = Fixtures.syn
            flow.time = Fixtures.start.addingTimeInterval(10 + Double(number) / 1000)
            flow.uuid = UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", 100_000 + number))!
            many.append(flow)
        }
        observer.append(many)
        try await withServer(observer: observer) { observer, client in
            let batches = Osprey_V1_FlowBatches.Client(wrapping: client)
            for request in [
                Observer_GetFlowsRequest(),
                .with { $0.number = 5000 },
                .with {
                    $0.number = 3
                    $0.whitelist = [.with { $0.verdict = [.dropped] }]
                    $0.fieldMask = .with { $0.paths = ["IP", "verdict"] }
                },
            ] {
                let sizes = try await batches.getFlowBatches(request) { response in
                    var sizes: [(count: Int, bytes: Int, responses: [Observer_GetFlowsResponse])] = []
                    for try await batch in response.messages {
                        sizes.append(
                            (batch.responses.count, (try batch.serializedBytes() as [UInt8]).count, batch.responses))
                    }
                    return sizes
                }
                #expect(sizes.flatMap(\.responses) == (try await flows(client, request)))
                // Whatever is ready goes together, up to about 128 KiB a message.
                #expect(sizes.allSatisfy { $0.bytes < FlowBatchEncoder.targetSize + 4096 })
                if request.number == 5000 {
                    #expect(sizes.map(\.count).reduce(0, +) == 3000 + Fixtures.all.count)
                    #expect(sizes.count > 1 && sizes.count < 50, "\(sizes.map(\.count))")
                }
            }
            await #expect {
                _ = try await batches.getFlowBatches(
                    .with {
                        $0.first = true; $0.follow = true
                    }
                ) { response in
                    for try await _ in response.messages {}
                }
            } throws: { error in
                (error as? RPCError)?.code == .invalidArgument
                    && (error as? RPCError)?.message.contains("first cannot be specified with follow") == true
            }
            // A follow with the relay's header gets flows and progress marks in its batches.
            let followed = try await batches.getFlowBatches(
                request:
                    ClientRequest(message: .with { $0.follow = true }, metadata: [ProgressMark.header: "1"]),
                options: Self.bounded
            ) { response -> (flows: [String], marks: Int) in
                Task {
                    try await Task.sleep(for: .milliseconds(200))
                    var late = Fixtures.drop
                    late.uuid = UUID(uuidString: "00000000-0000-4000-8000-000000000042")!
                    late.time = Date()
                    observer.append([late])
                    observer.advance(to: Date())
                }
                var flows: [String] = []
                var marks = 0
                for try await batch in response.messages {
                    for item in batch.responses {
                        if ProgressMark.isMark(item) { marks += 1 } else { flows.append(item.flow.uuid) }
                    }
                    if !flows.isEmpty && marks > 0 { break }
                }
                return (flows, marks)
            }
            #expect(followed.flows == ["00000000-0000-4000-8000-000000000042"])
            #expect(followed.marks > 0)
        }
    }

    @Test("500 followers at once: each gets every new flow in order, and none of them stays behind when they go")
    func manyFollowers() async throws {
        try await withServer { observer, _, socket in
            // Five connections of 100 streams each (HTTP/2's usual limit of concurrent streams
            // per connection; hubble clients each bring their own connection).
            try await Self.withClients(5, socket: socket) { clients in
                try await Self.follow(observer, clients: clients)
            }
        }
    }

    /// `count` more gRPC connections to the server's socket around `body`.
    static func withClients(_ count: Int, socket: String, _ body: ([Client]) async throws -> Void) async throws {
        func open(_ clients: [Client]) async throws {
            guard clients.count < count else { return try await body(clients) }
            try await withGRPCClient(
                transport: .http2NIOPosix(target: .unixDomainSocket(path: socket), transportSecurity: .plaintext)
            ) { client in try await open(clients + [client]) }
        }
        try await open([])
    }

    static func follow(_ observer: Observer, clients: [Client]) async throws {
        do {
            let followers = 500
            let count = 20
            let marked = (0..<count).map { index -> Flow in
                var flow = Fixtures.drop
                flow.uuid = UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", index + 1000))!
                return flow
            }
            let wanted = marked.map { $0.uuid.uuidString.lowercased() }
            let received = try await withThrowingTaskGroup(of: [String].self) { group in
                for index in 0..<followers {
                    let client = clients[index % clients.count]
                    group.addTask {
                        try await Observer_Observer.Client(wrapping: client).getFlows(
                            .with { $0.follow = true }, options: Self.bounded
                        ) { response in
                            var uuids: [String] = []
                            for try await message in response.messages
                            where message.flow.uuid.hasPrefix("00000000-0000-4000-8000-00000000") {
                                let uuid = message.flow.uuid
                                guard Int(uuid.suffix(4)) ?? 0 >= 1000 else { continue }
                                uuids.append(uuid)
                                if uuids.count == count { break }
                            }
                            return uuids
                        }
                    }
                }
                // Every stream subscribed before the flows come.
                for _ in 0..<4000 where observer.subscriberCount < followers {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(observer.subscriberCount == followers)
                observer.append(marked)
                var all: [[String]] = []
                for try await uuids in group { all.append(uuids) }
                return all
            }
            #expect(received.count == followers)
            #expect(received.allSatisfy { $0 == wanted }, "every follower, every flow, in order")
            for _ in 0..<250 where observer.subscriberCount > 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(observer.subscriberCount == 0, "followers that left are unsubscribed")
        }
    }

    @Test("a follower that stops reading gets a lost-events record in its stream, never a stalled pipeline")
    func lostEvents() async throws {
        try await withServer { observer, client in
            let request = Observer_GetFlowsRequest.with { $0.follow = true }
            let total = 100_000
            let result = try await Observer_Observer.Client(wrapping: client).getFlows(
                request, options: Self.bounded
            ) {
                response -> (flows: Int, lost: Flow_LostEvent?) in
                // Not reading while 100,000 flows (about 40 MB) arrive: far more than the ring (its
                // 4,095 flows) and HTTP/2's windows hold. append() must return at once regardless.
                for _ in 0..<(total / 500) { observer.append(Array(repeating: Fixtures.icmp, count: 500)) }
                var flows = 0
                for try await message in response.messages {
                    if message.isFlow { flows += 1 }
                    if case .lostEvents(let record)? = message.responseTypes { return (flows, record) }
                }
                return (flows, nil)
            }
            let lost = try #require(result.lost)
            #expect(lost.source == .hubbleRingBuffer)
            #expect(lost.numEventsLost > 0)
            #expect(result.flows + Int(lost.numEventsLost) <= total)
            // The first record may come while the flood is still running; the total counts them all.
            #expect(lost.numEventsLost <= observer.lost[.hubbleRingBuffer] ?? 0)
        }
    }

    @Test(
        "bad requests get InvalidArgument with a clear message",
        arguments: [
            (
                Observer_GetFlowsRequest.with {
                    $0.first = true; $0.follow = true
                }, "first cannot be specified with follow"
            ),
            (.with { $0.whitelist = [.with { $0.sourcePod = [""] }] }, "must be [namespace/][name]"),
            (.with { $0.whitelist = [.with { $0.sourceIp = ["10.0.0.300/8"] }] }, "is not an IP address or CIDR"),
            (.with { $0.whitelist = [.with { $0.sourceIp = ["10.0.0.0/33"] }] }, "invalid prefix length"),
            (.with { $0.blacklist = [.with { $0.dnsQuery = ["(unclosed"] }] }, "not a valid regular expression"),
            (.with { $0.whitelist = [.with { $0.sourceLabel = ["app in (a"] }] }, "Label selector"),
            (.with { $0.whitelist = [.with { $0.protocol = ["carrier-pigeon"] }] }, "is not known"),
            (.with { $0.fieldMask = .with { $0.paths = ["source.nonsense"] } }, "is not a field of flow.Flow"),
            (
                .with { $0.whitelist = [.with { $0.experimental = .with { $0.celExpression = ["true"] } }] },
                "CEL expressions"
            ),
            // Hostile requests: refused before any flow is matched.
            (
                .with { $0.whitelist = Array(repeating: .with { $0.sourcePod = ["shop/"] }, count: 10_000) },
                "at most 1000 filters, not 10000"
            ),
            (
                .with { $0.blacklist = [.with { $0.dnsQuery = [String(repeating: "(a+)+", count: 200_000)] }] },
                "1000000 bytes, longer than the 4096 allowed"
            ),
        ])
    func invalidArgument(request: Observer_GetFlowsRequest, message: String) async throws {
        try await withServer { _, client in
            await #expect {
                _ = try await flows(client, request)
            } throws: { error in
                guard let error = error as? RPCError else { return false }
                return error.code == .invalidArgument && error.message.contains(message)
            }
        }
    }

    @Test("ServerStatus, GetNodes, GetNamespaces, health SERVING, peers; agent and debug events Unimplemented")
    func statusHealthPeers() async throws {
        try await withServer { observer, client in
            let observerClient = Observer_Observer.Client(wrapping: client)
            let status = try await observerClient.serverStatus(.init())
            #expect(status.numFlows == 6)
            #expect(status.maxFlows == 4095)
            #expect(status.seenFlows == 6)
            #expect(status.uptimeNs > 0)
            #expect(!status.hasNumConnectedNodes)
            let nodes = try await observerClient.getNodes(.init())
            #expect(nodes.nodes.map(\.name) == ["osp-node-1"])
            #expect(nodes.nodes.first?.state == .nodeConnected)
            let namespaces = try await observerClient.getNamespaces(.init())
            #expect(namespaces.namespaces.map(\.namespace) == ["billing", "kube-system", "shop"])
            #expect(namespaces.namespaces.allSatisfy { $0.cluster == "osp" })
            let health = Grpc_Health_V1_Health.Client(wrapping: client)
            #expect(try await health.check(.with { $0.service = "hubble.server.Observer" }).status == .serving)
            await #expect(throws: RPCError.self) { _ = try await health.check(.with { $0.service = "nope" }) }
            let peer = try await Peer_Peer.Client(wrapping: client).notify(.init()) {
                response -> Peer_ChangeNotification? in
                for try await change in response.messages { return change }
                return nil
            }
            #expect(peer?.type == .peerAdded)
            #expect(peer?.name == "osp-node-1")
            #expect(peer?.address == "10.240.0.11:4244")
            await #expect {
                try await observerClient.getAgentEvents(.init()) { response in
                    for try await _ in response.messages {}
                }
            } throws: { ($0 as? RPCError)?.code == .unimplemented }
            await #expect {
                try await observerClient.getDebugEvents(.init()) { response in
                    for try await _ in response.messages {}
                }
            } throws: { ($0 as? RPCError)?.code == .unimplemented }
        }
    }
}
