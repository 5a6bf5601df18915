/// Names of what a lab creates. Everything starts with the lab name (itself `osp…`), so
/// `ip netns list | grep osp` finds every leftover.
public enum LabNames {
    public static let fabricBridge = "br0"
    public static let nodeBridge = "cbr0"
    public static let nodeUplink = "eth0"
    public static let podInterface = "eth0"
    public static let nftServicesTable = "osp_services"
    public static let nftPolicyTable = "osp_policy"

    public static func nodeName(lab: String, index: Int) -> String { "\(lab)-node-\(index)" }
    /// A node's zone: odd nodes in zone `a`, even ones in `b`, so a two-node lab spans two zones.
    public static func zone(node index: Int) -> String { index % 2 == 1 ? "osp-zone-a" : "osp-zone-b" }
    public static func fabricNamespace(lab: String) -> String { "\(lab)-fabric" }
    /// The fabric-side end of a node's uplink veth.
    public static func fabricPort(node: Int) -> String { "osp-node\(node)" }
    public static func podNamespace(lab: String, namespace: String, pod: String) -> String {
        "\(lab)-\(namespace)-\(pod)"
    }

    /// The node-side end of a pod's veth: `osp` + 11 hex digits of a hash of the pod's
    /// namespace and name (like Calico's `cali…` or Cilium's `lxc…`); fits IFNAMSIZ.
    public static func hostInterface(namespace: String, pod: String) -> String {
        let hex = String(fnv1a64("\(namespace)/\(pod)") >> 20, radix: 16)  // 44 bits: 11 digits
        return "osp" + String(repeating: "0", count: 11 - hex.count) + hex
    }

    /// Kubernetes' alphabet for generated name suffixes (no vowels, no look-alikes).
    static let suffixAlphabet = Array("bcdfghjklmnpqrstvwxz2456789")

    /// A Deployment's pod name as Kubernetes makes it: `<deployment>-<template hash>-<suffix>`,
    /// e.g. `frontend-7c9b5d8f4x-k2v9q`. Deterministic for a given lab, so reruns look alike.
    /// A replica created again (`incarnation` > 0, after `lab scale`) gets a new suffix.
    public static func deploymentPodName(
        lab: String, namespace: String, deployment: String, replica: Int, incarnation: Int = 0
    )
        -> String
    {
        let templateHash = encode(fnv1a64("\(namespace)/\(deployment)"), length: 10)
        let key = "\(lab)/\(namespace)/\(deployment)/\(replica)" + (incarnation == 0 ? "" : "/\(incarnation)")
        let suffix = encode(fnv1a64(key), length: 5)
        return "\(deployment)-\(templateHash)-\(suffix)"
    }

    static func encode(_ value: UInt64, length: Int) -> String {
        var value = value
        var out = ""
        for _ in 0..<length {
            out.append(suffixAlphabet[Int(value % UInt64(suffixAlphabet.count))])
            value /= UInt64(suffixAlphabet.count)
        }
        return out
    }

    /// FNV-1a: a stable hash (Swift's `Hasher` is seeded per process).
    static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
