import Foundation
import HubbleAPI
import HubbleTransport
import HubbleWire
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Locking
import Logging
import NIOSSL
import ServiceMap

/// Osprey's web UI: the page and its script (embedded), JSON endpoints and one Server-Sent
/// Events stream per tab, over any Hubble API server. Read-only: nothing it serves changes the
/// cluster. Views (namespace, verdicts, filters, window) are shared: one upstream stream each,
/// however many tabs show it; a view nobody has shown for a while stops.
public final class UIServer: Sendable {
    let upstream: any HubbleUpstream
    let logger: Logger
    private let views = Lock<[MapView.Key: MapView]>([:])

    /// How long a view with no tab keeps its upstream stream (a reload does not restart it).
    static let idleTimeout: TimeInterval = 30

    public init(upstream: any HubbleUpstream, logger: Logger) {
        self.upstream = upstream
        self.logger = logger
    }

    /// Windows the UI offers, in seconds (default 5 minutes).
    public static let windows: [Double] = [60, 300, 900, 3600]

    /// The view a request asks for: `?namespace=&verdict=&filter=&window=`; one sentence when a
    /// parameter cannot be used.
    static func key(_ parameters: [String: [String]]) throws(ViewError) -> MapView.Key {
        var query = ViewQuery()
        if let namespace = parameters["namespace"]?.last, !namespace.isEmpty { query.namespace = namespace }
        for text in parameters["verdict"] ?? [] where !text.isEmpty {
            guard let verdict = ProtoNames.verdicts.value(text), verdict != .unknown else {
                throw ViewError("verdict \"\(text)\" is not a verdict (FORWARDED, DROPPED, ERROR, AUDIT…).")
            }
            query.verdicts.append(verdict)
        }
        for text in parameters["filter"] ?? [] where !text.isEmpty {
            do { query.filters.append(try FilterEntry(parsing: text)) } catch { throw ViewError("\(error)") }
        }
        guard query.filters.count <= 16 else { throw ViewError("at most 16 filters, not \(query.filters.count).") }
        var window = 300.0
        if let text = parameters["window"]?.last, !text.isEmpty {
            guard let seconds = Double(text), windows.contains(seconds) else {
                throw ViewError(
                    "window \(text) is not one of \(windows.map { String(Int($0)) }.joined(separator: ", ")) seconds.")
            }
            window = seconds
        }
        return MapView.Key(query: query, window: window)
    }

    struct ViewError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The running view for `key`, started on first use.
    func view(_ key: MapView.Key) -> MapView {
        let (view, started) = views.withLock { views -> (MapView, Bool) in
            if let view = views[key] { return (view, false) }
            let view = MapView(key: key, upstream: upstream)
            views[key] = view
            return (view, true)
        }
        if started {
            view.start()
            logger.debug("view started", metadata: ["namespace": "\(key.query.namespace ?? "*")"])
        }
        return view
    }

    /// Views without a tab for `idleTimeout` stop (called every few seconds).
    func stopIdleViews(now: Date = Date()) {
        let idle = views.withLock { views -> [MapView] in
            let idle = views.values.filter {
                $0.idleSince.map { now.timeIntervalSince($0) > Self.idleTimeout } ?? false
            }
            for view in idle { views.removeValue(forKey: view.key) }
            return idle
        }
        for view in idle { view.stop() }
    }

    var viewCount: Int { views.withLock { $0.count } }

    // MARK: - HTTP

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/") { _, _ in Self.asset(WebAssets.indexHtml, "text/html; charset=utf-8") }
        router.get("/app.js") { _, _ in Self.asset(WebAssets.appJs, "text/javascript; charset=utf-8") }
        router.get("/app.css") { _, _ in Self.asset(WebAssets.appCss, "text/css; charset=utf-8") }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/api/namespaces") { [upstream] _, _ -> Response in
            do { return Self.json(MapView.json(try await upstream.namespaces())) } catch {
                return Self.problem(.badGateway, "The Hubble server did not list namespaces: \(error).")
            }
        }
        router.get("/api/map") { [self] request, _ -> Response in
            do {
                return Self.json(MapView.json(view(try Self.key(Self.parameters(request))).currentMap()))
            } catch { return Self.problem(.badRequest, "\(error)") }
        }
        router.get("/api/flows") { [self] request, _ -> Response in
            do {
                // jsonpb lines, as `osprey observe --input-file` reads them.
                let rows = view(try Self.key(Self.parameters(request))).currentRows()
                return Response(
                    status: .ok,
                    headers: [
                        .contentType: "application/x-ndjson",
                        .contentDisposition: "attachment; filename=\"flows.json\"",
                    ],
                    body: .init(byteBuffer: ByteBuffer(string: rows.map { $0 + "\n" }.joined())))
            } catch { return Self.problem(.badRequest, "\(error)") }
        }
        router.get("/api/events") { [self] request, _ -> Response in
            let view: MapView
            do { view = self.view(try Self.key(Self.parameters(request))) } catch {
                return Self.problem(.badRequest, "\(error)")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: .init { writer in
                    let (id, events) = view.subscribe()
                    defer { view.unsubscribe(id) }
                    for await event in events {
                        try await writer.write(ByteBuffer(string: event))
                    }
                    try await writer.finish(nil)
                })
        }
        return router
    }

    /// Stops views nobody shows until cancelled.
    public func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            stopIdleViews()
        }
        let all = views.withLock { views -> [MapView] in
            defer { views.removeAll() }
            return Array(views.values)
        }
        for view in all { view.stop() }
    }

    static func parameters(_ request: Request) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for (name, value) in request.uri.queryParameters { result[String(name), default: []].append(String(value)) }
        return result
    }

    static func asset(_ bytes: [UInt8], _ type: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: type, .cacheControl: "no-cache",
                // Only what the page itself serves: no inline script, no third party.
                .contentSecurityPolicy:
                    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'",
                .xContentTypeOptions: "nosniff",
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func json(_ text: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func problem(_ status: HTTPResponse.Status, _ sentence: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: sentence + "\n")))
    }
}

extension UIServer {
    /// The UI's HTTP server on `address`, with TLS from the server certificate and key of
    /// `tls` when given (browsers do not present client certificates: the UI asks for none).
    public func application(
        address: HubbleAddress, tls: ServerTLS?
    ) throws -> Application<RouterResponder<BasicRequestContext>> {
        var server = HTTPServerBuilder.http1()
        if let tls {
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificateFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.keyFile, format: .pem)))
            server = try .tls(.http1(), tlsConfiguration: configuration)
        }
        return Application(
            router: router(), server: server,
            configuration: .init(address: address.httpBindAddress, serverName: nil), logger: logger)
    }
}

extension HubbleAddress {
    /// The address as the UI's HTTP server binds it (`:12000` is every interface).
    public var httpBindAddress: BindAddress {
        switch endpoint {
        case .tcp(let host, let port): .hostname(host.isEmpty ? "0.0.0.0" : host, port: port)
        case .unix(let path): .unixDomainSocket(path: path)
        }
    }
}
