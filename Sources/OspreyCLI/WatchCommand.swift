import ArgumentParser
import Foundation
import GRPCCore
import HubbleAPI

/// `osprey watch peers`: the peer service's changes as they happen, like `hubble watch peers`.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch", abstract: "Watch something change, like `hubble watch`.", subcommands: [WatchPeers.self])
}

struct WatchPeers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers", abstract: "Print the peer service's PEER_ADDED, PEER_DELETED and PEER_UPDATED events.",
        aliases: ["peer"])

    @OptionGroup var server: ServerOptions

    func run() async throws {
        try await reportingErrors {
            try await server.withClient { client, _ in
                try await Peer_Peer.Client(wrapping: client).notify(Peer_NotifyRequest()) { response in
                    for try await change in response.messages { ObserveFlows.emit(Self.line(change)) }
                }
            }
        }
    }

    /// hubble's line: the change type padded to 12, the address, the name, the TLS name if any.
    static func line(_ change: Peer_ChangeNotification) -> String {
        let type = change.type.name.padding(toLength: max(12, change.type.name.count), withPad: " ", startingAt: 0)
        let tls = change.hasTls ? " (TLS.ServerName: \(change.tls.serverName))" : ""
        return "\(type) \(change.address) \(change.name)\(tls)"
    }
}
