import Flows
import Foundation

/// Five flows an operator sees every day, at fixed times: a SYN, its SYN-ACK, a DNS request and
/// its NXDOMAIN answer, a policy drop, an ICMP echo to the outside. The SYN-ACK enters the
/// client's veth, so its traffic direction is the client's connection's: EGRESS; a DNS response
/// is INGRESS (Retina's rule for DNS flows).
public enum Fixtures {
    public static let start = Date(timeIntervalSince1970: 1_800_000_000.25)  // 2027-01-15T08:00:00.250Z

    public static func pod(_ name: String, _ namespace: String, app: String) -> Endpoint {
        Endpoint(
            namespace: namespace, podName: name,
            labels: ["k8s:app=\(app)", "k8s:io.kubernetes.pod.namespace=\(namespace)"],
            workloads: [(kind: "Deployment", name: app)], clusterName: "osp")
    }

    public static let loadgen = pod("loadgen-7d9f-abcde", "shop", app: "loadgen")
    public static let frontend = pod("frontend-5c8b-fghij", "shop", app: "frontend")
    public static let coredns = pod("coredns-6f4d-klmno", "kube-system", app: "kube-dns")
    public static let untrusted = pod("untrusted-9a8b-pqrst", "shop", app: "untrusted")
    public static let ledger = pod("ledger-4e5f-uvwxy", "billing", app: "ledger")

    public static var syn: Flow {
        var flow = Flow(
            time: start, uuid: UUID(uuidString: "00000000-0000-4000-8000-000000000001")!, verdict: .forwarded,
            ipVersion: 1, sourceIP: "10.244.1.4", destinationIP: "10.244.2.2",
            l4: .tcp(sourcePort: 40000, destinationPort: 80, flags: .syn), nodeName: "osp-node-1",
            trafficDirection: .egress, isReply: false, observationPoint: .fromEndpoint,
            interface: (index: 5, name: "osp0a1b2c3d4e5"))
        flow.source = loadgen
        flow.destination = frontend
        flow.ethernet = (MACAddress((0x02, 0, 0, 0, 0, 1)), MACAddress((0x02, 0, 0, 0, 0, 2)))
        return flow
    }

    public static var synAck: Flow {
        var flow = Flow(
            time: start.addingTimeInterval(0.001), uuid: UUID(uuidString: "00000000-0000-4000-8000-000000000002")!,
            verdict: .forwarded, ipVersion: 1, sourceIP: "10.244.2.2", destinationIP: "10.244.1.4",
            l4: .tcp(sourcePort: 80, destinationPort: 40000, flags: [.syn, .ack]), nodeName: "osp-node-1",
            trafficDirection: .egress, isReply: true, observationPoint: .toEndpoint)
        flow.source = frontend
        flow.destination = loadgen
        flow.latencyNanoseconds = 250_000
        return flow
    }

    public static var dnsRequest: Flow {
        var flow = Flow(
            time: start.addingTimeInterval(0.002), uuid: UUID(uuidString: "00000000-0000-4000-8000-000000000003")!,
            verdict: .forwarded, ipVersion: 1, sourceIP: "10.244.1.4", destinationIP: "10.244.1.2",
            l4: .udp(sourcePort: 53000, destinationPort: 53), nodeName: "osp-node-1", trafficDirection: .egress,
            isReply: false, observationPoint: .fromEndpoint)
        flow.source = loadgen
        flow.destination = coredns
        flow.dns = DNSInfo(query: "catalog.shop.svc.cluster.local.", isResponse: false, rcode: 0, qtypes: ["A"])
        return flow
    }

    public static var dnsResponse: Flow {
        var flow = Flow(
            time: start.addingTimeInterval(0.003), uuid: UUID(uuidString: "00000000-0000-4000-8000-000000000004")!,
            verdict: .forwarded, ipVersion: 1, sourceIP: "10.244.1.2", destinationIP: "10.244.1.4",
            l4: .udp(sourcePort: 53, destinationPort: 53000), nodeName: "osp-node-1", trafficDirection: .ingress,
            isReply: true, observationPoint: .toEndpoint)
        flow.source = coredns
        flow.destination = loadgen
        flow.dns = DNSInfo(query: "catalog.shop.svc.cluster.local.", isResponse: true, rcode: 3, qtypes: ["A"])
        flow.latencyNanoseconds = 80_000
        return flow
    }

    public static var drop: Flow {
        var flow = Flow(
            time: start.addingTimeInterval(1), uuid: UUID(uuidString: "00000000-0000-4000-8000-000000000005")!,
            verdict: .dropped, ipVersion: 1, sourceIP: "10.244.2.4", destinationIP: "10.244.2.3",
            l4: .tcp(sourcePort: 41000, destinationPort: 80, flags: .syn), nodeName: "osp-node-2",
            trafficDirection: .egress, isReply: nil, observationPoint: .unknown)
        flow.source = untrusted
        flow.destination = ledger
        flow.dropReason = 133
        flow.kernelDropReason = "NETFILTER_DROP"
        flow.kernelDropLocation = "nf_hook_slow+0x9c/0x120"
        return flow
    }

    public static var icmp: Flow {
        var flow = Flow(
            time: start.addingTimeInterval(2), uuid: UUID(uuidString: "00000000-0000-4000-8000-000000000006")!,
            verdict: .forwarded, ipVersion: 1, sourceIP: "10.244.1.4", destinationIP: "192.0.2.80",
            l4: .icmpv4(type: 8, code: 0), nodeName: "osp-node-1", trafficDirection: .egress, isReply: false,
            observationPoint: .fromEndpoint)
        flow.source = loadgen
        return flow
    }

    public static var all: [Flow] { [syn, synAck, dnsRequest, dnsResponse, drop, icmp] }
}
