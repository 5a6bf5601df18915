import ArgumentParser
import Foundation
import HubbleTransport
import KubernetesAPIServer
import Logging
import ServiceLifecycle
import WebUI

extension LabCommand {
    /// `osprey lab serve-api`: the lab's Kubernetes API server (`osprey lab up` starts it on the
    /// first node). Serves the lab's inventory as Kubernetes objects, following the file.
    struct ServeAPI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve-api",
            abstract: "Serve a lab's objects through a Kubernetes API (started by `osprey lab up`).",
            shouldDisplay: false)

        @Option(help: "The lab's inventory file, followed as it changes.")
        var inventory: String

        @Option(name: .customLong("listen-address"), help: "host:port or unix://path (repeatable).")
        var listenAddresses: [String] = [":\(6443)"]

        @Option(help: "The server's TLS certificate (PEM).")
        var tlsCertFile: String

        @Option(help: "Its private key (PEM).")
        var tlsKeyFile: String

        @Option(help: "File of accepted bearer tokens, one per line (re-read on every request).")
        var tokenFile: String

        @Option(help: "Seconds between watch bookmarks.")
        var bookmarkSeconds: Int = 10

        @Option(
            help:
                "Where to serve kube-state-metrics' kube_node_info and kube_pod_info on plain HTTP (host:port; empty: nowhere)."
        )
        var stateMetricsAddress: String = ""

        func run() async throws {
            try await reportingErrors {
                guard FileManager.default.isReadableFile(atPath: inventory) else {
                    throw ValidationError("Cannot read the inventory \(inventory); is the lab up?")
                }
                guard FileManager.default.isReadableFile(atPath: tokenFile) else {
                    throw ValidationError("Cannot read the token file \(tokenFile).")
                }
                let logger = Logger(label: "osprey-lab-apiserver")
                let tokenFile = tokenFile
                let server = KubeAPIServer(
                    tokens: {
                        let text = (try? String(contentsOfFile: tokenFile, encoding: .utf8)) ?? ""
                        return Set(text.split(whereSeparator: \.isNewline).map(String.init))
                    }, logger: logger)
                var services: [any Service] = []
                for text in listenAddresses {
                    let address = try HubbleAddress(parsing: text, defaultPort: 6443)
                    if case .unix(let path) = address.endpoint { unlink(path) }
                    services.append(
                        try server.application(
                            address: address.httpBindAddress, certificateFile: tlsCertFile, keyFile: tlsKeyFile))
                }
                if !stateMetricsAddress.isEmpty {
                    let address = try HubbleAddress(parsing: stateMetricsAddress, defaultPort: 8080)
                    services.append(server.stateMetricsApplication(address: address.httpBindAddress))
                }
                services.append(
                    Background { [inventory, bookmarkSeconds] in
                        async let followed: Void = server.follow(inventoryPath: inventory)
                        async let bookmarks: Void = server.run(bookmarkInterval: .seconds(bookmarkSeconds))
                        _ = await (followed, bookmarks)
                    })
                let group = ServiceGroup(
                    configuration: .init(
                        services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            }
        }
    }
}

/// Work that runs until the service group shuts down.
private struct Background: Service {
    let body: @Sendable () async -> Void

    init(_ body: @escaping @Sendable () async -> Void) { self.body = body }

    func run() async throws { await cancelWhenGracefulShutdown { await body() } }
}
