import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HubbleAPI
import HubbleServer

/// Flags every command that talks to a Hubble server shares (as hubble's).
struct ServerOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Address of the Hubble API server: host:port or unix:///path (Env: OSPREY_SERVER).",
            valueName: "address"))
    var server: String = ProcessInfo.processInfo.environment["OSPREY_SERVER"] ?? "localhost:4245"

    @Option(
        help: ArgumentHelp(
            "How long to wait for the server to answer its health check, e.g. 5s.", valueName: "duration"))
    var timeout: String = "5s"

    @Option(help: ArgumentHelp("How long unary requests (status, list) may take, e.g. 12s.", valueName: "duration"))
    var requestTimeout: String = "12s"

    func validate() throws {
        _ = try HubbleTarget(server)
        guard Durations.parse(timeout) != nil else {
            throw ValidationError("--timeout \"\(timeout)\" is not a duration such as 5s, 500ms or 1m.")
        }
        guard Durations.parse(requestTimeout) != nil else {
            throw ValidationError("--request-timeout \"\(requestTimeout)\" is not a duration such as 12s or 1m.")
        }
    }

    /// Connects, checks the server is healthy, runs `body`, closes the connection.
    func withObserver<T: Sendable>(
        _ body: @Sendable (Observer_Observer.Client<HTTP2ClientTransport.Posix>, CallOptions) async throws -> T
    ) async throws -> T {
        let target = try HubbleTarget(server)
        let transport = try HTTP2ClientTransport.Posix(target: target.target, transportSecurity: .plaintext)
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
                return try await body(Observer_Observer.Client(wrapping: client), unary)
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
        }
    }
}

/// One sentence for the user; the command exits 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `host:port`, `[v6]:port`, `unix:///path`.
struct HubbleTarget {
    let target: any ResolvableTarget

    init(_ text: String) throws(ValidationError) {
        if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            guard path.hasPrefix("/") else {
                throw ValidationError("--server \(text) must name an absolute socket path: unix:///path/to/sock.")
            }
            target = ResolvableTargets.UnixDomainSocket.unixDomainSocket(path: path)
            return
        }
        if text.hasPrefix("tls://") {
            throw ValidationError("--server \(text): TLS connections are not supported by this osprey yet.")
        }
        var rest = Substring(text)
        for scheme in ["dns:///", "http://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        var host: Substring
        let portText: Substring
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            portText = rest[rest.index(after: close)...].drop { $0 == ":" }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
            portText = "4245"
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else {
            throw ValidationError("--server \"\(text)\" is not host:port or unix:///path (e.g. localhost:4245).")
        }
        if host == "localhost" { host = "127.0.0.1" }
        target = ResolvableTargets.DNS.dns(host: String(host), port: port)
    }
}

/// Go-style durations: `500ms`, `5s`, `4m`, `1h43m`.
enum Durations {
    static func parse(_ text: String) -> Duration? {
        guard !text.isEmpty else { return nil }
        var total = 0.0
        var number = ""
        var index = text.startIndex
        var sawUnit = false
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            var unit = ""
            while index < text.endIndex, text[index].isLetter {
                unit.append(text[index])
                index = text.index(after: index)
            }
            guard let value = Double(number) else { return nil }
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            total += value * scale
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty else { return nil }
        return .nanoseconds(Int64(total * 1e9))
    }
}
