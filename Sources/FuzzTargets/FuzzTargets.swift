import CDatapathABI
import ClusterInventory
import FlowDecoder
import FlowFilters
import Flows
import Foundation
import HubbleAPI
import HubbleTransport
import HubbleWire
import KubernetesModel
import SwiftProtobuf

/// Every parser of untrusted bytes, as one function each: what `make fuzz` drives with
/// libFuzzer (`osprey-fuzz`) and what the corpus test replays. A target must never crash,
/// whatever the bytes; it throws nothing and returns nothing.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A DNS message as a pod sent it (the datapath copies its first bytes).
    case dns
    /// A raw datapath event (`struct osp_event`), DNS payload and all.
    case event
    /// A line of a flow log (`osprey observe --input-file`).
    case jsonpb
    /// A GetFlows request in protobuf: validation, filters, field mask, matching.
    case request
    /// Hubble addresses and durations (`--server`, `--since`, relay and agent flags).
    case addresses
    /// Kubernetes API JSON: a watch event and a list page of pods, and their conversion.
    case kubernetes
    /// What an agent sends the relay: a `FlowBatch` (or a single `GetFlowsResponse`), read raw.
    case batch

    /// The target the environment names (`OSPREY_FUZZ_TARGET`), for the libFuzzer entry point.
    public static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["OSPREY_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(
                Data(
                    "osprey-fuzz: set OSPREY_FUZZ_TARGET to one of \(allCases.map(\.rawValue).joined(separator: ", ")).\n"
                        .utf8))
            exit(2)
        }
        return target
    }()

    public func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .dns: Self.dns(Array(bytes))
        case .event: Self.event(bytes)
        case .jsonpb: Self.jsonpb(String(decoding: bytes, as: UTF8.self))
        case .request: Self.request(Array(bytes))
        case .addresses: Self.addresses(String(decoding: bytes, as: UTF8.self))
        case .kubernetes: Self.kubernetes(Data(bytes))
        case .batch: Self.batch(Array(bytes))
        }
    }

    static func dns(_ bytes: [UInt8]) {
        guard let message = DNSMessage(bytes) else { return }
        _ = (message.query, message.addresses, message.cnames, message.rrtypes, message.ttl)
        _ = DNSMessage.typeName(message.qtype)
    }

    /// One decoder for the whole run, as the agent has: its tables (pending queries, names)
    /// see every input.
    nonisolated(unsafe) static var decoder = FlowDecoder(
        nodeName: "fuzz", kernelDropReasons: [2: "NOT_SPECIFIED", 5: "NETFILTER_DROP"])

    static func event(_ bytes: UnsafeRawBufferPointer) {
        var event = osp_event()
        withUnsafeMutableBytes(of: &event) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(raw.count)))
        }
        let flow = decoder.decode(event, interfaceName: "osp0")
        // What the agent does with it: the Hubble message (the API) and a flow-log line, which
        // must be JSON whatever the packet carried (DNS names are the pod's bytes). The
        // `osprey observe` printer's line is the jsonpb target's.
        _ = FlowMessage.make(flow)
        var line: [UInt8] = []
        writer.appendLine(flow, to: &line)
        if (try? JSONSerialization.jsonObject(with: Data(line))) == nil {
            fatalError("the flow-log line is not JSON: \(String(decoding: line, as: UTF8.self))")
        }
        _ = decoder.unansweredQueries(nowNs: event.timestamp_ns &+ 10_000_000_000)
        // The agent's housekeeping, about once a second there.
        executions &+= 1
        if executions % 4096 == 0 { decoder.forgetStale(nowNs: event.timestamp_ns) }
    }

    nonisolated(unsafe) static var executions = 0

    static let writer = FlowJSONWriter()

    static func jsonpb(_ line: String) {
        guard let response = try? FlowJSONLines.parse(line) else { return }
        _ = FlowJSONLines.line(response)
    }

    /// Flows a request's filters are matched against, with their messages.
    static let flows: [(flow: Flow, message: Flow_Flow)] = {
        var syn = Flow(
            time: Date(timeIntervalSince1970: 1_800_000_000), verdict: .forwarded, ipVersion: 1,
            sourceIP: "10.244.1.4", destinationIP: "10.244.2.2",
            l4: .tcp(sourcePort: 40000, destinationPort: 80, flags: .syn), nodeName: "fuzz-node",
            trafficDirection: .egress, isReply: false, observationPoint: .fromEndpoint)
        syn.source = Endpoint(
            namespace: "shop", podName: "loadgen-1", labels: ["k8s:app=loadgen"],
            workloads: [(kind: "Deployment", name: "loadgen")], clusterName: "fuzz")
        var dns = syn
        dns.l4 = .udp(sourcePort: 53000, destinationPort: 53)
        dns.dns = DNSInfo(query: "catalog.shop.svc.cluster.local.", isResponse: true, rcode: 3, qtypes: ["A"])
        var drop = syn
        drop.verdict = .dropped
        drop.dropReason = 133
        drop.kernelDropReason = "NETFILTER_DROP"
        var v6 = Flow(
            time: Date(timeIntervalSince1970: 1_800_000_001), verdict: .forwarded, ipVersion: 2,
            sourceIP: "fd00:10:244:1::4", destinationIP: "fd00:10:244:2::7",
            l4: .tcp(sourcePort: 41000, destinationPort: 5432, flags: .ack), nodeName: "fuzz-node",
            trafficDirection: .ingress, isReply: true, observationPoint: .toEndpoint)
        v6.destination = Endpoint(
            namespace: "billing", podName: "ledger-0", labels: ["k8s:app=ledger"], workloads: [], clusterName: "fuzz")
        return [syn, dns, drop, v6].map { ($0, FlowMessage.make($0)) }
    }()

    static func request(_ bytes: [UInt8]) {
        guard let message = try? Observer_GetFlowsRequest(serializedBytes: bytes),
            let request = try? FlowRequest(message)
        else { return }
        for (flow, message) in flows {
            let matches = request.filters.matches(message)
            // The quick check on the pipeline's flow may only reject what the message would.
            if matches, !request.filters.mayMatch(flow) {
                fatalError("mayMatch rejected a flow whose message matches: \(request.filters)")
            }
            if matches { _ = request.mask?.apply(message) }
        }
    }

    static func addresses(_ text: String) {
        _ = try? HubbleAddress(parsing: text, defaultPort: 4244)
        _ = Durations.parse(text)
    }

    static func kubernetes(_ data: Data) {
        let decoder = JSONDecoder()
        if (try? decoder.decode(WatchEventHeader.self, from: data)) != nil,
            let event = try? decoder.decode(WatchEvent<KubernetesModel.Pod>.self, from: data)
        {
            _ = ClusterInventory.Pod(kubernetes: event.object)
        }
        if let list = try? decoder.decode(ObjectList<KubernetesModel.Pod>.self, from: data) {
            _ = list.items.map { ClusterInventory.Pod(kubernetes: $0) }
        }
    }

    /// The relay's raw reading must agree with swift-protobuf on how many responses a batch
    /// holds and what each one is, whenever swift-protobuf can decode them.
    static func batch(_ bytes: [UInt8]) {
        _ = try? RawFlowResponse(bytes: bytes)
        guard let raw = try? RawFlowResponse.batch(bytes) else { return }
        guard let decoded = try? Osprey_V1_FlowBatch(serializedBytes: bytes) else { return }
        guard decoded.responses.count == raw.count else {
            fatalError("the raw reading found \(raw.count) responses, swift-protobuf \(decoded.responses.count)")
        }
        for (response, message) in zip(raw, decoded.responses) {
            let kind: RawFlowResponse.Kind =
                switch message.responseTypes {
                case .flow: .flow
                case .nodeStatus: .nodeStatus
                case .lostEvents: .lostEvents
                default: ProgressMark.isMark(message) ? .mark : .other
                }
            // Field 1 with another wire type is an unknown field to swift-protobuf, as to the reader.
            if response.kind != kind, message.unknownFields.data.isEmpty {
                fatalError("the raw reading took a \(kind) response for \(response.kind)")
            }
        }
    }

    // Whether seeds get past each parser's first check (FuzzCorpusTests).
    static func parsesDNS(_ bytes: [UInt8]) -> Bool { DNSMessage(bytes) != nil }
    static func requestValid(_ bytes: [UInt8]) -> Bool {
        guard let message = try? Observer_GetFlowsRequest(serializedBytes: bytes) else { return false }
        return (try? FlowRequest(message)) != nil
    }
    static func jsonpbValid(_ line: String) -> Bool { (try? FlowJSONLines.parse(line)) != nil }
    static func batchValid(_ bytes: [UInt8]) -> Bool { ((try? RawFlowResponse.batch(bytes))?.count ?? 0) > 0 }
    static func kubernetesValid(_ data: Data) -> Bool {
        (try? JSONDecoder().decode(WatchEvent<KubernetesModel.Pod>.self, from: data)) != nil
    }
}
