import Foundation
import GRPCCore
import GRPCInProcessTransport
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import HubbleTransport

/// gRPC services served on one or more addresses (TCP and unix sockets), each plaintext or
/// TLS: the agent's Hubble API (`:4244` and `/var/run/osprey/hubble.sock`, like Cilium's agent)
/// and the relay's (`:4245`).
public struct HubbleServer: Sendable {
    /// One address to serve on, and how.
    public struct Listener: Sendable {
        public let address: HubbleAddress
        public let tls: ServerTLS?
        public init(address: HubbleAddress, tls: ServerTLS?) {
            self.address = address
            self.tls = tls
        }
    }

    let services: [any RegistrableRPCService]
    let listeners: [Listener]

    /// Serves `services` and gRPC server reflection for them.
    public init(services: [any RegistrableRPCService], listeners: [Listener]) {
        var router = RPCRouter<HTTP2ServerTransport.Posix>()
        for service in services { service.registerMethods(with: &router) }
        let names = Set(router.methods.map(\.service.fullyQualifiedService))
        self.services = services + [ReflectionService(services: Array(names))]
        self.listeners = listeners
    }

    /// Serves until cancelled; being cancelled is a normal stop, not an error.
    ///
    /// A stop is graceful first: the server closes its listener and tells clients to go away,
    /// then, a second later, whatever still streams (follow streams never end by themselves) is
    /// cancelled. Cancelling a NIO server while it accepts a connection or stream can trap
    /// (swift-nio#3481, "Deinited NIOAsyncWriter without calling finish()"), so the serving task
    /// is never cancelled directly.
    static func serve(_ server: GRPCServer<HTTP2ServerTransport.Posix>) async throws {
        let serving = Task { try await server.serve() }
        do {
            try await withTaskCancellationHandler {
                try await serving.value
            } onCancel: {
                server.beginGracefulShutdown()
                Task {
                    try? await Task.sleep(for: .seconds(1))
                    serving.cancel()
                }
            }
        } catch  where Task.isCancelled {
            return
        }
    }

    /// Serves on every listener until cancelled.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for listener in listeners {
                do throws(HubbleAddress.BindError) { try listener.address.prepareUnixSocket() } catch {
                    throw ListenError(address: listener.address, reason: error.reason)
                }
                let server = GRPCServer(
                    transport: .http2NIOPosix(
                        address: listener.address.bindTarget,
                        transportSecurity: listener.tls?.transportSecurity ?? .plaintext),
                    services: services)
                group.addTask { try await Self.serve(server) }
            }
        }
    }
}

extension HubbleServer {
    /// Serves the same services to clients in this process (the relay's web UI) until
    /// cancelled: no socket, no TLS, nothing another process can reach.
    public func serve(inProcess transport: InProcessTransport.Server) async throws {
        let server = GRPCServer(transport: transport, services: services)
        let serving = Task { try await server.serve() }
        await withTaskCancellationHandler {
            _ = try? await serving.value
        } onCancel: {
            server.beginGracefulShutdown()
        }
    }
}

/// A listener that cannot be served, in one sentence.
public struct ListenError: Error, CustomStringConvertible {
    public let address: HubbleAddress
    public let reason: String
    public var description: String { "Cannot listen on \(address): \(reason)." }
}
