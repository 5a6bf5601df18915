import ClusterInventory
import Foundation
import Lab

/// How lab state is shown to people: `kubectl get`-style tables and next steps.
enum LabReport {
    static func render(_ status: LabStatus) -> String {
        let inventory = status.inventory
        let nodes = TextTable(
            header: ["NODE", "INTERNAL-IP", "POD-CIDR", "PODS", "PROCESSES"],
            rows: zip(inventory.nodes, status.nodeStates).map { node, state in
                [
                    node.name, node.internalIPs.joined(separator: ","), node.podCIDRs.joined(separator: ","),
                    String(inventory.pods.filter { $0.node == node.name }.count),
                    node.processes.isEmpty
                        ? "-" : "\(node.processes.map(\.command).joined(separator: ", ")): \(state.description)",
                ]
            })
        let pods = TextTable(
            header: ["NAMESPACE", "POD", "NODE", "IPS", "WORKLOAD", "LABELS", "STATUS"],
            rows: zip(inventory.pods, status.podStates).map { pod, state in
                [
                    pod.namespace, pod.name, pod.node, pod.ips.joined(separator: ","),
                    pod.workload?.description ?? "-",
                    pod.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                    state.description,
                ]
            })
        let services = TextTable(
            header: ["NAMESPACE", "SERVICE", "CLUSTER-IP", "PORTS", "ENDPOINTS"],
            rows: inventory.services.map { service in
                [
                    service.namespace, service.name, service.clusterIP,
                    service.ports.map { "\($0.port)/\($0.protocol)" }.joined(separator: ","),
                    service.endpoints.joined(separator: ","),
                ]
            })
        return """
            Lab '\(inventory.cluster)' (\(inventory.topology) topology) — inventory: \(status.inventoryPath)

            \(nodes.render())
            \(pods.render())
            \(services.render())
            """
    }

    /// What to type next to look at the lab.
    static func hints(_ inventory: Inventory, config: LabConfig? = nil) -> String {
        let loadgen = inventory.pods.first { $0.workload?.name == "loadgen" }
        let node = inventory.nodes.first
        var lines = ["Look around:"]
        if let netns = loadgen?.netns {
            lines.append(
                "  ip netns exec \(netns) curl -s http://frontend.shop.svc.cluster.local/   # a pod calling a service")
        }
        if let netns = node?.netns {
            lines.append(
                "  ip netns exec \(netns) nft list ruleset                  # service DNAT and the policy drop")
            lines.append("  ip netns exec \(netns) ip -br addr                       # the node's uplink and pod veths")
        }
        // The command as it was run (e.g. .build/debug/osprey), so the hint works where osprey is not on PATH.
        let osprey = CommandLine.arguments.first ?? "osprey"
        if let config, config.apiServerPath != nil, config.apiServerHostPort != nil {
            lines.append(
                "  kubectl --kubeconfig \(config.kubeconfigPath) get pods -A -o wide   # the lab's Kubernetes API")
        }
        lines.append("  \(osprey) lab status --name \(inventory.cluster)")
        lines.append("  \(osprey) lab down --name \(inventory.cluster)")
        let agents = inventory.nodes.filter { !$0.processes.isEmpty }
        if !agents.isEmpty {
            lines.append("Agent metrics (reachable from the lab's namespaces; the host's network is not joined):")
            for node in agents {
                guard let netns = node.netns, let address = node.internalIPs.first else { continue }
                let port = LabConfig.agentMetricsPort
                lines.append(
                    "  http://\(address):\(port)/metrics   ip netns exec \(netns) curl -s localhost:\(port)/metrics")
            }
            if let node = inventory.nodes.first(where: { $0.processes.contains { $0.command == "prometheus" } }),
                let netns = node.netns, let address = node.internalIPs.first
            {
                let port = LabConfig.prometheusPort
                lines.append("Prometheus (scraping every agent every 5 s, Osprey's alerting rules loaded):")
                if let hostPort = config?.prometheusHostPort {
                    lines.append("  http://127.0.0.1:\(hostPort)/   from this machine")
                }
                lines.append(
                    "  http://\(address):\(port)/   ip netns exec \(netns) curl -s 'localhost:\(port)/api/v1/alerts'")
                lines.append(
                    "  ip netns exec \(netns) curl -s 'localhost:\(port)/api/v1/query' --data-urlencode "
                        + "'query=sum by (reason) (rate(hubble_drop_total[1m]))'")
            }
            if let config, config.relayPath != nil {
                var flags = config.relayPort == LabConfig.relayPort ? "" : " --server unix://\(config.relaySocketPath)"
                if config.tls {
                    let certificates = LabCertificates(config: config)
                    if flags.isEmpty { flags = " --server localhost:\(LabConfig.relayPort)" }
                    flags +=
                        " --tls-ca-cert-files \(certificates.caFile) --tls-client-cert-file \(certificates.clientCertificate.cert)"
                        + " --tls-client-key-file \(certificates.clientCertificate.key) --tls-server-name \(certificates.relayServerName)"
                }
                if let port = config.uiPort {
                    lines.append("The web UI (service map and live flows) through osprey-relay:")
                    lines.append(
                        "  http://127.0.0.1:\(port)/   (all namespaces; http://127.0.0.1:\(port)/?namespace=shop)")
                } else {
                    lines.append("The web UI: osprey-relay serves it on \(config.uiSocketPath)")
                }
                lines.append("Every node's flows through osprey-relay (hubble observe's flags and formats):")
                lines.append("  \(osprey) observe\(flags) --last 20")
                lines.append("  \(osprey) observe\(flags) --namespace shop --verdict DROPPED -f")
                lines.append("  \(osprey) status\(flags)")
                lines.append("  \(osprey) list nodes\(flags)")
            }
            if let node = agents.first {
                let directory = LabConfig.nodeDirectory(name: inventory.cluster, node: node.name)
                let server = "--server unix://\(directory)/hubble.sock"
                lines.append("One agent's own Hubble API (hubble observe's flags and formats):")
                lines.append("  \(osprey) observe \(server)")
                lines.append("  \(osprey) observe \(server) --namespace shop --verdict DROPPED")
                lines.append("  \(osprey) observe \(server) --protocol dns -f")
                lines.append("  \(osprey) status \(server)")
                if let netns = node.netns {
                    lines.append(
                        "  ip netns exec \(netns) \(osprey) observe --server localhost:\(LabConfig.hubblePort) -o jsonpb"
                    )
                }
                lines.append("Each agent's flow log (Hubble's exporter format, rotated at 10 MB):")
                lines.append("  \(osprey) observe --input-file \(directory)/flows.log --verdict DROPPED")
                lines.append(
                    "More flow logs, added and removed while it runs: write \(directory)/flowlogs.yaml (Hubble's flowlogs format)."
                )
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// A plain left-aligned table with two spaces between columns, like `kubectl get`.
struct TextTable {
    var header: [String]
    var rows: [[String]]

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
