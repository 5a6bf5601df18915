import HubbleServer
import Observer

extension HubbleServer {
    /// The agent's services: observer.Observer, osprey.v1.FlowBatches (for Osprey's relay),
    /// grpc.health.v1, peer.Peer.
    public static func agent(
        observer: Observer, nodeName: String, clusterName: String, listeners: [Listener],
        peers: @escaping @Sendable () -> [PeerService.Peer]
    ) -> HubbleServer {
        let observerService = ObserverService(observer: observer, nodeName: nodeName, clusterName: clusterName)
        return HubbleServer(
            services: [observerService, observerService.batches, HealthService(), PeerService(peers: peers)],
            listeners: listeners)
    }

}
