import HubbleServer
import Observer

extension HubbleServer {
    /// The agent's services: observer.Observer, grpc.health.v1, peer.Peer.
    public static func agent(
        observer: Observer, nodeName: String, clusterName: String, listeners: [Listener],
        peers: @escaping @Sendable () -> [PeerService.Peer]
    ) -> HubbleServer {
        HubbleServer(
            services: [
                ObserverService(observer: observer, nodeName: nodeName, clusterName: clusterName), HealthService(),
                PeerService(peers: peers),
            ],
            listeners: listeners)
    }

}
