import ArgumentParser
import Foundation
import GRPCCore
import GRPCInProcessTransport
import HubbleServer
import HubbleTransport
import HubbleWire
import Hummingbird
import Logging
import ServiceLifecycle
import WebUI

/// `osprey-relay`: one cluster-wide Hubble API over every node's agent.
///
/// Configuration: flags, else `OSPREY_RELAY_*` environment variables, else defaults. Flag
/// names follow hubble-relay's where it has one.
public struct RelayCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "osprey-relay",
        abstract: "Osprey's relay: every node's flows, merged, behind one Hubble API on :4245.",
        version: OspreyVersion.current)

    static let environment = ProcessInfo.processInfo.environment

    static func list(_ variable: String) -> [String] {
        (environment[variable] ?? "").split(separator: ",").map(String.init)
    }

    @Option(
        help:
            "Where to serve (host:port, :port or unix:///path; repeatable). Env: OSPREY_RELAY_LISTEN_ADDRESS (comma-separated)."
    )
    var listenAddress: [String] =
        list("OSPREY_RELAY_LISTEN_ADDRESS").isEmpty ? [":4245"] : list("OSPREY_RELAY_LISTEN_ADDRESS")

    @Option(
        help:
            "The Hubble server whose peer.Peer/Notify lists the agents (an agent, or a Service in front of them). Env: OSPREY_RELAY_PEER_SERVICE."
    )
    var peerService: String = environment["OSPREY_RELAY_PEER_SERVICE"] ?? "unix:///var/run/osprey/hubble.sock"

    @Option(
        help:
            "A fixed list of agents instead of a peer service: name=address, repeatable or comma-separated. Env: OSPREY_RELAY_PEERS."
    )
    var peers: [String] = list("OSPREY_RELAY_PEERS")

    @Option(
        help:
            "Find agents by DNS instead: every address this name (a headless Service over the agents) resolves to, at :4244 unless NAME:PORT. Env: OSPREY_RELAY_PEERS_DNS."
    )
    var peersDns: String = environment["OSPREY_RELAY_PEERS_DNS"] ?? ""

    @Option(help: "How long to wait before asking the peer service (or DNS) again.")
    var retryTimeout: String = "5s"

    @Option(help: "How often each agent's health is checked.")
    var peerCheckInterval: String = "1s"

    @Option(
        help:
            "Where the web UI is served (host:port, :port or unix:///path; empty: no UI). Env: OSPREY_RELAY_UI_LISTEN_ADDRESS."
    )
    var uiListenAddress: String = environment["OSPREY_RELAY_UI_LISTEN_ADDRESS"] ?? ":12000"

    @Option(help: "Most responses the time-ordering buffer holds before the oldest leaves.")
    var sortBufferLenMax: Int = 100

    @Option(help: "How long a response may wait in the time-ordering buffer while no others arrive.")
    var sortBufferDrainTimeout: String = "1s"

    @Option(help: "Certificate (PEM) the relay serves with; with its key, turns TLS on for clients.")
    var tlsRelayServerCertFile: String = environment["OSPREY_RELAY_TLS_SERVER_CERT_FILE"] ?? ""

    @Option(help: "The relay's private key (PEM).")
    var tlsRelayServerKeyFile: String = environment["OSPREY_RELAY_TLS_SERVER_KEY_FILE"] ?? ""

    @Option(help: "CAs (PEM, repeatable or comma-separated) that must have signed a client's certificate: mutual TLS.")
    var tlsRelayClientCaFiles: [String] = list("OSPREY_RELAY_TLS_CLIENT_CA_FILES")

    @Option(
        help:
            "CAs (PEM, repeatable or comma-separated) that signed the agents' certificates; turns TLS towards agents on."
    )
    var tlsHubbleServerCaFiles: [String] = list("OSPREY_RELAY_TLS_HUBBLE_SERVER_CA_FILES")

    @Option(
        help:
            "The name the peer service's certificate carries (e.g. node-1.<cluster>.hubble-grpc.osprey.local); agents' names come with their peer notifications."
    )
    var tlsPeerServiceServerName: String = environment["OSPREY_RELAY_TLS_PEER_SERVICE_SERVER_NAME"] ?? ""

    @Option(help: "The relay's client certificate (PEM) for agents that require mutual TLS.")
    var tlsClientCertFile: String = environment["OSPREY_RELAY_TLS_CLIENT_CERT_FILE"] ?? ""

    @Option(help: "The relay's client key (PEM).")
    var tlsClientKeyFile: String = environment["OSPREY_RELAY_TLS_CLIENT_KEY_FILE"] ?? ""

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Env: OSPREY_LOG_LEVEL.")
    var logLevel: String = environment["OSPREY_LOG_LEVEL"] ?? "info"

    public init() {}

    /// Everything the flags say, checked; each problem is one sentence.
    struct Settings {
        var listeners: [HubbleServer.Listener]
        var discovery: PeerPool.Discovery
        var clientTLS: ClientTLS?
        var retry: Duration
        var check: Duration
        var drain: Duration
        var level: Logger.Level
        /// Where the web UI listens (nil: no UI).
        var ui: HubbleAddress?
    }

    static func split(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter {
            !$0.isEmpty
        }
    }

    func settings() throws(ValidationError) -> Settings {
        func duration(_ text: String, _ flag: String) throws(ValidationError) -> Duration {
            guard let value = Durations.parse(text), value > .zero else {
                throw ValidationError("--\(flag) \"\(text)\" is not a duration such as 500ms, 5s or 1m.")
            }
            return value
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical.")
        }
        guard sortBufferLenMax > 0 else { throw ValidationError("--sort-buffer-len-max must be at least 1.") }
        do {
            let serverTLS = try ServerTLS(
                certificateFile: tlsRelayServerCertFile, keyFile: tlsRelayServerKeyFile,
                clientCAFiles: Self.split(tlsRelayClientCaFiles), flagPrefix: "tls-relay-server-")
            let caFiles = Self.split(tlsHubbleServerCaFiles)
            let clientTLS =
                caFiles.isEmpty && tlsClientCertFile.isEmpty
                ? nil
                : try ClientTLS(
                    caFiles: caFiles, certificateFile: tlsClientCertFile, keyFile: tlsClientKeyFile,
                    flagPrefix: "tls-client-")
            guard !listenAddress.isEmpty else { throw ValidationError("--listen-address is required.") }
            var listeners: [HubbleServer.Listener] = []
            for text in listenAddress {
                let address: HubbleAddress
                do { address = try HubbleAddress(parsing: text, defaultPort: 4245) } catch {
                    throw ValidationError("--listen-address \(error.description)")
                }
                do { try address.checkBindable() } catch {
                    throw ValidationError(
                        "Cannot listen on \(address): \(error.reason); choose another --listen-address.")
                }
                listeners.append(.init(address: address, tls: serverTLS))
            }
            let discovery: PeerPool.Discovery
            let fixed = Self.split(peers)
            guard fixed.isEmpty || peersDns.isEmpty else {
                throw ValidationError("Use either --peers or --peers-dns, not both.")
            }
            if !peersDns.isEmpty {
                guard
                    case .tcp(let host, let port) = (try? HubbleAddress(parsing: peersDns, defaultPort: 4244))?.endpoint,
                    !host.isEmpty
                else { throw ValidationError("--peers-dns \"\(peersDns)\" is not NAME or NAME:PORT.") }
                discovery = .dns(host: host, port: port)
            } else if fixed.isEmpty {
                do {
                    discovery = .peerService(
                        try HubbleAddress(parsing: peerService, defaultPort: 4244),
                        serverName: tlsPeerServiceServerName.isEmpty ? nil : tlsPeerServiceServerName)
                } catch {
                    throw ValidationError("--peer-service \(error.description)")
                }
            } else {
                var list: [(name: String, address: String)] = []
                for entry in fixed {
                    let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                    let (name, address) = parts.count == 2 ? (parts[0], parts[1]) : (entry, entry)
                    do { _ = try HubbleAddress(parsing: address, defaultPort: 4244) } catch {
                        throw ValidationError("--peers entry \"\(entry)\": address \(error.description)")
                    }
                    list.append((name, address))
                }
                discovery = .fixed(list)
            }
            let retry = try duration(retryTimeout, "retry-timeout")
            let check = try duration(peerCheckInterval, "peer-check-interval")
            let drain = try duration(sortBufferDrainTimeout, "sort-buffer-drain-timeout")
            var ui: HubbleAddress?
            if !uiListenAddress.isEmpty {
                let address: HubbleAddress
                do { address = try HubbleAddress(parsing: uiListenAddress, defaultPort: 12000) } catch {
                    throw ValidationError("--ui-listen-address \(error.description)")
                }
                do { try address.checkBindable() } catch {
                    throw ValidationError(
                        "Cannot listen on \(address): \(error.reason); choose another --ui-listen-address (empty: no UI)."
                    )
                }
                ui = address
            }
            return Settings(
                listeners: listeners, discovery: discovery, clientTLS: clientTLS, retry: retry, check: check,
                drain: drain, level: level, ui: ui)
        } catch let error as TLSError {
            throw ValidationError(error.description)
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
    }

    public func run() async throws {
        let settings: Settings
        do { settings = try self.settings() } catch { Self.fail(error.message) }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.level
            return handler
        }
        let logger = Logger(label: "osprey-relay")
        let pool = PeerPool(
            discovery: settings.discovery, dialer: HubbleDialer(tls: settings.clientTLS), checkInterval: settings.check,
            retryInterval: settings.retry, logger: logger)
        let observer = RelayObserverService(
            pool: pool, sortBufferMaxLength: sortBufferLenMax, sortBufferDrainTimeout: settings.drain)
        let server = HubbleServer(
            services: [
                observer, observer.passthrough,
                HealthService(services: ["", HealthService.observerServiceName, "observer.Observer"]),
            ],
            listeners: settings.listeners)
        logger.info(
            "started",
            metadata: [
                "listen": "\(settings.listeners.map { "\($0.address)" }.joined(separator: ","))",
                "tls": "\(settings.listeners.first?.tls == nil ? "off" : "on")",
                "peers": "\(settings.discovery)",
            ])
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    RelayService(
                        pool: pool, server: server, ui: settings.ui, tls: settings.listeners.first?.tls, logger: logger)
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch { Self.fail("stopped: \(error)") }
        logger.info("stopped")
    }

    /// Prints one sentence and exits non-zero (1).
    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("osprey-relay: \(message)\n".utf8))
        Foundation.exit(1)
    }
}

/// The peer pool, the API server and the web UI as one service that stops on SIGTERM. The UI
/// reads the relay's own merged flows through an in-process gRPC connection: the same API its
/// clients use, with no socket and no TLS in between.
struct RelayService: Service {
    let pool: PeerPool
    let server: HubbleServer
    let ui: HubbleAddress?
    let tls: ServerTLS?
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await pool.run() }
                group.addTask { try await server.run() }
                guard let ui else { return }
                let transport = InProcessTransport()
                let client = GRPCClient(transport: transport.client)
                let web = UIServer(upstream: GRPCUpstream(client: client), logger: logger)
                group.addTask { try await server.serve(inProcess: transport.server) }
                group.addTask { try await client.runConnections() }
                group.addTask { await web.run() }
                // TLS from the relay's server certificate when it has one.
                let app = try web.application(address: ui, tls: tls)
                // `run`, not `runService`: the relay's ServiceGroup owns the signals.
                group.addTask { try await app.run() }
                logger.info("web UI", metadata: ["listen": "\(ui)"])
            }
        }
    }
}
