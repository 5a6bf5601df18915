import ClusterInventory
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import KubernetesModel
import Locking
import Logging
import NIOCore
import NIOSSL
import PrometheusExposition

/// A Kubernetes API endpoint for a lab: the read side of the real protocol, enough for kubectl
/// and for any list-and-watch client such as Osprey's agent.
///
/// It serves discovery (`/version`, `/api`, `/apis`, resource lists), JSON lists with `limit`
/// and `continue`, watches with resourceVersions, bookmarks and `410 Gone`, the `Table` form
/// kubectl asks for, and bearer-token authentication. It is read-only: the lab (or a test)
/// changes the objects through `apply(_:)`, `upsert`, `delete`. Tests can make it misbehave as
/// real servers do: forbid a resource, hang, end every watch, compact its history.
public final class KubeAPIServer: Sendable {
    /// The Kubernetes release it claims to be (kubectl's dispatcher picks its own release from it).
    public static let version = (major: "1", minor: "32", gitVersion: "v1.32.4")

    let store: ObjectStore
    let tokens: @Sendable () -> Set<String>
    let logger: Logger
    private let faults = Lock(Faults())
    /// What `apply` served last (for the kube-state-metrics stand-in).
    private let applied = Lock(ClusterObjects())

    struct Faults {
        var forbidden: Set<String> = []
        var hanging = false
    }

    /// - Parameters:
    ///   - tokens: the bearer tokens accepted now (asked on every request, so they can rotate).
    ///   - historyLimit: changes kept for watches that resume; older resourceVersions get 410.
    public init(
        tokens: @escaping @Sendable () -> Set<String>, historyLimit: Int = 50_000,
        logger: Logger = Logger(label: "osprey-kube-api")
    ) {
        self.tokens = tokens
        self.store = ObjectStore(historyLimit: historyLimit)
        self.logger = logger
    }

    // MARK: - Changing what it serves

    /// Serves exactly these objects from now on; watchers see the differences.
    public func apply(_ objects: ClusterObjects) {
        applied.withLock { $0 = objects }
        store.replace(.namespaces, with: objects.namespaces)
        store.replace(.nodes, with: objects.nodes)
        store.replace(.deployments, with: objects.deployments)
        store.replace(.replicaSets, with: objects.replicaSets)
        store.replace(.pods, with: objects.pods)
        store.replace(.services, with: objects.services)
        store.replace(.endpointSlices, with: objects.endpointSlices)
    }

    public func upsert(_ pod: KubernetesModel.Pod) { store.upsert(.pods, pod) }
    public func upsert(_ service: KubernetesModel.Service) { store.upsert(.services, service) }
    public func upsert(_ slice: EndpointSlice) { store.upsert(.endpointSlices, slice) }
    public func upsert(_ node: KubernetesModel.Node) { store.upsert(.nodes, node) }
    public func upsert(_ namespace: Namespace) { store.upsert(.namespaces, namespace) }

    /// Deletes an object by resource name (`pods`, `services`, …) and key (`namespace/name`, or the name).
    @discardableResult
    public func delete(resource: String, key: String) -> Bool {
        guard let resource = Resource.all.first(where: { $0.name == resource }) else { return false }
        return store.delete(resource, key: key)
    }

    /// The current resourceVersion.
    public var resourceVersion: Int { store.revision }
    /// Open watch streams.
    public var watchCount: Int { store.watchCount }

    // MARK: - Faults, for tests

    /// Answers 403 Forbidden for these resources (`pods`, …), as RBAC would.
    public func forbid(_ resources: Set<String>) { faults.withLock { $0.forbidden = resources } }
    /// While true, requests get no answer at all.
    public func hang(_ on: Bool) { faults.withLock { $0.hanging = on } }
    /// Ends every watch stream mid-flight.
    public func endAllWatches() { store.endAllWatches() }
    /// Forgets the change history: watches resuming from before now get 410 Gone.
    public func compact() { store.compact() }

    // MARK: - Serving

