import Foundation
import Hummingbird
import KubernetesAPIServer
import KubernetesModel
import KubernetesSource
import Lab
import Locking
import Logging
import NIOPosix

/// The lab's Kubernetes API server in this process, over TLS on a free loopback port, with a
/// throwaway CA, accepted tokens a test can rotate, and kubeconfigs pointing at it.
final class APIServerFixture: Sendable {
    let server: KubeAPIServer
    let directory: String
    let port: Int
    let certificates: LabCertificates
    private let accepted: Tokens
    private let task: Task<Void, any Error>
    private let bookmarks: Task<Void, Never>
    /// The server's own event loop: the suites' gRPC servers and clients keep NIO's shared
    /// threads busy, and kubectl gives up on a TLS handshake after 10 s.
    private let eventLoops: MultiThreadedEventLoopGroup

    static func start(
        tokens: Set<String> = ["osp-token-1"], bookmarkInterval: Duration = .seconds(60)
    ) async throws
        -> APIServerFixture
    {
        let directory = "/tmp/osp-kube-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = LabCertificates(directory: directory, cluster: "ospkube")
        try certificates.create(with: Host())
        let accepted = Tokens(tokens)
        var logger = Logger(label: "test-kube-api")
        logger.logLevel = .critical  // stopping by cancellation makes Hummingbird log errors
        let server = KubeAPIServer(tokens: { accepted.current }, logger: logger)
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = try server.application(
            address: .hostname("127.0.0.1", port: 0), certificateFile: certificates.apiServerCertificate.cert,
            keyFile: certificates.apiServerCertificate.key, eventLoopGroup: .shared(eventLoops)
        ) { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        }
        let task = Task { try await app.runService() }
        var port = 0
        for await bound in portStream { port = bound }
        let bookmarks = Task { await server.run(bookmarkInterval: bookmarkInterval) }
        return APIServerFixture(
            server: server, directory: directory, port: port, certificates: certificates, accepted: accepted,
            task: task, bookmarks: bookmarks, eventLoops: eventLoops)
    }

    private init(
        server: KubeAPIServer, directory: String, port: Int, certificates: LabCertificates,
        accepted: Tokens, task: Task<Void, any Error>, bookmarks: Task<Void, Never>,
        eventLoops: MultiThreadedEventLoopGroup
    ) {
        self.server = server
        self.directory = directory
        self.port = port
        self.certificates = certificates
        self.accepted = accepted
        self.task = task
        self.bookmarks = bookmarks
        self.eventLoops = eventLoops
    }

    var url: String { "https://127.0.0.1:\(port)" }

    func accept(_ tokens: Set<String>) { accepted.set(tokens) }

    /// A kubeconfig for this server with a token (inline, or a file the client re-reads).
    func kubeconfig(
        token: String = "osp-token-1", tokenFile: String? = nil, name: String = "kubeconfig"
    ) throws
        -> String
    {
        let path = "\(directory)/\(name)"
        try Kubeconfig.render(
            name: "lab", server: url, certificateAuthority: certificates.caFile,
            credential: tokenFile.map { .tokenFile($0) } ?? .token(token)
        ).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func stop() async {
        bookmarks.cancel()
        task.cancel()
        _ = await task.result
        try? await eventLoops.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs `body` with a started fixture, and stops it whatever happens.
func withAPIServer(
    tokens: Set<String> = ["osp-token-1"], bookmarkInterval: Duration = .seconds(60),
    _ body: (APIServerFixture) async throws -> Void
) async throws {
    let fixture = try await APIServerFixture.start(tokens: tokens, bookmarkInterval: bookmarkInterval)
    do { try await body(fixture) } catch {
        await fixture.stop()
        throw error
    }
    await fixture.stop()
}

/// A log handler that keeps the messages, for tests that read what the agent would log.
struct CapturingLogHandler: LogHandler {
    let sink: LogLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) { sink.lines.withLock { $0.append("\(event.level): \(event.message)") } }
}

final class LogLines: Sendable {
    let lines = Lock<[String]>([])
    var logger: Logger {
        Logger(label: "test") { [self] _ in CapturingLogHandler(sink: self) }
    }
    var all: [String] { lines.withLock { $0 } }
}

/// The tokens the server accepts now.
final class Tokens: Sendable {
    private let tokens: Lock<Set<String>>
    init(_ tokens: Set<String>) { self.tokens = Lock(tokens) }
    var current: Set<String> { tokens.withLock { $0 } }
    func set(_ new: Set<String>) { tokens.withLock { $0 = new } }
}
