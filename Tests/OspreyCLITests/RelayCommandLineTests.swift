import Foundation
import TestSupport
import Testing

/// osprey-relay refusing bad input: one sentence naming the flag, exit status 1, nothing started.
@Suite("osprey-relay: bad input")
struct RelayCommandLineTests {
    @Test(
        "bad addresses, peer lists, TLS files and durations are one sentence",
        arguments: [
            (
                ["--listen-address", "localhost:http"],
                "osprey-relay: --listen-address \"localhost:http\" is not host:port"
            ),
            (
                ["--listen-address", "203.0.113.7:4245"],
                "osprey-relay: Cannot listen on 203.0.113.7:4245: Cannot assign"
            ),
            (["--peers", "node-1=10.0.0.1:99999"], "osprey-relay: --peers entry \"node-1=10.0.0.1:99999\": address"),
            (
                ["--peers", "a=10.0.0.1:4244", "--peers-dns", "agents"],
                "osprey-relay: Use either --peers or --peers-dns"
            ),
            (["--peers-dns", ":4244"], "osprey-relay: --peers-dns \":4244\" is not NAME or NAME:PORT."),
            (
                ["--peer-service", "unix://relative.sock"],
                "osprey-relay: --peer-service \"unix://relative.sock\" must name"
            ),
            (["--tls-relay-server-cert-file", "/nonexistent/osp.pem"], "osprey-relay: TLS needs both"),
            (
                [
                    "--tls-relay-server-cert-file", "/nonexistent/osp.pem", "--tls-relay-server-key-file",
                    "/nonexistent/k",
                ],
                "osprey-relay: TLS file /nonexistent/osp.pem cannot be read"
            ),
            (["--tls-client-cert-file", "/etc/hostname"], "osprey-relay: A client certificate needs both"),
            (
                ["--sort-buffer-drain-timeout", "soon"],
                "osprey-relay: --sort-buffer-drain-timeout \"soon\" is not a duration"
            ),
            (["--sort-buffer-len-max", "0"], "osprey-relay: --sort-buffer-len-max must be at least 1."),
            (["--retry-timeout", "99999999999h"], "osprey-relay: --retry-timeout \"99999999999h\" is not a duration"),
        ])
    func badInput(arguments: [String], message: String) throws {
        let socket =
            "unix://" + FileManager.default.temporaryDirectory.appendingPathComponent("osp-relay-\(UUID()).sock").path
        let result = try OspreyBinary.relay.run(["--listen-address", socket] + arguments)
        #expect(result.status == 1, "\(arguments)")
        #expect(result.stderr.hasPrefix(message), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "one sentence: \(result.stderr)")
    }

    @Test("the CLI's TLS flags are checked before connecting")
    func cliTLSFlags() throws {
        let result = try OspreyBinary.cli.run(["status", "--tls-client-cert-file", "/etc/hostname"])
        #expect(result.status != 0)
        #expect(
            result.stderr.contains("A client certificate needs both --tls-client-cert-file and --tls-client-key-file"))
        let missing = try OspreyBinary.cli.run(["status", "--tls-ca-cert-files", "/nonexistent/ca.pem"])
        #expect(missing.stderr.contains("TLS file /nonexistent/ca.pem cannot be read"))
    }
}
