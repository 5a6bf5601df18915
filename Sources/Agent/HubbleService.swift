import HubbleServer
import ServiceLifecycle

/// The Hubble gRPC API as one of the agent's services: stops on SIGTERM like the others.
struct HubbleService: Service {
    let server: HubbleServer

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await server.run() }
    }
}
