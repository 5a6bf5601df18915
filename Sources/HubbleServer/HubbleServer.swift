import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import Observer

/// The agent's Hubble API: the same services on a TCP address (`:4244`) and a unix socket
/// (`/var/run/osprey/hubble.sock`), like Cilium's agent.
public struct HubbleServer: Sendable {
    let services: [any RegistrableRPCService]
    let address: (host: String, port: Int)?
    let socketPath: String?

    public init(
        observer: Observer, nodeName: String, clusterName: String, address: (host: String, port: Int)?,
        socketPath: String?,
        peers: @escaping @Sendable () -> [PeerService.Peer]
    ) {
        services = [
            ObserverService(observer: observer, nodeName: nodeName, clusterName: clusterName), HealthService(),
            PeerService(peers: peers),
        ]
        self.address = address
        self.socketPath = socketPath
    }

    /// Serves until cancelled; being cancelled is a normal stop, not an error.
    static func serve(_ server: GRPCServer<HTTP2ServerTransport.Posix>) async throws {
        do {
            try await server.serve()
        } catch  where Task.isCancelled {
            return
        }
    }

    /// Serves until cancelled.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            if let address {
                let server = GRPCServer(
                    transport: .http2NIOPosix(
                        address: address.host.contains(":")
                            ? .ipv6(host: address.host, port: address.port)
                            : .ipv4(host: address.host, port: address.port),
                        transportSecurity: .plaintext),
                    services: services)
                group.addTask { try await Self.serve(server) }
            }
            if let socketPath {
                try? FileManager.default.createDirectory(
                    atPath: (socketPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                unlink(socketPath)
                let server = GRPCServer(
                    transport: .http2NIOPosix(
                        address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext),
                    services: services)
                group.addTask { try await Self.serve(server) }
            }
        }
    }
}
