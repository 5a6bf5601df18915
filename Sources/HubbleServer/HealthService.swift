import GRPCCore
import HubbleAPI

/// `grpc.health.v1.Health`: SERVING for the whole server ("") and for Hubble's observer
/// service name, which `hubble status` checks before anything else.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    /// The name Hubble clients check (`hubble.server.Observer`).
    public static let observerServiceName = "hubble.server.Observer"
    let services: Set<String>

    public init(services: Set<String> = ["", HealthService.observerServiceName, "observer.Observer", "peer.Peer"]) {
        self.services = services
    }

    public func check(
        request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext
    ) async throws
        -> Grpc_Health_V1_HealthCheckResponse
    {
        guard services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \"\(request.service)\"")
        }
        return .with { $0.status = .serving }
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        try await response.write(.with { $0.status = services.contains(request.service) ? .serving : .serviceUnknown })
        // The status never changes while the server runs; hold the stream open until cancelled.
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }
}
