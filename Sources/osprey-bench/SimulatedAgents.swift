// `make bench`: simulated agents for the relay-at-scale benchmark (scripts/bench-relay.sh). N
// Hubble servers in this one process, each on its own unix socket, fed together RATE flows a
// second (every 10 ms, a batch per agent, then a progress mark, as a real agent's event reader
// does), for SECONDS.
//
// What they serve (the last argument):
//   batches   (default) osprey.v1.FlowBatches, as an Osprey agent sends to its relay, with flows
//             encoded here from one template (its time and UUID written for each flow), so that
//             the machine's cores go to the relay and its client rather than to the stand-ins;
//   getflows  the same flows through Hubble's GetFlows only, one message per flow, as the relay
//             reads a Cilium agent;
//   observer  the real agent's server (observer ring, filters, protobuf encoding per flow),
//             whose own cost on this machine is then part of the figure.
// Usage: osprey-bench agents N RATE DIRECTORY SECONDS [batches|getflows|observer]
import FlowTestKit
import Flows
import Foundation
import GRPCCore
import GRPCProtobuf
import HubbleAPI
import HubbleObserver
import HubbleServer
import HubbleTransport
import HubbleWire
import Locking
import Observer

enum SimulatedAgents {
    enum Mode: String { case batches, getflows, observer }

    static func run(_ arguments: [String]) throws {
        guard arguments.count == 4 || arguments.count == 5, let count = Int(arguments[0]), count > 0,
            let rate = Int(arguments[1]), rate > 0, let seconds = Double(arguments[3]), seconds > 0,
            let mode = Mode(rawValue: arguments.count == 5 ? arguments[4] : "batches")
        else {
            throw BenchError(
                "usage: osprey-bench agents N RATE DIRECTORY SECONDS [batches|getflows|observer] (e.g. 50 500000 /tmp/osp-relay-bench 30)"
            )
        }
        let directory = arguments[2]
        let perBatch = max(1, rate / count / 100)
        func listener(_ index: Int) -> HubbleServer.Listener {
            .init(address: HubbleAddress(endpoint: .unix(path: "\(directory)/agent-\(index).sock")), tls: nil)
        }
        let generated: UInt64
        let lost: UInt64
        if mode == .observer {
            let observers = try (0..<count).map { _ in try Observer(capacity: Observer.defaultCapacity) }
            for (index, observer) in observers.enumerated() {
                let server = HubbleServer.agent(
                    observer: observer, nodeName: "osp-sim-\(index)", clusterName: "bench",
                    listeners: [listener(index)], peers: { [] })
                Task { try await server.run() }
            }
            var template = Fixtures.syn
            var sequence: UInt64 = 0
            every10ms(for: seconds) { now in
                for (index, observer) in observers.enumerated() {
                    template.nodeName = "osp-sim-\(index)"
                    var batch: [Flow] = []
                    batch.reserveCapacity(perBatch)
                    for _ in 0..<perBatch {
                        sequence += 1
                        template.time = now
                        template.uuid = UUID(uuid: Self.uuid(sequence))
                        batch.append(template)
                    }
                    observer.append(batch)
                    observer.advance(to: now)
                }
            }
            generated = sequence
            lost = observers.reduce(0) { $0 + ($1.lost.values.reduce(0, +)) }
        } else {
            let feeds = (0..<count).map { Feed(node: "osp-sim-\($0)") }
            for (index, feed) in feeds.enumerated() {
                let services: [any RegistrableRPCService] =
                    mode == .batches ? [feed.batches, HealthService()] : [feed.getFlows, HealthService()]
                let server = HubbleServer(services: services, listeners: [listener(index)])
                Task { try await server.run() }
            }
            var sequence: UInt64 = 0
            every10ms(for: seconds) { now in
                for feed in feeds {
                    feed.publish(perBatch: perBatch, at: now, sequence: &sequence)
                }
            }
            generated = sequence
            lost = feeds.reduce(0) { $0 + UInt64($1.lost.withLock { $0 }) }
        }
        print("generated \(generated) flows in \(seconds) s; \(lost) could not be sent (subscribers behind)")
    }

    /// Calls `body` with the time every 10 ms (or as often as it can) for `seconds`.
    static func every10ms(for seconds: Double, _ body: (Date) -> Void) {
        let end = Date().addingTimeInterval(seconds)
        var next = Date()
        while Date() < end {
            body(Date())
            next += 0.01
            let wait = next.timeIntervalSinceNow
            if wait > 0 { Thread.sleep(forTimeInterval: wait) } else { next = Date() }
        }
    }

    static func uuid(_ value: UInt64) -> uuid_t {
        let b = withUnsafeBytes(of: value.bigEndian) { Array($0) }
        return (0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, b[2], b[3], b[4], b[5], b[6], b[7])
    }

