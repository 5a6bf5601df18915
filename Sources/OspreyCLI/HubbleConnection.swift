import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import HubbleServer
import HubbleTransport
import HubbleWire

/// Flags every command that talks to a Hubble server shares (as hubble's).
struct ServerOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Address of the Hubble API server: host:port or unix:///path (Env: OSPREY_SERVER; `osprey config`).",
            valueName: "address"))
    var server: String = CLIConfig.string("server")

    @Option(
        help: ArgumentHelp(
            "How long to wait for the server to answer its health check, e.g. 5s.", valueName: "duration"))
    var timeout: String = CLIConfig.string("timeout")

    @Option(help: ArgumentHelp("How long unary requests (status, list) may take, e.g. 12s.", valueName: "duration"))
    var requestTimeout: String = CLIConfig.string("request-timeout")

    @Flag(help: "Connect with TLS (also implied by a tls:// server address).")
    var tls = CLIConfig.bool("tls")

    @Flag(help: "Accept any server certificate (testing only: no protection against impostors).")
    var tlsAllowInsecure = CLIConfig.bool("tls-allow-insecure")

    @Option(
        help: ArgumentHelp(
            "CA certificates (PEM) that signed the server's certificate; repeatable or comma-separated.",
            valueName: "paths"))
    var tlsCaCertFiles: [String] = CLIConfig.list("tls-ca-cert-files")

    @Option(help: ArgumentHelp("This client's certificate (PEM), for mutual TLS.", valueName: "path"))
    var tlsClientCertFile: String = CLIConfig.string("tls-client-cert-file")

    @Option(help: ArgumentHelp("This client's private key (PEM), for mutual TLS.", valueName: "path"))
    var tlsClientKeyFile: String = CLIConfig.string("tls-client-key-file")

    @Option(
        help: ArgumentHelp(
            "The name the server's certificate must carry, e.g. relay.osp.hubble-relay.osprey.local.",
            valueName: "name"))
    var tlsServerName: String = CLIConfig.string("tls-server-name")

    func validate() throws {
        do { _ = try CLIConfig.file() } catch { throw ValidationError(error.description) }
        _ = try address()
        _ = try clientTLS()
        guard Durations.parse(timeout) != nil else {
            throw ValidationError("--timeout \"\(timeout)\" is not a duration such as 5s, 500ms or 1m.")
        }
        guard Durations.parse(requestTimeout) != nil else {
            throw ValidationError("--request-timeout \"\(requestTimeout)\" is not a duration such as 12s or 1m.")
        }
    }

    /// Connects, checks the server is healthy, runs `body` with its Observer service, closes.
    func withObserver<T: Sendable>(
        _ body: @Sendable (Observer_Observer.Client<HTTP2ClientTransport.Posix>, CallOptions) async throws -> T
    ) async throws -> T {
        try await withClient { client, options in try await body(Observer_Observer.Client(wrapping: client), options) }
    }

    /// Connects, checks the server is healthy, runs `body` with the connection, closes it.
    func withClient<T: Sendable>(
        _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>, CallOptions) async throws -> T
    ) async throws -> T {
        let transport = try HubbleDialer(tls: try clientTLS()).transport(to: try address())
        let connect = Durations.parse(timeout) ?? .seconds(5)
        var unary = CallOptions.defaults
        unary.timeout = Durations.parse(requestTimeout) ?? .seconds(12)
        do {
            return try await withGRPCClient(transport: transport) { client in
                var check = CallOptions.defaults
                check.timeout = connect
                check.waitForReady = true
                let health = try await Grpc_Health_V1_Health.Client(wrapping: client).check(
                    .with { $0.service = HealthService.observerServiceName }, options: check)
                guard health.status == .serving else {
                    throw CLIError("The Hubble server at \(server) is not healthy (\(health.status)).")
                }
                return try await body(client, unary)
            }
        } catch let error as RPCError {
            switch error.code {
            case .unavailable, .deadlineExceeded:
                throw CLIError(
                    "Cannot reach a Hubble server at \(server) (\(error.message)); start osprey-agent or "
                        + "osprey-relay there, or point --server (OSPREY_SERVER) at one.")
            default:
                throw CLIError("The server at \(server) answered \(error.code): \(error.message)")
            }
        } catch let error as RuntimeError {
            throw CLIError("Cannot use the Hubble server at \(server): \(error.message)")
        }
    }

    func address() throws(ValidationError) -> HubbleAddress {
        do { return try HubbleAddress(parsing: server, defaultPort: 4245) } catch {
            throw ValidationError("--server \(error.description)")
        }
    }

    /// The TLS settings the flags ask for; nil for plaintext.
    func clientTLS() throws(ValidationError) -> ClientTLS? {
        let files = tlsCaCertFiles.flatMap { $0.split(separator: ",").map(String.init) }
        let wanted =
            tls || (try? address())?.tls == true || tlsAllowInsecure || !files.isEmpty || !tlsClientCertFile.isEmpty
            || !tlsServerName.isEmpty
        guard wanted else { return nil }
        do {
            return try ClientTLS(
                caFiles: files, certificateFile: tlsClientCertFile, keyFile: tlsClientKeyFile,
                serverName: tlsServerName, allowInsecure: tlsAllowInsecure, flagPrefix: "tls-client-")
        } catch { throw ValidationError(error.description) }
    }
}

/// One sentence for the user; the command exits 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
