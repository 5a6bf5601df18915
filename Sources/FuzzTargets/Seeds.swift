import CDatapathABI
import ClusterInventory
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import KubernetesModel
import SwiftProtobuf

/// Small valid inputs per target, the seed corpus in `Fuzz/corpus/<target>/` (written by
/// `osprey-fuzz seed Fuzz/corpus`): the fuzzer starts from what real traffic looks like.
public enum FuzzSeeds {
    public static func seeds(_ target: FuzzTarget) -> [(name: String, bytes: [UInt8])] {
        switch target {
        case .dns: [("query", dnsQuery), ("answer", dnsAnswer), ("nxdomain", dnsNXDomain)]
        case .event:
            [
                ("tcp-syn", event(protocol: 6, sport: 40000, dport: 80, flags: 0x02, payload: [])),
                ("dns-query", event(protocol: 17, sport: 53000, dport: 53, flags: 0, payload: dnsQuery)),
                ("dns-answer", event(protocol: 17, sport: 53, dport: 53000, flags: 0, payload: dnsAnswer)),
            ]
        case .jsonpb:
            FuzzTarget.flows.enumerated().map {
                ("flow-\($0.offset)", Array(FlowJSONLines.line($0.element.message).utf8))
            }
        case .request: [("filters", requestBytes), ("filters-quick", quickRequestBytes)]
        case .addresses:
            [
                "localhost:4245", "unix:///var/run/cilium/hubble.sock", "[fd00::1]:4244", "10.0.0.1", "1h30m",
                "5s", "250ms",
            ].enumerated().map { ("text-\($0.offset)", Array($0.element.utf8)) }
        case .kubernetes: [("watch-pod", watchEvent), ("pod-list", podList)]
        case .batch: [("flows-and-mark", batch)]
        }
    }

    /// A FlowBatch as an agent sends it: the fuzz flows' responses, then a progress mark.
    static let batch: [UInt8] = {
        var encoder = FlowBatchEncoder()
        for (flow, message) in FuzzTarget.flows {
            try? encoder.append(
                .with {
                    $0.flow = message
                    $0.nodeName = flow.nodeName
                    $0.time = message.time
                })
        }
        try? encoder.append(ProgressMark.response(node: "fuzz-node", time: Date(timeIntervalSince1970: 1_800_000_002)))
        return encoder.take()
    }()

    /// A DNS message: header, one question, answers (A records pointing at the question's name).
    static func dns(id: UInt16, response: Bool, rcode: UInt8, answers: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), response ? 0x81 : 0x01, response ? 0x80 | rcode : 0]
        bytes += [0, 1, 0, UInt8(answers.count), 0, 0, 0, 0]
        for label in ["catalog", "shop", "svc", "cluster", "local"] {
            bytes += [UInt8(label.count)] + Array(label.utf8)
        }
        bytes += [0, 0, 1, 0, 1]  // root, type A, class IN
        for address in answers {
            bytes += [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4] + address  // pointer to the name, A, IN, TTL 30
        }
        return bytes
    }
    static let dnsQuery = dns(id: 0x1234, response: false, rcode: 0, answers: [])
    static let dnsAnswer = dns(id: 0x1234, response: true, rcode: 0, answers: [[10, 96, 0, 11], [10, 96, 0, 12]])
    static let dnsNXDomain = dns(id: 0x1235, response: true, rcode: 3, answers: [])

    static func event(protocol number: UInt8, sport: UInt16, dport: UInt16, flags: UInt8, payload: [UInt8]) -> [UInt8] {
        var event = osp_event()
        withUnsafeMutableBytes(of: &event.tuple.saddr) { $0.copyBytes(from: [10, 244, 1, 4] as [UInt8]) }
        withUnsafeMutableBytes(of: &event.tuple.daddr) { $0.copyBytes(from: [10, 244, 2, 2] as [UInt8]) }
        event.tuple.sport = sport
        event.tuple.dport = dport
        event.tuple.family = 4
        event.tuple.protocol = number
        event.timestamp_ns = 1_000_000_000
        event.packets = 1
        event.bytes = 74
        event.ifindex = 7
        event.kind = UInt8(OSP_EVENT_TRACE.rawValue)
        event.observation = UInt8(OSP_OBS_FROM_ENDPOINT.rawValue)
        event.tcp_flags = flags
        event.payload_len = UInt16(payload.count)
        withUnsafeMutableBytes(of: &event.payload) { $0.copyBytes(from: payload) }
        return withUnsafeBytes(of: &event) { Array($0) }
    }

    static var requestBytes: [UInt8] {
        let request = Observer_GetFlowsRequest.with {
            $0.number = 20
            $0.whitelist = [
                .with {
                    $0.sourcePod = ["shop/"]
                    $0.verdict = [.forwarded, .dropped]
                    $0.destinationPort = ["80"]
                },
                .with {
                    $0.sourceIp = ["10.244.0.0/16"]
                    $0.dnsQuery = ["^catalog\\\\."]
                },
            ]
            $0.blacklist = [.with { $0.sourceLabel = ["k8s:app=untrusted"] }]
            $0.fieldMask = .with { $0.paths = ["time", "source.pod_name", "verdict"] }
        }
        return (try? request.serializedBytes()) ?? []
    }

    /// Filters on the fields `mayMatch` decides on the pipeline's flow: IPv6 ranges, pods in any
    /// namespace or one, verdicts.
    static var quickRequestBytes: [UInt8] {
        let request = Observer_GetFlowsRequest.with {
            $0.follow = true
            $0.whitelist = [
                .with {
                    $0.destinationIp = ["fd00:10:244:2::/64"]
                    $0.destinationPod = ["billing/led"]
                },
                .with {
                    $0.sourcePod = ["/load"]
                    $0.verdict = [.dropped]
                },
            ]
        }
        return (try? request.serializedBytes()) ?? []
    }

    static var pod: KubernetesModel.Pod {
        let inventory = Inventory(
            cluster: "fuzz", topology: "bridge", nodes: [],
            pods: [
                ClusterInventory.Pod(
                    uid: "u1", namespace: "shop", name: "loadgen-1", node: "node-1", ips: ["10.244.1.4", "fd00::4"],
                    labels: ["app": "loadgen"], workload: Workload(kind: "Deployment", name: "loadgen"),
                    createdAt: Date(timeIntervalSince1970: 1_800_000_000), netns: nil, hostInterface: nil)
            ], services: [])
        return ClusterObjects(inventory: inventory).pods[0]
    }
    static var watchEvent: [UInt8] {
        Array((try? JSONEncoder().encode(WatchEvent(type: .added, object: pod))) ?? Data())
    }
    static var podList: [UInt8] {
        let list = ObjectList(
            apiVersion: "v1", kind: "PodList", metadata: ListMeta(resourceVersion: "42", continue: "next"),
            items: [pod])
        return Array((try? JSONEncoder().encode(list)) ?? Data())
    }
}
