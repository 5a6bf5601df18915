import ClusterInventory
import Foundation

/// A lab's inventory together with what is actually running now.
public struct LabStatus: Sendable {
    public enum PodState: Sendable, Equatable, CustomStringConvertible {
        case running(pids: [Int32])
        /// Its network namespace is there but its process is gone.
        case exited
        /// Its network namespace is gone.
        case missing

        public var description: String {
            switch self {
            case .running(let pids): "Running (pid \(pids.map(String.init).joined(separator: ",")))"
            case .exited: "Exited"
            case .missing: "Missing"
            }
        }
    }

    public var inventory: Inventory
    public var inventoryPath: String
    /// State of each pod, in inventory order.
    public var podStates: [PodState]
    /// State of each node's own processes (its agent), in inventory order.
    public var nodeStates: [PodState]

    /// Reads lab `name`'s inventory and checks each pod's namespace and processes.
    public init(name: String, stateRoot: String = LabConfig.defaultStateRoot) throws(LabError) {
        inventory = try LabController().inventory(name: name, stateRoot: stateRoot)
        inventoryPath = LabConfig.stateDirectory(stateRoot: stateRoot, name: name) + "/inventory.json"
        let namespaces = Set(LabController.namespaces(of: name))
        func state(netns: String?, processes: [ProcessRecord]) -> PodState {
            guard let netns, namespaces.contains(netns) else { return .missing }
            let alive = processes.map(\.pid).filter(LabController.isRunning)
            return alive.isEmpty ? .exited : .running(pids: alive)
        }
        podStates = inventory.pods.map { state(netns: $0.netns, processes: $0.processes) }
        nodeStates = inventory.nodes.map { state(netns: $0.netns, processes: $0.processes) }
    }

    public var isHealthy: Bool {
        let running = { (state: PodState) in if case .running = state { true } else { false } }
        return podStates.allSatisfy(running)
            && zip(inventory.nodes, nodeStates).allSatisfy { $0.processes.isEmpty || running($1) }
    }
}