    /// Sends a bookmark to every watch that asked for them, every `bookmarkInterval`, until cancelled.
    public func run(bookmarkInterval: Duration = .seconds(60)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: bookmarkInterval)
            store.sendBookmarks()
        }
    }

    /// An HTTP(S) application serving the API on `address` (TLS when a certificate and key are
    /// given), on `eventLoopGroup` (a process that also carries other busy NIO servers, as the
    /// test suites do, gives it threads of its own so TLS handshakes never wait behind them).
    public func application(
        address: BindAddress, certificateFile: String?, keyFile: String?,
        eventLoopGroup: EventLoopGroupProvider = .singleton,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        var server = HTTPServerBuilder.http1()
        if let certificateFile, let keyFile {
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)))
            server = try .tls(.http1(), tlsConfiguration: configuration)
        }
        return Application(
            router: router(), server: server, configuration: .init(address: address, serverName: nil),
            onServerRunning: onServerRunning, eventLoopGroupProvider: eventLoopGroup, logger: logger)
    }

    /// Plain HTTP on `address` with `/metrics` as kube-state-metrics would serve it for the
    /// objects `apply` gave (see `KubeStateMetrics`).
    public func stateMetricsApplication(address: BindAddress) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { [self] _, _ -> Response in
            let text = PrometheusText.render(KubeStateMetrics.families(applied.withLock { $0 }), commonLabels: [])
            return Response(
                status: .ok, headers: [.contentType: PrometheusText.contentType],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return Application(router: router, configuration: .init(address: address, serverName: nil), logger: logger)
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("**") { [self] request, _ -> Response in await handle(request) }
        return router
    }

    func handle(_ request: Request) async -> Response {
        while faults.withLock({ $0.hanging }) {
            do { try await Task.sleep(for: .milliseconds(50)) } catch { break }
        }
        guard authorized(request) else {
            return Self.status(APIStatus(code: 401, reason: "Unauthorized", message: "Unauthorized"))
        }
        let path = request.uri.path
        let parts = path.split(separator: "/").map(String.init)
        switch parts {
        case ["version"]: return Self.json(Self.versionInfo)
        case ["api"]:
            return Self.json(#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}"#)
        case ["apis"]: return Self.json(Self.groupList)
        case ["api", "v1"]: return Self.json(Self.resourceList(group: "", version: "v1"))
        case ["healthz"], ["readyz"], ["livez"]:
            return Response(
                status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: .init(string: "ok")))
        default: break
        }
        if parts.count == 3, parts[0] == "apis",
            Resource.all.contains(where: { $0.group == parts[1] && $0.version == parts[2] })
        {
            return Self.json(Self.resourceList(group: parts[1], version: parts[2]))
        }
        guard let target = Target(parts) else {
            return Self.status(
                APIStatus(code: 404, reason: "NotFound", message: "the server could not find the requested resource"))
        }
        let query = Query(request)
        let verb = target.name != nil ? "get" : query.watch ? "watch" : "list"
        if faults.withLock({ $0.forbidden.contains(target.resource.name) }) {
            let scope = target.namespace.map { "in the namespace \"\($0)\"" } ?? "at the cluster scope"
            return Self.status(
                APIStatus(
                    code: 403, reason: "Forbidden",
                    message:
                        "\(target.resource.name) is forbidden: User \"system:serviceaccount:osprey:osprey-agent\" cannot \(verb) resource \"\(target.resource.name)\" in API group \"\(target.resource.group)\" \(scope)"
                ))
        }
        let table = Self.wantsTable(request)
        if let name = target.name {
            let key = target.namespace.map { "\($0)/\(name)" } ?? name
            guard let stored = store.get(target.resource, key: key) else {
                return Self.status(
                    APIStatus(
                        code: 404, reason: "NotFound", message: "\(target.resource.name) \"\(name)\" not found"))
            }
            return table
                ? Self.json(Tables.table(target.resource, rows: [stored], revision: stored.revision, columns: true))
                : Self.json(stored.json)
        }
        if query.watch { return watch(target, query, table: table) }
        return list(target, query, table: table)
    }

    func authorized(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        return tokens().contains(String(header.dropFirst("Bearer ".count)))
    }

    // MARK: - List

    func list(_ target: Target, _ query: Query, table: Bool) -> Response {
        var after: String?
        var listRevision: Int?
        if let token = query.continueToken {
            guard let position = ContinueToken(token) else {
                return Self.status(
                    APIStatus(code: 400, reason: "BadRequest", message: "continue key is not valid: \(token)"))
            }
            if store.isCompacted(position.revision) {
                return Self.status(
                    APIStatus(
                        code: 410, reason: "Expired",
                        message:
                            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
                    ))
            }
            after = position.after
            listRevision = position.revision
        }
        let page = store.list(target.resource, namespace: target.namespace, after: after, limit: query.limit)
        let objects = page.objects
        // Every page of a list carries the first page's revision, as the API's continue tokens do.
        let revision = listRevision ?? page.revision
        let next =
            page.more && !objects.isEmpty
            ? ContinueToken(revision: revision, after: objects[objects.count - 1].key).text : nil
        if table {
            return Self.json(
                Tables.table(target.resource, rows: objects, revision: revision, columns: true, next: next))
        }
        var body = ByteBuffer()
        body.writeString(
            #"{"kind":"\#(target.resource.listKind)","apiVersion":"\#(target.resource.groupVersion)","metadata":{"resourceVersion":"\#(revision)""#
        )
        if let next { body.writeString(#","continue":"\#(next)""#) }
        body.writeString(#"},"items":["#)
        for (index, object) in objects.enumerated() {
            if index > 0 { body.writeString(",") }
            body.writeBytes(object.json)
        }
        body.writeString("]}")
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }

    // MARK: - Watch

    func watch(_ target: Target, _ query: Query, table: Bool) -> Response {
        let from: Int?
        if let text = query.resourceVersion, text != "", text != "0" {
            guard let number = Int(text) else {
                return Self.status(
                    APIStatus(code: 400, reason: "BadRequest", message: "resourceVersion \(text) is not valid"))
            }
            from = number
        } else {
            from = nil
        }
        let start = store.watch(target.resource, namespace: target.namespace, from: from, bookmarks: query.bookmarks)
        let resource = target.resource
        let timeout = query.timeoutSeconds
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
            body: .init { [store] writer in
                guard case .stream(let id, let initial, let stream) = start else {
                    // As kube-apiserver: a 200 stream whose only event says 410.
                    let gone = APIStatus(
                        code: 410, reason: "Expired", message: "too old resource version: \(from ?? 0)")
                    let event = WatchEvent(type: .error, object: gone)
                    var line = ByteBuffer(bytes: (try? ObjectStore.encoder().encode(event)) ?? Data())
                    line.writeString("\n")
                    try await writer.write(line)
                    try await writer.finish(nil)
                    return
                }
                let ender = timeout.map { seconds in
                    Task {
                        try await Task.sleep(for: .seconds(seconds))
                        store.endWatch(id)
                    }
                }
                defer {
                    ender?.cancel()
                    store.endWatch(id)
                }
                var first = true
                func line(_ change: ObjectStore.Change) -> ByteBuffer {
                    var buffer = ByteBuffer()
                    buffer.writeString(#"{"type":"\#(change.type.rawValue)","object":"#)
                    if table {
                        buffer.writeString(
                            Tables.table(
                                resource, rows: [change.object], revision: change.object.revision, columns: first))
                        first = false
                    } else {
                        buffer.writeBytes(change.object.json)
                    }
                    buffer.writeString("}\n")
                    return buffer
                }
                for change in initial { try await writer.write(line(change)) }
                for await delivery in stream {
                    switch delivery {
                    case .change(let change): try await writer.write(line(change))
                    case .bookmark(let revision):
                        let kind = table ? "Table" : resource.kind
                        let apiVersion = table ? "meta.k8s.io/v1" : resource.groupVersion
                        try await writer.write(
                            ByteBuffer(
                                string:
                                    #"{"type":"BOOKMARK","object":{"kind":"\#(kind)","apiVersion":"\#(apiVersion)","metadata":{"resourceVersion":"\#(revision)"}}}"#
                                    + "\n"))
                    }
                }
                try await writer.finish(nil)
            })
    }

    // MARK: - Helpers

    /// `/api/v1/[namespaces/NS/]RESOURCE[/NAME]` or `/apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME]`.
    struct Target {
        var resource: Resource
        var namespace: String?
        var name: String?

        init?(_ parts: [String]) {
            var rest: ArraySlice<String>
            let group: String
            let version: String
            if parts.first == "api", parts.count >= 3 {
                (group, version, rest) = ("", parts[1], parts[2...])
            } else if parts.first == "apis", parts.count >= 4 {
                (group, version, rest) = (parts[1], parts[2], parts[3...])
            } else {
                return nil
            }
            // `namespaces/NS/pods` is a namespaced collection; `namespaces` and `namespaces/NS` the namespaces.
            if rest.first == "namespaces", rest.count >= 3 {
                namespace = rest[rest.startIndex + 1]
                rest = rest.dropFirst(2)
            }
            guard let resourceName = rest.first,
                let resource = Resource.find(group: group, version: version, name: resourceName), rest.count <= 2
            else { return nil }
            if namespace != nil && !resource.namespaced { return nil }
            self.resource = resource
            name = rest.count == 2 ? rest.last : nil
            if name != nil && resource.namespaced && namespace == nil { return nil }
        }
    }

    struct Query {
        var watch = false
        var resourceVersion: String?
        var bookmarks = false
        var limit: Int?
        var continueToken: String?
        var timeoutSeconds: Int?

        init(_ request: Request) {
            for (name, value) in request.uri.queryParameters {
                let value = String(value).removingPercentEncoding ?? String(value)
                switch name {
                case "watch": watch = value == "true" || value == "1"
                case "resourceVersion": resourceVersion = value
                case "allowWatchBookmarks": bookmarks = value == "true" || value == "1"
                case "limit": limit = Int(value)
                case "continue": continueToken = value.isEmpty ? nil : value
                case "timeoutSeconds": timeoutSeconds = Int(value)
                default: break
                }
            }
        }
    }

    /// A list's position: the revision of the first page and the last key sent.
    struct ContinueToken {
        var revision: Int
        var after: String

        init(revision: Int, after: String) {
            self.revision = revision
            self.after = after
        }

        init?(_ text: String) {
            guard let data = Data(base64Encoded: text), let decoded = String(data: data, encoding: .utf8),
                let colon = decoded.firstIndex(of: ":"), let revision = Int(decoded[..<colon])
            else { return nil }
            self.revision = revision
            after = String(decoded[decoded.index(after: colon)...])
        }

        var text: String { Data("\(revision):\(after)".utf8).base64EncodedString() }
    }

    /// kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` (then plain JSON).
    static func wantsTable(_ request: Request) -> Bool {
        (request.headers[.accept] ?? "").split(separator: ",").first?.contains("as=Table") ?? false
    }

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(string: text)))
    }

    static func json(_ bytes: [UInt8]) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: bytes)))
    }

    static func status(_ status: APIStatus) -> Response {
        Response(
            status: .init(code: status.code ?? 500), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: .init(bytes: (try? ObjectStore.encoder().encode(status)) ?? Data())))
    }

    static var versionInfo: String {
        #"{"major":"\#(version.major)","minor":"\#(version.minor)","gitVersion":"\#(version.gitVersion)","gitCommit":"osprey-lab","gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.23","compiler":"gc","platform":"linux/amd64"}"#
    }

    static var groupList: String {
        let groups = Set(Resource.all.map(\.group)).subtracting([""]).sorted()
        let entries = groups.map { group in
            #"{"name":"\#(group)","versions":[{"groupVersion":"\#(group)/v1","version":"v1"}],"preferredVersion":{"groupVersion":"\#(group)/v1","version":"v1"}}"#
        }
        return #"{"kind":"APIGroupList","apiVersion":"v1","groups":[\#(entries.joined(separator: ","))]}"#
    }

    static func resourceList(group: String, version: String) -> String {
        let resources = Resource.all.filter { $0.group == group && $0.version == version }.map { resource in
            let shortNames = resource.shortNames.map { "\"\($0)\"" }.joined(separator: ",")
            return
                #"{"name":"\#(resource.name)","singularName":"\#(resource.singular)","namespaced":\#(resource.namespaced),"kind":"\#(resource.kind)","verbs":["get","list","watch"],"shortNames":[\#(shortNames)],"categories":["all"]}"#
        }
        let groupVersion = group.isEmpty ? version : "\(group)/\(version)"
        return
            #"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"\#(groupVersion)","resources":[\#(resources.joined(separator: ","))]}"#
    }
}

