import ArgumentParser
import Foundation
import GRPCCore
import HubbleTransport
import Hummingbird
import Logging
import ServiceLifecycle
import WebUI

/// `osprey ui`: Osprey's web UI served from this machine against any Hubble API server — an
/// Osprey relay or agent, or Cilium's hubble-relay (behind `kubectl port-forward`, say).
struct UICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ui",
        abstract: "Serve the web UI (service map and flows) locally for a Hubble API server.",
        discussion: "Open the printed address in a browser; Ctrl-C stops it.")

    @OptionGroup var server: ServerOptions

    @Option(help: ArgumentHelp("Where to serve the UI: host:port or unix:///path.", valueName: "address"))
    var listen: String = "127.0.0.1:12000"

    @Option(help: ArgumentHelp("Serve the UI over HTTPS with this certificate (PEM).", valueName: "path"))
    var listenTlsCertFile: String = ""

    @Option(help: ArgumentHelp("The HTTPS certificate's private key (PEM).", valueName: "path"))
    var listenTlsKeyFile: String = ""

    /// The UI's own HTTPS, nil for plain HTTP.
    func listenTLS() throws -> ServerTLS? {
        do {
            return try ServerTLS(
                certificateFile: listenTlsCertFile, keyFile: listenTlsKeyFile, clientCAFiles: [],
                flagPrefix: "listen-tls-")
        } catch { throw ValidationError(error.description) }
    }

    func validate() throws {
        _ = try listenTLS()
        let address: HubbleAddress
        do { address = try HubbleAddress(parsing: listen, defaultPort: 12000) } catch {
            throw ValidationError("--listen \(error.description)")
        }
        do { try address.checkBindable() } catch {
            throw ValidationError("Cannot listen on \(address): \(error.reason); choose another --listen.")
        }
    }

    func run() async throws {
        let upstream = try server.address()
        let listenAddress = try HubbleAddress(parsing: listen, defaultPort: 12000)
        let transport = try HubbleDialer(tls: try server.clientTLS()).transport(to: upstream)
        let client = GRPCClient(transport: transport)
        var logger = Logger(label: "osprey-ui")
        logger.logLevel = .warning
        let web = UIServer(upstream: GRPCUpstream(client: client), logger: logger)
        let tls = try listenTLS()
        let app = try web.application(address: listenAddress, tls: tls)
        // Written at once (not buffered), also when stdout is a pipe or a log file.
        FileHandle.standardOutput.write(
            Data("Osprey UI for \(upstream) on \(Self.url(listenAddress, https: tls != nil))\n".utf8))
        // Ctrl-C or SIGTERM stops all of it: the HTTP server, the views and the connection.
        let group = ServiceGroup(
            configuration: .init(
                services: [UIBackend(client: client, web: web), app], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// The connection to the Hubble server and the UI's views, until the UI stops.
    struct UIBackend<Transport: ClientTransport>: Service {
        let client: GRPCClient<Transport>
        let web: UIServer

        func run() async throws {
            await cancelWhenGracefulShutdown {
                await withDiscardingTaskGroup { group in
                    group.addTask { try? await client.runConnections() }
                    group.addTask { await web.run() }
                }
            }
            client.beginGracefulShutdown()
        }
    }

    static func url(_ address: HubbleAddress, https: Bool = false) -> String {
        switch address.endpoint {
        case .tcp(let host, let port): "\(https ? "https" : "http")://\(host.isEmpty ? "localhost" : host):\(port)/"
        case .unix(let path): "unix://\(path)"
        }
    }
}
