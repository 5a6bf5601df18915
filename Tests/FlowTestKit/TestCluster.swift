import ClusterInventory
import Enricher
import Foundation

/// Small clusters held in memory: the metadata source a stage test or the bench enriches with,
/// no files and no root.
public enum TestCluster {
    public static let start = Date(timeIntervalSince1970: 1_800_000_000)

    /// A pod of a Deployment named after its app.
    public static func pod(
        _ name: String, _ ips: [String], app: String, node: String = "osp-node-1", namespace: String = "shop",
        created: Date = TestCluster.start, uid: String? = nil
    ) -> Pod {
        Pod(
            uid: uid ?? "uid-\(name)", namespace: namespace, name: name, node: node, ips: ips, labels: ["app": app],
            workload: Workload(kind: "Deployment", name: app), createdAt: created, netns: nil, hostInterface: nil)
    }

    /// The inventory's metadata, in memory.
    public static func metadata(
        cluster: String = "osp", nodes: [Node] = [], pods: [Pod], services: [Service] = []
    ) -> InventoryMetadata {
        InventoryMetadata(
            inventory: Inventory(cluster: cluster, topology: "bridge", nodes: nodes, pods: pods, services: services))
    }
}