/// Tables (meta.k8s.io/v1) as kube-apiserver serves them to kubectl.
enum Tables {
    static func table(
        _ resource: Resource, rows: [ObjectStore.Stored], revision: Int, columns: Bool, next: String? = nil,
        now: Date = Date()
    ) -> String {
        var out = #"{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"\#(revision)""#
        if let next { out += #","continue":"\#(next)""# }
        out += "}"
        if columns {
            let definitions = resource.columns.map { column in
                #"{"name":"\#(column.name)","type":"\#(column.type)","format":"\#(column.format)","description":\#(quoted(column.description)),"priority":\#(column.priority)}"#
            }
            out += #","columnDefinitions":[\#(definitions.joined(separator: ","))]"#
        }
        out += #","rows":["#
        for (index, row) in rows.enumerated() {
            if index > 0 { out += "," }
            let cells = row.cells.map { cell -> String in
                switch cell {
                case .text(let text): quoted(text)
                case .number(let number): String(number)
                case .age(let date): quoted(Age.text(since: date, now: now))
                }
            }
            out +=
                #"{"cells":[\#(cells.joined(separator: ","))],"object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":\#(String(decoding: row.metadata, as: UTF8.self))}}"#
        }
        return out + "]}"
    }

    static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

extension KubeAPIServer {
    /// Serves the objects of an inventory file, and its changes as they are written (the lab
    /// rewrites it when pods come and go), checking it every `interval` until cancelled.
    public func follow(inventoryPath: String, interval: Duration = .milliseconds(100)) async {
        var applied: Date?
        while !Task.isCancelled {
            let modified =
                (try? FileManager.default.attributesOfItem(atPath: inventoryPath)[.modificationDate]) as? Date
            if let modified, modified != applied, let inventory = try? Inventory.load(from: inventoryPath) {
                apply(ClusterObjects(inventory: inventory))
                applied = modified
            }
            try? await Task.sleep(for: interval)
        }
    }
}
