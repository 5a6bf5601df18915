import Foundation
import Yams

/// How to reach a Kubernetes API server and who to be there: from a kubeconfig (its current
/// context) or from inside a pod (the service account), as client-go finds them.
public struct ClusterAccess: Sendable, Equatable {
    /// `https://host:port`, without a trailing slash.
    public var server: String
    /// PEM of the CAs the server's certificate must chain to; nil: the system's roots.
    public var certificateAuthority: [UInt8]?
    public var insecureSkipTLSVerify = false
    public var credential: Credential = .none
    public var clientCertificate: [UInt8]?
    public var clientKey: [UInt8]?
    /// Where this came from, for logs: `kubeconfig /root/.kube/config (context lab)`.
    public var origin: String

    public enum Credential: Sendable, Equatable {
        case none
        case token(String)
        /// A token file re-read as it rotates (projected service account tokens do, hourly).
        case tokenFile(String)
    }

    public init(
        server: String, certificateAuthority: [UInt8]? = nil, credential: Credential = .none,
        clientCertificate: [UInt8]? = nil, clientKey: [UInt8]? = nil, origin: String
    ) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.certificateAuthority = certificateAuthority
        self.credential = credential
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.origin = origin
    }

    /// The service account's files inside a pod.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// True when running in a pod (the API server's address is in the environment).
    public static func inPod(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["KUBERNETES_SERVICE_HOST"] != nil && environment["KUBERNETES_SERVICE_PORT"] != nil
    }

    /// In-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service account's
    /// token (re-read as it rotates) and CA.
    public static func inCluster(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = serviceAccountDirectory
    ) throws(KubernetesConfigError) -> ClusterAccess {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"],
            !host.isEmpty, !port.isEmpty
        else { throw .notInCluster }
        let tokenPath = "\(directory)/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw .unreadable(path: tokenPath, reason: "the pod has no service account token mounted")
        }
        let caPath = "\(directory)/ca.crt"
        guard let ca = FileManager.default.contents(atPath: caPath) else {
            throw .unreadable(path: caPath, reason: "the pod has no service account CA mounted")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return ClusterAccess(
            server: "https://\(hostPart):\(port)", certificateAuthority: [UInt8](ca), credential: .tokenFile(tokenPath),
            origin: "in-cluster service account")
    }

    /// The current context of a kubeconfig file. Relative file names in it are relative to
    /// the file's directory, as kubectl reads them.
    public static func kubeconfig(path: String) throws(KubernetesConfigError) -> ClusterAccess {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(
                path: path,
                reason: FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")
        }
        let config: KubeConfigFile
        do { config = try YAMLDecoder().decode(KubeConfigFile.self, from: data) } catch {
            throw .malformed(path: path, reason: Self.shortReason(error))
        }
        guard let contextName = config.currentContext, !contextName.isEmpty else {
            throw .malformed(path: path, reason: "it has no current-context")
        }
        guard let context = config.contexts?.first(where: { $0.name == contextName })?.context else {
            throw .malformed(path: path, reason: "its current-context \(contextName) is not among its contexts")
        }
        guard let cluster = config.clusters?.first(where: { $0.name == context.cluster })?.cluster else {
            throw .malformed(
                path: path, reason: "context \(contextName) names cluster \(context.cluster), which it does not define")
        }
        guard let server = cluster.server, server.hasPrefix("https://") || server.hasPrefix("http://") else {
            throw .malformed(path: path, reason: "cluster \(context.cluster) has no https:// server address")
        }
        let directory = (path as NSString).deletingLastPathComponent
        func resolve(_ file: String) -> String {
            file.hasPrefix("/") || directory.isEmpty ? file : "\(directory)/\(file)"
        }
        func material(inline: String?, file: String?, what: String) throws(KubernetesConfigError) -> [UInt8]? {
            if let inline {
                guard let decoded = Data(base64Encoded: inline, options: .ignoreUnknownCharacters) else {
                    throw .malformed(path: path, reason: "its \(what)-data is not base64")
                }
                return [UInt8](decoded)
            }
            guard let file else { return nil }
            guard let contents = FileManager.default.contents(atPath: resolve(file)) else {
                throw .malformed(path: path, reason: "its \(what) file \(resolve(file)) cannot be read")
            }
            return [UInt8](contents)
        }
        let user = context.user.flatMap { name in config.users?.first { $0.name == name }?.user }
        var credential = ClusterAccess.Credential.none
        if let token = user?.token, !token.isEmpty {
            credential = .token(token)
        } else if let file = user?.tokenFile, !file.isEmpty {
            guard FileManager.default.isReadableFile(atPath: resolve(file)) else {
                throw .malformed(path: path, reason: "its tokenFile \(resolve(file)) cannot be read")
            }
            credential = .tokenFile(resolve(file))
        }
        var access = ClusterAccess(
            server: server,
            certificateAuthority: try material(
                inline: cluster.certificateAuthorityData, file: cluster.certificateAuthority,
                what: "certificate-authority"),
            credential: credential,
            clientCertificate: try material(
                inline: user?.clientCertificateData, file: user?.clientCertificate, what: "client-certificate"),
            clientKey: try material(inline: user?.clientKeyData, file: user?.clientKey, what: "client-key"),
            origin: "kubeconfig \(path) (context \(contextName))")
        access.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false
        if (access.clientCertificate == nil) != (access.clientKey == nil) {
            throw .malformed(
                path: path,
                reason:
                    "user \(context.user ?? "") has a client certificate without its key, or a key without its certificate"
            )
        }
        return access
    }

    static func shortReason(_ error: any Error) -> String {
        if case DecodingError.keyNotFound(let key, _) = error { return "the field \(key.stringValue) is missing" }
        if case DecodingError.typeMismatch(_, let context) = error {
            return "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type"
        }
        if case DecodingError.dataCorrupted(let context) = error, let underlying = context.underlyingError {
            return "it is not valid YAML (\(firstLine(underlying)))"
        }
        if error is DecodingError { return "it is not a kubeconfig" }
        return "it is not valid YAML (\(firstLine(error)))"
    }

    static func firstLine(_ error: any Error) -> String {
        "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
    }

    /// The bearer token to send now (a token file is read each time: it may have rotated).
    func bearerToken() -> String? {
        switch credential {
        case .none: nil
        case .token(let token): token
        case .tokenFile(let path):
            (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}

/// What is wrong with a Kubernetes configuration, as one sentence naming the file.
public enum KubernetesConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case notInCluster

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "Cannot read the Kubernetes configuration \(path): \(reason); pass a readable kubeconfig with --kubeconfig."
        case .malformed(let path, let reason):
            "The kubeconfig \(path) cannot be used: \(reason); check it with `kubectl --kubeconfig \(path) config view`."
        case .notInCluster:
            "Not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset); pass --kubeconfig, or --metadata inventory."
        }
    }
}

/// A kubeconfig file: the parts a client needs (field names as kubectl writes them).
struct KubeConfigFile: Decodable {
    var currentContext: String?
    var clusters: [Named<Cluster>]?
    var users: [Named<User>]?
    var contexts: [NamedContext]?

    enum CodingKeys: String, CodingKey {
        case currentContext = "current-context"
        case clusters, users, contexts
    }

    struct Named<Value: Decodable>: Decodable {
        var name: String
        var cluster: Value?
        var user: Value?
    }

    struct NamedContext: Decodable {
        var name: String
        var context: Context
    }

    struct Cluster: Decodable {
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        }
    }

    struct User: Decodable {
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        enum CodingKeys: String, CodingKey {
            case token, tokenFile
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
        }
    }

    struct Context: Decodable {
        var cluster: String
        var user: String?
        var namespace: String?
    }
}
