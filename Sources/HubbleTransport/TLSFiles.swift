import Foundation
import GRPCNIOTransportHTTP2Posix

/// A server's TLS: its certificate and key (PEM files) and, for mutual TLS, the CAs whose
/// client certificates it accepts (a client without one is refused during the handshake).
public struct ServerTLS: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String
    public var clientCAFiles: [String]

    /// Nil when no certificate is configured (plaintext); an error when only part of it is.
    public init?(
        certificateFile: String, keyFile: String, clientCAFiles: [String], flagPrefix: String
    ) throws(TLSError) {
        if certificateFile.isEmpty, keyFile.isEmpty {
            guard clientCAFiles.isEmpty else {
                throw TLSError(
                    "--\(flagPrefix)client-ca-files needs --\(flagPrefix)cert-file and --\(flagPrefix)key-file: "
                        + "mutual TLS is TLS with client certificates.")
            }
            return nil
        }
        guard !certificateFile.isEmpty, !keyFile.isEmpty else {
            throw TLSError("TLS needs both --\(flagPrefix)cert-file and --\(flagPrefix)key-file.")
        }
        try TLSError.requireReadable([certificateFile, keyFile] + clientCAFiles)
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFiles = clientCAFiles
    }

    public var mutual: Bool { !clientCAFiles.isEmpty }

    public var transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity {
        let chain: [TLSConfig.CertificateSource] = [.file(path: certificateFile, format: .pem)]
        let key = TLSConfig.PrivateKeySource.file(path: keyFile, format: .pem)
        guard mutual else { return .tls(certificateChain: chain, privateKey: key) }
        return .mTLS(certificateChain: chain, privateKey: key) { config in
            config.clientCertificateVerification = .noHostnameVerification
            config.trustRoots = .certificates(clientCAFiles.map { .file(path: $0, format: .pem) })
        }
    }
}

/// A client's TLS: the CAs it trusts for the server (none: the system's), its own certificate
/// for mutual TLS, the name the server's certificate must carry.
public struct ClientTLS: Sendable, Equatable {
    public var caFiles: [String]
    public var certificateFile: String?
    public var keyFile: String?
    public var serverName: String?
    /// Skip verifying the server's certificate (testing only; hubble's --tls-allow-insecure).
    public var allowInsecure: Bool

    public init(
        caFiles: [String] = [], certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil,
        allowInsecure: Bool = false, flagPrefix: String
    ) throws(TLSError) {
        guard (certificateFile ?? "").isEmpty == (keyFile ?? "").isEmpty else {
            throw TLSError("A client certificate needs both --\(flagPrefix)cert-file and --\(flagPrefix)key-file.")
        }
        self.caFiles = caFiles
        self.certificateFile = (certificateFile ?? "").isEmpty ? nil : certificateFile
        self.keyFile = (keyFile ?? "").isEmpty ? nil : keyFile
        self.serverName = (serverName ?? "").isEmpty ? nil : serverName
        self.allowInsecure = allowInsecure
        try TLSError.requireReadable(caFiles + [self.certificateFile, self.keyFile].compactMap { $0 })
    }

    /// The system's CAs, no client certificate: what `tls://` alone asks for.
    public static let systemTrust = ClientTLS(uncheckedCAFiles: [])

    private init(uncheckedCAFiles caFiles: [String]) {
        self.caFiles = caFiles
        allowInsecure = false
    }

    /// The same client settings verifying a different server name (each agent has its own).
    public func verifying(serverName: String?) -> ClientTLS {
        var copy = self
        if let serverName, !serverName.isEmpty { copy.serverName = serverName }
        return copy
    }

    public var transportSecurity: HTTP2ClientTransport.Posix.TransportSecurity {
        .tls { config in
            if let certificateFile, let keyFile {
                config.certificateChain = [.file(path: certificateFile, format: .pem)]
                config.privateKey = .file(path: keyFile, format: .pem)
            }
            if !caFiles.isEmpty { config.trustRoots = .certificates(caFiles.map { .file(path: $0, format: .pem) }) }
            config.serverCertificateVerification = allowInsecure ? .noVerification : .fullVerification
        }
    }
}

/// A TLS setting that cannot work, in one sentence.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    static func requireReadable(_ paths: [String]) throws(TLSError) {
        for path in paths where !FileManager.default.isReadableFile(atPath: path) {
            throw TLSError("TLS file \(path) cannot be read; check the path and its permissions.")
        }
    }
}

/// The names Osprey's certificates carry, so the relay knows which name each agent must prove.
public enum HubbleTLSNames {
    /// An agent's: `<node>.<cluster>.hubble-grpc.osprey.local` (dots in either become dashes).
    public static func agent(node: String, cluster: String) -> String {
        "\(label(node)).\(label(cluster)).hubble-grpc.osprey.local"
    }

    /// Every agent of a cluster, for a wildcard certificate.
    public static func agentWildcard(cluster: String) -> String { "*.\(label(cluster)).hubble-grpc.osprey.local" }

    /// The relay's: `relay.<cluster>.hubble-relay.osprey.local`.
    public static func relay(cluster: String) -> String { "relay.\(label(cluster)).hubble-relay.osprey.local" }

    static func label(_ text: String) -> String { text.replacingOccurrences(of: ".", with: "-") }
}
