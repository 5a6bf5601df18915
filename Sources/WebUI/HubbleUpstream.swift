import GRPCCore
import HubbleAPI

/// The Hubble API server the UI shows: an Osprey relay (in-process when the relay serves the
/// UI), an agent, or Cilium's hubble-relay.
public protocol HubbleUpstream: Sendable {
    /// Streams `request`'s responses to `body` until the stream ends, fails or the task is cancelled.
    func flows(
        _ request: Observer_GetFlowsRequest, _ body: @escaping @Sendable (Observer_GetFlowsResponse) async -> Void
    ) async throws
    func status() async throws -> Observer_ServerStatusResponse
    func namespaces() async throws -> [String]
}

/// A `HubbleUpstream` over a gRPC client whose connections its owner runs
/// (`GRPCClient.runConnections()`).
public struct GRPCUpstream<Transport: ClientTransport>: HubbleUpstream {
    let observer: Observer_Observer.Client<Transport>

    public init(client: GRPCClient<Transport>) { observer = Observer_Observer.Client(wrapping: client) }

    public func flows(
        _ request: Observer_GetFlowsRequest, _ body: @escaping @Sendable (Observer_GetFlowsResponse) async -> Void
    ) async throws {
        try await observer.getFlows(request) { response in
            for try await message in response.messages { await body(message) }
        }
    }

    public func status() async throws -> Observer_ServerStatusResponse {
        var options = CallOptions.defaults
        options.timeout = .seconds(5)
        return try await observer.serverStatus(Observer_ServerStatusRequest(), options: options)
    }

    public func namespaces() async throws -> [String] {
        var options = CallOptions.defaults
        options.timeout = .seconds(5)
        let response = try await observer.getNamespaces(Observer_GetNamespacesRequest(), options: options)
        return Array(Set(response.namespaces.map(\.namespace))).sorted()
    }
}
