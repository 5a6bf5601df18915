import ClusterInventory

/// What a lab pod runs.
public enum PodRole: Sendable, Equatable {
    /// nginx answering every path with `<namespace>/<pod> on <node>`.
    case httpServer(port: UInt16)
    /// dnsmasq answering the cluster's service and pod names, NXDOMAIN for anything else.
    case dnsServer
    /// A shell loop making requests with curl and glibc's resolver, once a second.
    case client(ClientBehavior)
}

/// The traffic a client pod keeps making; each is one scenario an operator looks for.
public enum ClientBehavior: Sendable, Equatable {
    /// HTTP to services by short and namespaced names, and lookups of a name that does not exist.
    case browse(urls: [String], missingName: String)
    /// HTTP to a service whose pods a network policy protects from this client: dropped.
    case blockedByPolicy(url: String)
    /// HTTP to a service port no process listens on: the server's kernel answers with a RST.
    case closedPort(url: String)
    /// Lookups sent to a DNS server that never answers.
    case unansweredDNS(name: String)
}

/// Where a pod's resolver sends queries (Kubernetes `dnsPolicy`).
public enum DNSPolicy: Sendable, Equatable {
    /// The cluster DNS service with the usual search path (`ClusterFirst`).
    case clusterFirst
    /// A fixed nameserver (`dnsPolicy: None` with `dnsConfig.nameservers`).
    case nameserver(String)
}

/// A Deployment of the lab's sample application.
public struct WorkloadSpec: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var labels: [String: String]
    public var replicas: Int
    public var role: PodRole
    public var dns: DNSPolicy

    public var workload: Workload { Workload(kind: "Deployment", name: name) }
}

/// A Service: a VIP on the given ports, load-balanced over the pods its selector picks.
public struct ServiceSpec: Sendable, Equatable {
    public var namespace: String
    public var name: String
    public var selector: [String: String]
    public var ports: [ServicePort]
}

/// A deny rule as a network policy would make it: traffic from pods matching `from` to pods
/// matching `to` on `port` is dropped by nftables on every node.
public struct PolicySpec: Sendable, Equatable {
    public var name: String
    public var from: (namespace: String, labels: [String: String])
    public var to: (namespace: String, labels: [String: String])
    public var port: UInt16

    public static func == (a: PolicySpec, b: PolicySpec) -> Bool {
        a.name == b.name && a.from == b.from && a.to == b.to && a.port == b.port
    }
}

/// The lab's sample cluster: a shop frontend with two replicas, a billing service in another
/// namespace, the cluster DNS, and clients that each produce one kind of traffic.
///
/// Pods are placed round-robin over the nodes in this order, so with two or more nodes the
/// frontend replicas land on different nodes and most client traffic crosses nodes.
public enum Catalog {
    public static let workloads: [WorkloadSpec] = [
        WorkloadSpec(
            namespace: "kube-system", name: "coredns", labels: ["k8s-app": "kube-dns"], replicas: 1,
            role: .dnsServer, dns: .clusterFirst),
        WorkloadSpec(
            namespace: "shop", name: "frontend", labels: ["app": "frontend", "tier": "web"], replicas: 2,
            role: .httpServer(port: 80), dns: .clusterFirst),
        WorkloadSpec(
            namespace: "billing", name: "ledger", labels: ["app": "ledger"], replicas: 1,
            role: .httpServer(port: 80), dns: .clusterFirst),
        WorkloadSpec(
            namespace: "shop", name: "loadgen", labels: ["app": "loadgen"], replicas: 1,
            role: .client(.browse(urls: ["http://frontend/", "http://ledger.billing/"], missingName: "catalog")),
            dns: .clusterFirst),
        WorkloadSpec(
            namespace: "shop", name: "untrusted", labels: ["app": "untrusted"], replicas: 1,
            role: .client(.blockedByPolicy(url: "http://frontend/")), dns: .clusterFirst),
        WorkloadSpec(
            namespace: "shop", name: "checkout", labels: ["app": "checkout"], replicas: 1,
            role: .client(.closedPort(url: "http://ledger.billing:8080/")), dns: .clusterFirst),
        WorkloadSpec(
            namespace: "shop", name: "reporter", labels: ["app": "reporter"], replicas: 1,
            role: .client(.unansweredDNS(name: "ledger.billing.svc.cluster.local")),
            dns: .nameserver(AddressPlan.unreachableDNS)),
    ]

    public static let services: [ServiceSpec] = [
        ServiceSpec(
            namespace: "kube-system", name: "kube-dns", selector: ["k8s-app": "kube-dns"],
            ports: [
                ServicePort(name: "dns", protocol: "UDP", port: 53, targetPort: 53),
                ServicePort(name: "dns-tcp", protocol: "TCP", port: 53, targetPort: 53),
            ]),
        ServiceSpec(
            namespace: "shop", name: "frontend", selector: ["app": "frontend"],
            ports: [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: 80)]),
        ServiceSpec(
            namespace: "billing", name: "ledger", selector: ["app": "ledger"],
            ports: [
                ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: 80),
                // Declared, but the ledger pods listen on nothing there: connections get a RST.
                ServicePort(name: "metrics", protocol: "TCP", port: 8080, targetPort: 8080),
            ]),
    ]

    public static let policies: [PolicySpec] = [
        PolicySpec(
            name: "frontend-deny-untrusted", from: ("shop", ["app": "untrusted"]),
            to: ("shop", ["app": "frontend"]), port: 80)
    ]
}
