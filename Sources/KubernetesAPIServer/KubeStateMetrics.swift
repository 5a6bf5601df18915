import KubernetesModel
import PrometheusExposition

/// What kube-state-metrics would say about the served objects: `kube_node_info` and
/// `kube_pod_info` with its label names, the two series dashboards use to list nodes
/// (Retina's Standard DNS `$Nodes`) and a namespace's pods (Hubble's workload dashboard).
/// The lab runs no kube-state-metrics (nothing to install it from); this stands in for it.
public enum KubeStateMetrics {
    public static func families(_ objects: ClusterObjects) -> [MetricFamily] {
        [
            MetricFamily(
                name: "kube_node_info", help: "Information about a cluster node.", kind: .gauge,
                samples: objects.nodes.sorted { $0.metadata.name < $1.metadata.name }.map { node in
                    let info = node.status?.nodeInfo
                    return .init(
                        [
                            ("node", node.metadata.name), ("kernel_version", info?.kernelVersion ?? ""),
                            ("os_image", info?.osImage ?? ""),
                            ("container_runtime_version", info?.containerRuntimeVersion ?? ""),
                            ("kubelet_version", info?.kubeletVersion ?? ""), ("kubeproxy_version", "deprecated"),
                            ("provider_id", ""), ("pod_cidr", node.spec?.podCIDR ?? ""), ("system_uuid", ""),
                            ("internal_ip", node.internalIPs.first ?? ""),
                        ], 1)
                }),
            MetricFamily(
                name: "kube_pod_info", help: "Information about pod.", kind: .gauge,
                samples: objects.pods.sorted {
                    ($0.metadata.namespace ?? "", $0.metadata.name) < ($1.metadata.namespace ?? "", $1.metadata.name)
                }.map { pod in
                    let owner = pod.metadata.ownerReferences?.first { $0.controller == true }
                    return .init(
                        [
                            ("namespace", pod.metadata.namespace ?? ""), ("pod", pod.metadata.name),
                            ("uid", pod.metadata.uid ?? ""), ("host_ip", pod.status?.hostIP ?? ""),
                            ("pod_ip", pod.status?.podIP ?? ""), ("node", pod.spec?.nodeName ?? ""),
                            ("created_by_kind", owner?.kind ?? "<none>"), ("created_by_name", owner?.name ?? "<none>"),
                            ("priority_class", ""), ("host_network", String(pod.spec?.hostNetwork ?? false)),
                        ], 1)
                }),
        ]
    }
}
