import Foundation
import HubbleTransport

/// A throwaway certificate authority for a lab, made with openssl: it signs one certificate
/// for every agent (a wildcard over the agents' names), one for the relay, one client
/// certificate (the relay's towards the agents, and the CLI's towards the relay) and one for
/// the lab's Kubernetes API server. Keys are P-256; everything expires after a week and is
/// removed with the lab.
public struct LabCertificates: Sendable {
    public let directory: String
    public let cluster: String
    /// The addresses the Kubernetes API server's certificate is valid for (besides localhost).
    public let apiServerAddresses: [String]

    public init(config: LabConfig) {
        directory = config.tlsDirectory
        cluster = config.name
        apiServerAddresses = [AddressPlan.nodeIPv4(1)]
    }

    public init(directory: String, cluster: String, apiServerAddresses: [String] = []) {
        self.directory = directory
        self.cluster = cluster
        self.apiServerAddresses = apiServerAddresses
    }

    public var caFile: String { "\(directory)/ca.pem" }
    public var agentCertificate: (cert: String, key: String) { pair("agent") }
    public var relayCertificate: (cert: String, key: String) { pair("relay") }
    public var clientCertificate: (cert: String, key: String) { pair("client") }
    public var apiServerCertificate: (cert: String, key: String) { pair("apiserver") }
    /// The name the relay's certificate carries: what `--tls-server-name` must say.
    public var relayServerName: String { HubbleTLSNames.relay(cluster: cluster) }

    func pair(_ name: String) -> (cert: String, key: String) {
        ("\(directory)/\(name).pem", "\(directory)/\(name)-key.pem")
    }

    /// Creates the CA and the four certificates.
    public func create(with host: Host) throws(LabError) {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .fileFailed(path: directory, reason: "\(error)")
        }
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _ = try host.run(
            ["openssl", "req", "-x509"] + curve + [
                "-keyout", "\(directory)/ca-key.pem", "-out", caFile, "-days", "7", "-subj",
                "/CN=osprey lab \(cluster) CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
        let leaves: [(name: String, subject: String, extensions: String)] = [
            (
                "agent", HubbleTLSNames.agentWildcard(cluster: cluster),
                "subjectAltName=DNS:\(HubbleTLSNames.agentWildcard(cluster: cluster))\nextendedKeyUsage=serverAuth"
            ),
            (
                "relay", relayServerName,
                "subjectAltName=DNS:\(relayServerName),DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"
            ),
            ("client", "osprey lab \(cluster) client", "extendedKeyUsage=clientAuth"),
            (
                "apiserver", "kube-apiserver",
                "subjectAltName="
                    + (["DNS:kubernetes", "DNS:kubernetes.default.svc", "DNS:localhost", "IP:127.0.0.1"]
                    + apiServerAddresses.map { "IP:\($0)" }).joined(separator: ",") + "\nextendedKeyUsage=serverAuth"
            ),
        ]
        for leaf in leaves {
            let (cert, key) = pair(leaf.name)
            let extensionsFile = "\(directory)/\(leaf.name).ext"
            do {
                try (leaf.extensions + "\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n").write(
                    toFile: extensionsFile, atomically: true, encoding: .utf8)
            } catch { throw .fileFailed(path: extensionsFile, reason: "\(error)") }
            _ = try host.run(
                ["openssl", "req", "-new"] + curve + [
                    "-keyout", key, "-out", "\(directory)/\(leaf.name).csr", "-subj", "/CN=\(leaf.subject)",
                ])
            _ = try host.run([
                "openssl", "x509", "-req", "-in", "\(directory)/\(leaf.name).csr", "-CA", caFile, "-CAkey",
                "\(directory)/ca-key.pem", "-CAcreateserial", "-out", cert, "-days", "7", "-extfile", extensionsFile,
            ])
        }
    }
}
