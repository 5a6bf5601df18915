import CDatapathABI

/// The names of the interfaces events happen on, each in its own network namespace: an
/// interface index means something only there. The pod programs' events come from the node's
/// namespace (its pod veths); drops come from wherever the kernel freed the packet — the node's
/// bridge or uplink, or a pod's own `eth0` — and name that namespace by its inode.
public struct InterfaceNames: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The node namespace's inode (as the kernel's `ns.inum`, which drop events carry).
    public var nodeNamespace: UInt32
    /// The node namespace's interfaces by index.
    public var node: [Int32: String]
    /// Other namespaces' (pods') interfaces, by the namespace's inode, then by index.
    public var namespaces: [UInt32: [Int32: String]]

    public init(nodeNamespace: UInt32 = 0, node: [Int32: String], namespaces: [UInt32: [Int32: String]] = [:]) {
        self.nodeNamespace = nodeNamespace
        self.node = node
        self.namespaces = namespaces
    }

    /// The node's interfaces only.
    public init(dictionaryLiteral elements: (Int32, String)...) {
        self.init(node: Dictionary(elements) { first, _ in first })
    }

    /// The name of `event`'s interface in the namespace it happened in; nil where that
    /// namespace or index is not known (the flow then gives the index alone, never another
    /// namespace's name for it).
    public func name(of event: UnsafePointer<osp_event>) -> String? {
        let index = Int32(bitPattern: event.pointee.ifindex)
        let namespace = event.pointee.netns
        if namespace == 0 || namespace == nodeNamespace { return node[index] }
        return namespaces[namespace]?[index]
    }
}
