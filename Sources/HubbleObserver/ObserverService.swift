import FlowFilters
import Flows
import Foundation
import GRPCCore
import GRPCProtobuf
import HubbleAPI
import HubbleServer
import HubbleWire
import Observer
import SwiftProtobuf

/// `observer.Observer` on one agent, with Hubble's GetFlows semantics over the observer ring.
public struct ObserverService: Observer_Observer.SimpleServiceProtocol {
    let observer: Observer
    let nodeName: String
    let clusterName: String

    public init(observer: Observer, nodeName: String, clusterName: String) {
        self.observer = observer
        self.nodeName = nodeName
        self.clusterName = clusterName
    }

    /// How often a follow stream that asked for progress marks gets one, at most.
    public static let markInterval = 0.025

    /// GetFlows with its request headers: a follow that asks for progress marks (an Osprey
    /// relay's) gets them; every other call is served exactly as Hubble's agent serves it.
    public func getFlows(
        request: ServerRequest<Observer_GetFlowsRequest>, context: ServerContext
    ) async throws -> StreamingServerResponse<Observer_GetFlowsResponse> {
        let marks = request.metadata[stringValues: ProgressMark.header].contains("1")
        return StreamingServerResponse { writer in
            try await getFlows(request: request.message, progressMarks: marks) { try await Self.write($0, to: writer) }
            return [:]
        }
    }

    public func getFlows(
        request: Observer_GetFlowsRequest, response: RPCWriter<Observer_GetFlowsResponse>, context: ServerContext
    ) async throws {
        try await getFlows(request: request, progressMarks: false) { try await Self.write($0, to: response) }
    }

    /// GetFlows's semantics, whatever carries the responses: `write` gets them as they are
    /// ready, in order.
    func getFlows(
        request: Observer_GetFlowsRequest, progressMarks: Bool,
        write: @escaping ([Observer_GetFlowsResponse]) async throws -> Void
    ) async throws {
        let query = try FlowQuery(request)
        if request.follow {
            let marks = progressMarks && !request.hasUntil
            let (history, live) = observer.historyAndSubscribe(progress: marks)
            // gRPC tells a handler that its client went away through the RPC's cancellation
            // handle, not by cancelling its task: without this, a follower that left would stay
            // subscribed until a flow passed its filters (perhaps never).
            try await withRPCCancellationHandler {
                try await follow(query, history: history, live: live, marks: marks, write: write)
            } onCancelRPC: {
                live.cancel()
            }
        } else {
            try await write(query.select(from: observer.history()).map(query.response))
        }
    }

    /// At most this many responses go to the client in one write.
    static let writeBatch = 256

    /// Writes `responses` a batch at a time: a write per message costs a hop to the
    /// connection's event loop and a flush each, most of a busy stream's cost.
    static func write(
        _ responses: [Observer_GetFlowsResponse], to response: RPCWriter<Observer_GetFlowsResponse>
    ) async throws {
        for start in stride(from: 0, to: responses.count, by: writeBatch) {
            try await response.write(contentsOf: responses[start..<min(start + writeBatch, responses.count)])
        }
    }

    /// Writes `responses` as `FlowBatch` messages of about `FlowBatchEncoder.targetSize` each.
    static func write(_ responses: [Observer_GetFlowsResponse], batchesTo writer: RPCWriter<[UInt8]>) async throws {
        var batch = FlowBatchEncoder()
        for response in responses {
            try batch.append(response)
            if batch.isFull { try await writer.write(batch.take()) }
        }
        if !batch.isEmpty { try await writer.write(batch.take()) }
    }

    /// `osprey.v1.FlowBatches`: GetFlows for Osprey's relay, many responses per message. Listed
    /// after the service.
    public var batches: some RegistrableRPCService { FlowBatchesService(observer: self) }

    struct FlowBatchesService: RegistrableRPCService {
        let observer: ObserverService