    /// One simulated agent's flows: every 10 ms a batch of GetFlows responses (and a progress
    /// mark) handed to each of its followers, dropped (and counted) for one that is 64 batches
    /// behind.
    final class Feed: Sendable {
        struct Batch: Sendable {
            /// The responses, each serialized (slices of `batch`).
            let responses: [ArraySlice<UInt8>]
            /// The same as one `FlowBatch`.
            let batch: [UInt8]
        }

        let node: String
        /// The template flow's fields other than `time` and `uuid`, serialized once: a flow's
        /// message is its time and UUID followed by these (protobuf fields may come in any order).
        private let rest: [UInt8]
        private let followers = Lock<[UInt64: AsyncStream<Batch>.Continuation]>([:])
        /// When the last progress mark went out (the generator's thread only).
        nonisolated(unsafe) private var lastMark = Date.distantPast
        private let nextID = Lock<UInt64>(0)
        let lost = Lock<Int>(0)

        init(node: String) {
            self.node = node
            var template = Fixtures.syn
            template.nodeName = node
            var message = FlowMessage.make(template)
            message.clearTime()
            message.uuid = ""
            rest = (try? message.serializedBytes()) ?? []
        }

        func publish(perBatch: Int, at time: Date, sequence: inout UInt64) {
            guard !followers.withLock({ $0.isEmpty }) else {
                sequence += UInt64(perBatch)
                return
            }
            let stamp = FlowMessage.timestamp(time)
            var timestamp: [UInt8] = []
            ProtoWire.appendVarintField(1, UInt64(stamp.seconds), to: &timestamp)
            ProtoWire.appendVarintField(2, UInt64(stamp.nanos), to: &timestamp)
            let timeField = ProtoWire.field(1, timestamp)  // flow.Flow.time
            // What follows the flow in each response: node_name, then time.
            let tail = ProtoWire.field(1000, Array(node.utf8)) + ProtoWire.field(1001, timestamp)
            var batch: [UInt8] = []
            batch.reserveCapacity((rest.count + 120) * (perBatch + 1))
            var ranges: [Range<Int>] = []
            ranges.reserveCapacity(perBatch + 1)
            /// Appends a response as `FlowBatch.responses` and notes where it lies.
            func append(_ response: [UInt8]) {
                ProtoWire.appendField(1, response, to: &batch)
                ranges.append(batch.count - response.count..<batch.count)
            }
            var flow: [UInt8] = []
            var response: [UInt8] = []
            for _ in 0..<perBatch {
                sequence += 1
                flow.removeAll(keepingCapacity: true)
                flow += timeField
                UUID(uuid: SimulatedAgents.uuid(sequence)).withLowercaseText {
                    ProtoWire.appendField(34, $0, to: &flow)  // flow.Flow.uuid
                }
                flow += rest
                response.removeAll(keepingCapacity: true)
                ProtoWire.appendField(1, flow, to: &response)  // GetFlowsResponse.flow
                response += tail
                append(response)
            }
            // A progress mark (a time and no flow), as often as a real agent sends them.
            if time.timeIntervalSince(lastMark) >= ObserverService.markInterval {
                lastMark = time
                append(tail)
            }
            let ready = Batch(responses: ranges.map { batch[$0] }, batch: batch)
            let dropped = followers.withLock { followers in
                followers.values.reduce(0) { dropped, follower in
                    if case .dropped = follower.yield(ready) { return dropped + perBatch }
                    return dropped
                }
            }
            if dropped > 0 { lost.withLock { $0 += dropped } }
        }

        /// Every batch from now until the call ends, to `write`.
        func follow(_ write: (Batch) async throws -> Void) async throws {
            let (stream, continuation) = AsyncStream<Batch>.makeStream(bufferingPolicy: .bufferingOldest(64))
            let id = nextID.withLock {
                $0 += 1
                return $0
            }
            followers.withLock { $0[id] = continuation }
            defer { _ = followers.withLock { $0.removeValue(forKey: id) } }
            try await withRPCCancellationHandler {
                for await batch in stream { try await write(batch) }
            } onCancelRPC: {
                continuation.finish()
            }
        }

        /// osprey.v1.FlowBatches: one message per batch.
        var batches: some RegistrableRPCService { Method(feed: self, batched: true) }
        /// observer.Observer's GetFlows alone: one message per response.
        var getFlows: some RegistrableRPCService { Method(feed: self, batched: false) }

        struct Method: RegistrableRPCService {
            let feed: Feed
            let batched: Bool

            func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
                router.registerServerStreaming(
                    batched
                        ? Osprey_V1_FlowBatches.Method.GetFlowBatches.descriptor
                        : Observer_Observer.Method.GetFlows.descriptor,
                    deserializer: ProtobufDeserializer<Observer_GetFlowsRequest>(), serializer: RawBytes()
                ) { [feed, batched] _, _, _, writer in
                    try await feed.follow { batch in
                        if batched {
                            try await writer.write(batch.batch)
                        } else {
                            try await writer.write(contentsOf: batch.responses.map { Array($0) })
                        }
                    }
                }
            }
        }
    }
}
