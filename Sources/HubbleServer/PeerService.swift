import GRPCCore
import HubbleAPI

/// `peer.Peer/Notify`: the Hubble servers a relay should connect to. Standalone, that is the
/// agent itself; in the lab, every node of the inventory. Sends PEER_ADDED for each, then
/// holds the stream open (Osprey's peer list changes only when the inventory does).
public struct PeerService: Peer_Peer.SimpleServiceProtocol {
    public struct Peer: Sendable, Equatable {
        public var name: String
        public var address: String
        /// The name the peer's TLS certificate carries; nil when it serves plaintext.
        public var tlsServerName: String?
        public init(name: String, address: String, tlsServerName: String? = nil) {
            self.name = name
            self.address = address
            self.tlsServerName = tlsServerName
        }
    }

    let peers: @Sendable () -> [Peer]

    public init(peers: @escaping @Sendable () -> [Peer]) { self.peers = peers }

    public func notify(
        request: Peer_NotifyRequest, response: RPCWriter<Peer_ChangeNotification>, context: ServerContext
    ) async throws {
        var known: [String: Peer] = [:]
        while !Task.isCancelled {
            let current = Dictionary(peers().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for (name, peer) in current.sorted(by: { $0.key < $1.key }) where known[name] != peer {
                try await response.write(notification(peer, known[name] == nil ? .peerAdded : .peerUpdated))
            }
            for (name, peer) in known.sorted(by: { $0.key < $1.key }) where current[name] == nil {
                try await response.write(notification(peer, .peerDeleted))
            }
            known = current
            try await Task.sleep(for: .seconds(2))
        }
    }

    func notification(_ peer: Peer, _ type: Peer_ChangeNotificationType) -> Peer_ChangeNotification {
        .with {
            $0.name = peer.name
            $0.address = peer.address
            $0.type = type
            if let serverName = peer.tlsServerName { $0.tls = .with { $0.serverName = serverName } }
        }
    }
}
