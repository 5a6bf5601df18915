import AsyncHTTPClient
import Foundation
import KubernetesModel
import NIOCore
import NIOHTTP1
import NIOSSL

/// GET requests to a Kubernetes API server: whole responses (lists) and line streams
/// (watches), each with a deadline, the current bearer token and the cluster's TLS settings.
final class APIClient: Sendable {
    let access: ClusterAccess
    let http: HTTPClient
    /// The longest a request may wait for its answer (a watch: for its first bytes).
    let requestTimeout: Duration

    init(access: ClusterAccess, requestTimeout: Duration) throws {
        self.access = access
        self.requestTimeout = requestTimeout
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = access.certificateAuthority {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
        }
        if access.insecureSkipTLSVerify { tls.certificateVerification = .none }
        if let certificate = access.clientCertificate, let key = access.clientKey {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(Int64(max(1, requestTimeout.components.seconds))))
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections in the background (TLS connections take up to 5 s to say goodbye;
    /// nobody needs to wait for that).
    func shutdown() { Task.detached { [http] in try? await http.shutdown() } }

    func request(_ pathAndQuery: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: access.server + pathAndQuery)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "osprey-agent")
        if let token = access.bearerToken(), !token.isEmpty {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        return request
    }

    /// A whole JSON answer; API errors (4xx/5xx) are thrown as `KubernetesClientError`.
    func get(_ pathAndQuery: String, maxBytes: Int = 256 << 20) async throws -> ByteBuffer {
        try await Self.withDeadline(requestTimeout, "GET \(pathAndQuery)") { [self] in
            let response = try await http.execute(request(pathAndQuery), timeout: .seconds(3600))
            let body = try await response.body.collect(upTo: maxBytes)
            try Self.check(response.status, body, path: pathAndQuery)
            return body
        }
    }

    /// Calls `line` for every line of a streamed answer until the server ends it, within
    /// `requestTimeout` for the answer's head and `lasting` for the whole stream.
    func stream(
        _ pathAndQuery: String, lasting: Duration, line: @escaping @Sendable (ArraySlice<UInt8>) throws -> Void
    ) async throws {
        try await Self.withDeadline(lasting + requestTimeout, "watch \(pathAndQuery)") { [self] in
            let response = try await Self.withDeadline(requestTimeout, "GET \(pathAndQuery)") { [self] in
                try await http.execute(request(pathAndQuery), timeout: .seconds(3600))
            }
            guard response.status == .ok else {
                let body = try await response.body.collect(upTo: 1 << 20)
                try Self.check(response.status, body, path: pathAndQuery)
                return
            }
            var pending: [UInt8] = []
            for try await chunk in response.body {
                pending.append(contentsOf: chunk.readableBytesView)
                var start = 0
                while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    if newline > start { try line(pending[start..<newline]) }
                    start = newline + 1
                }
                pending.removeFirst(start)
            }
        }
    }

    static func check(_ status: HTTPResponseStatus, _ body: ByteBuffer, path: String) throws {
        guard !(200..<300).contains(status.code) else { return }
        let apiStatus = try? JSONDecoder().decode(APIStatus.self, from: Data(body.readableBytesView))
        let message = apiStatus?.message ?? "HTTP \(status.code)"
        switch status.code {
        case 401: throw KubernetesClientError.unauthorized(message)
        case 403: throw KubernetesClientError.forbidden(message)
        case 410: throw KubernetesClientError.gone
        default: throw KubernetesClientError.failed(status: Int(status.code), message: message)
        }
    }

    /// Runs `body`, or throws `timedOut` once `limit` has passed (cancelling it).
    static func withDeadline<T: Sendable>(
        _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw KubernetesClientError.timedOut(what)
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            return first
        }
    }
}

/// What went wrong talking to the API server.
public enum KubernetesClientError: Error, Equatable, CustomStringConvertible {
    case unauthorized(String)
    case forbidden(String)
    /// The resourceVersion is too old: list again.
    case gone
    case timedOut(String)
    case failed(status: Int, message: String)
    case undecodable(String)

    public var description: String {
        switch self {
        case .unauthorized(let message): "the API server rejected the credentials (\(message))"
        case .forbidden(let message): message
        case .gone: "the resourceVersion is too old"
        case .timedOut(let what): "\(what) got no answer in time"
        case .failed(let status, let message): "HTTP \(status): \(message)"
        case .undecodable(let reason): "the answer could not be decoded (\(reason))"
        }
    }
}