        func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
            router.registerServerStreaming(
                Osprey_V1_FlowBatches.Method.GetFlowBatches.descriptor,
                deserializer: ProtobufDeserializer<Observer_GetFlowsRequest>(), serializer: RawBytes()
            ) { [observer] request, metadata, _, writer in
                let marks = metadata[stringValues: ProgressMark.header].contains("1")
                try await observer.getFlows(request: request, progressMarks: marks) {
                    try await ObserverService.write($0, batchesTo: writer)
                }
            }
        }
    }

    /// A follow: the history's flows, then every new one that passes, lost-event records and
    /// (when asked) progress marks, until the subscription ends.
    func follow(
        _ query: FlowQuery, history: [Flow], live: ObserverSubscription, marks: Bool,
        write: ([Observer_GetFlowsResponse]) async throws -> Void
    ) async throws {
        try await write(query.select(from: history).map(query.response))
        var lastMark = Date.distantPast
        var events = live.makeAsyncIterator()
        var batch: [Observer_GetFlowsResponse] = []
        while let ready = await events.nextBatch() {
            for event in ready {
                switch event {
                case .flow(let flow):
                    if let until = query.until, flow.time > until {
                        try await write(batch)
                        return
                    }
                    if let message = query.match(flow) { batch.append(query.response(message)) }
                case .lost(let lost):
                    batch.append(
                        .with {
                            $0.lostEvents = FlowMessage.lostEvent(lost)
                            $0.nodeName = nodeName
                            $0.time = FlowMessage.timestamp(lost.last)
                        })
                case .progress(let time):
                    // At most one a markInterval, but at once after the node's clock was set back.
                    guard time < lastMark || time.timeIntervalSince(lastMark) >= Self.markInterval else { continue }
                    lastMark = time
                    batch.append(ProgressMark.response(node: nodeName, time: time))
                }
            }
            try await write(batch)
            batch.removeAll(keepingCapacity: true)
        }
    }

    public func getAgentEvents(
        request: Observer_GetAgentEventsRequest, response: RPCWriter<Observer_GetAgentEventsResponse>,
        context: ServerContext
    ) async throws {
        throw RPCError(code: .unimplemented, message: "Osprey does not produce agent events; use GetFlows.")
    }

    public func getDebugEvents(
        request: Observer_GetDebugEventsRequest, response: RPCWriter<Observer_GetDebugEventsResponse>,
        context: ServerContext
    ) async throws {
        throw RPCError(code: .unimplemented, message: "Osprey does not produce debug events; use GetFlows.")
    }

    /// The agent itself, as one connected node (Hubble's agent answers Unimplemented; Osprey
    /// answers so that `osprey list nodes` works against a single agent too).
    public func getNodes(
        request: Observer_GetNodesRequest, context: ServerContext
    ) async throws
        -> Observer_GetNodesResponse
    {
        .with {
            $0.nodes = [
                .with {
                    $0.name = nodeName
                    $0.version = OspreyVersion.current
                    $0.state = .nodeConnected
                    $0.uptimeNs = uptimeNanoseconds
                    $0.numFlows = UInt64(observer.numFlows)
                    $0.maxFlows = UInt64(observer.capacity)
                    $0.seenFlows = observer.seenFlows
                }
            ]
        }
    }

    public func getNamespaces(
        request: Observer_GetNamespacesRequest, context: ServerContext
    ) async throws
        -> Observer_GetNamespacesResponse
    {
        let cluster = clusterName
        return .with {
            $0.namespaces = observer.namespaces(since: Date().addingTimeInterval(-3600)).map { name in
                .with {
                    $0.cluster = cluster
                    $0.namespace = name
                }
            }
        }
    }

    public func serverStatus(
        request: Observer_ServerStatusRequest, context: ServerContext
    ) async throws
        -> Observer_ServerStatusResponse
    {
        .with {
            $0.numFlows = UInt64(observer.numFlows)
            $0.maxFlows = UInt64(observer.capacity)
            $0.seenFlows = observer.seenFlows
            $0.uptimeNs = uptimeNanoseconds
            $0.version = OspreyVersion.current
            $0.flowsRate = observer.flowsRate
        }
    }

    var uptimeNanoseconds: UInt64 { UInt64(max(0, Date().timeIntervalSince(observer.started)) * 1e9) }
}

/// One GetFlows request over the ring: the validated request, and which of the ring's flows it
/// selects.
struct FlowQuery {
    let request: FlowRequest
    var number: UInt64 { request.number }
    var first: Bool { request.first }
    var follow: Bool { request.follow }
    var since: Date? { request.since }
    var until: Date? { request.until }
    var filters: FlowFilterSet { request.filters }
    var mask: FlowFieldMask? { request.mask }

    init(_ request: Observer_GetFlowsRequest) throws(RPCError) {
        do { self.request = try FlowRequest(request) } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
    }

    /// The flow as a message when it passes the filters, masked. A flow the filters can reject
    /// by its addresses, pods or verdict alone never becomes a message.
    func match(_ flow: Flow) -> Flow_Flow? {
        guard let message = filters.message(for: flow) else { return nil }
        return mask?.apply(message) ?? message
    }

    func response(_ flow: Flow_Flow) -> Observer_GetFlowsResponse {
        .with {
            $0.flow = flow
            $0.nodeName = flow.nodeName
            $0.time = flow.time
        }
    }

    /// Hubble's reader over the ring: since/until bound the window, `number` caps what of it is
    /// returned — `first` counts from the oldest, otherwise from the newest (rewinding until
    /// `number` flows pass the filters or a flow is older than `since`); a follow with no
    /// number and no since starts now. Result in time order.
    func select(from history: [Flow]) -> [Flow_Flow] {
        func inRange(_ flow: Flow) -> Bool {
            if let since, flow.time < since { return false }
            if let until, flow.time > until { return false }
            return true
        }
        let limit = number == 0 ? UInt64.max : number
        var selected: [Flow_Flow] = []
        if first {
            for flow in history where inRange(flow) {
                guard let message = match(flow) else { continue }
                selected.append(message)
                if UInt64(selected.count) >= limit { break }
            }
            return selected
        }
        if follow, number == 0, since == nil { return [] }
        for flow in history.reversed() {
            if let since, flow.time < since { break }
            guard inRange(flow), let message = match(flow) else { continue }
            selected.append(message)
            if UInt64(selected.count) >= limit { break }
        }
        return selected.reversed()
    }
}
