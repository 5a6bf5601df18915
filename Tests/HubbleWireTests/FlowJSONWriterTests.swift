import FlowTestKit
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import Testing

/// The flow log's direct JSON writer against swift-protobuf's encoding of the same flow: the
/// same bytes, for every kind of flow, with and without field masks, and for strings a pod or a
/// DNS server chose.
@Suite("Flow JSON writer")
struct FlowJSONWriterTests {
    @Test("a flow's uuid is written as Foundation's uuidString in lower case, in messages and in JSON")
    func uuidText() {
        var generator = SystemRandomNumberGenerator()
        let uuids =
            [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))] + (0..<1000).map { _ in UUID() }
            + [UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))]
            + (0..<100).map { _ in
                UUID(uuid: withUnsafeBytes(of: (generator.next(), generator.next())) { $0.load(as: uuid_t.self) })
            }
        let writer = FlowJSONWriter()
        for uuid in uuids {
            let expected = uuid.uuidString.lowercased()
            #expect(uuid.lowercaseText == expected)
            var flow = Fixtures.syn
            flow.uuid = uuid
            #expect(FlowMessage.make(flow).uuid == expected)
            var line: [UInt8] = []
            writer.appendLine(flow, to: &line)
            #expect(String(decoding: line, as: UTF8.self).contains("\"uuid\":\"\(expected)\""))
        }
    }

    @Test(
        "an L7 record names no observation point and no event sub-type, as Cilium's access-log flows; the packet's own flow does"
    )
    func l7Records() {
        var packet = Fixtures.dnsRequest
        packet.dns = nil
        let cases: [(Flow, type: Int32, subType: Int32, point: Flow_TraceObservationPoint, text: String?)] = [
            (Fixtures.dnsRequest, 129, 0, .unknownPoint, nil), (Fixtures.dnsResponse, 129, 0, .unknownPoint, nil),
            (packet, 4, 5, .fromEndpoint, "FROM_ENDPOINT"), (Fixtures.synAck, 4, 0, .toEndpoint, "TO_ENDPOINT"),
        ]
        for (flow, type, subType, point, text) in cases {
            let message = FlowMessage.make(flow)
            #expect(message.eventType.type == type && message.eventType.subType == subType, "\(flow.summary)")
            #expect(message.traceObservationPoint == point, "\(flow.summary)")
            var line: [UInt8] = []
            FlowJSONWriter().appendLine(flow, to: &line)
            let json = String(decoding: line, as: UTF8.self)
            #expect(json.contains("trace_observation_point") == (text != nil), "\(json)")
            if let text { #expect(json.contains("\"trace_observation_point\":\"\(text)\""), "\(json)") }
            let eventType = subType == 0 ? "{\"type\":\(type)}" : "{\"type\":\(type),\"sub_type\":\(subType)}"
            #expect(json.contains("\"event_type\":\(eventType)"), "\(json)")
        }
    }

    @Test(
        "trace_reason: NEW for the report that opens a connection, REPLY from its responder, ESTABLISHED otherwise, none for a drop or an L7 record"
    )
    func traceReasons() {
        var opening = Fixtures.syn
        opening.opensConnection = true
        var unreachable = Fixtures.icmp
        unreachable.l4 = .icmpv4(type: 3, code: 3)
        unreachable.opensConnection = true
        var tooBig = Fixtures.icmp
        tooBig.l4 = .icmpv6(type: 2, code: 0)
        tooBig.isReply = true
        let cases: [(Flow, Flow_TraceReason, String?)] = [
            (opening, .new, "NEW"), (Fixtures.syn, .established, "ESTABLISHED"), (Fixtures.synAck, .reply, "REPLY"),
            (unreachable, .related, "RELATED"), (tooBig, .related, "RELATED"),
            (Fixtures.icmp, .established, "ESTABLISHED"),
            (Fixtures.drop, .unknown, nil), (Fixtures.dnsRequest, .unknown, nil), (Fixtures.dnsResponse, .unknown, nil),
        ]
        for (flow, reason, text) in cases {
            #expect(FlowMessage.make(flow).traceReason == reason, "\(flow.summary)")
            var line: [UInt8] = []
            FlowJSONWriter().appendLine(flow, to: &line)
            let json = String(decoding: line, as: UTF8.self)
            #expect(json.contains("\"trace_reason\":\"\(text ?? "")\"") == (text != nil), "\(json)")
            #expect(json.contains("trace_reason") == (text != nil), "\(json)")
        }
    }

    /// Flows beyond the fixtures: every optional part set or absent, and hostile text.
    static var flows: [Flow] {
        var service = Fixtures.syn
        service.destinationService = ServiceRef(namespace: "shop", name: "frontend")
        service.sourceService = ServiceRef(namespace: "shop", name: "loadgen")
        service.serviceAddress = "10.96.0.11:80"
        service.sourceNames = ["loadgen.shop."]
        service.destinationNames = ["frontend.shop.svc.cluster.local.", "web.example."]
        var answer = Fixtures.dnsResponse
        answer.dns?.rcode = 0
        answer.dns?.ips = ["10.96.0.11", "2001:db8::1"]
        answer.dns?.ttl = 30
        answer.dns?.cnames = ["web.example."]
        answer.dns?.rrtypes = ["A", "AAAA"]
        var unanswered = Fixtures.dnsRequest
        unanswered.dns?.unanswered = true
        var hostile = Fixtures.dnsRequest
        hostile.dns?.query = "<img src=x onerror=alert(1)>.\"quote\\back\u{1}\u{7f}\u{85}é🐟\t\n.evil."
        hostile.source = Endpoint(
            namespace: "shop", podName: "pod-\u{0}\u{1f}\u{a0}", labels: ["k8s:app=\"x\"", "k8s:ü=ß"],
            workloads: [(kind: "Deployment", name: "w\u{2028}")], clusterName: "c\u{9f}")
        var ipv6 = Fixtures.icmp
        ipv6.ipVersion = 2
        ipv6.l4 = .icmpv6(type: 128, code: 0)
        ipv6.destination = Endpoint()
        ipv6.time = Date(timeIntervalSince1970: 1_800_000_000)
        var other = Fixtures.syn
        other.l4 = .other(protocolNumber: 47)
        other.isReply = nil
        other.interface = nil
        other.ethernet = nil
        other.time = Date(timeIntervalSince1970: 86_400 * 59 + 0.5)  // 1970-03-01, after February
        var early = Fixtures.syn
        early.time = Date(timeIntervalSince1970: 951_782_400.000_001)  // 2000-02-29
        var host = Fixtures.drop
        host.source = .host
        host.destination = .remoteNode
        host.dropReason = 999  // not a flow.DropReason
        host.kernelDropReason = nil
        var opening = Fixtures.syn
        opening.opensConnection = true
        var unreachable = Fixtures.icmp
        unreachable.l4 = .icmpv4(type: 3, code: 3)
        return Fixtures.all + [service, answer, unanswered, hostile, ipv6, other, early, host, opening, unreachable]
    }

    static let masks: [[String]] = [
        [], ["time"], ["time", "verdict", "source", "destination"], ["source.pod_name", "IP", "l4"],
        ["l4.TCP.flags.SYN", "l4.UDP.destination_port", "l7.dns.query", "l7.latency_ns"],
        ["source.workloads.name", "destination.labels", "event_type.sub_type", "interface.name"],
        ["emitter", "uuid", "Summary", "extensions", "is_reply", "trace_reason", "drop_reason_desc"],
        ["ethernet.source", "IP.ipVersion", "source_service", "destination_service.name", "node_name"],
    ]

    @Test("writes the bytes swift-protobuf writes for the same flow, masked or not", arguments: masks)
    func sameBytes(_ paths: [String]) throws {
        let mask = try FlowFieldMask(paths: paths)
        let writer = FlowJSONWriter(mask: mask)
        for flow in Self.flows {
            let message = FlowMessage.make(flow)
            let expected = Self.sortingStructKeys(
                FlowJSONLines.unorderedLine(
                    Observer_GetFlowsResponse.with {
                        $0.flow = mask?.apply(message) ?? message
                        $0.nodeName = flow.nodeName
                        $0.time = message.time
                    }))
            var line: [UInt8] = []
            writer.appendLine(flow, to: &line)
            #expect(String(decoding: line, as: UTF8.self) == expected + "\n", "flow \(flow.summary), mask \(paths)")
        }
    }

    /// swift-protobuf writes the keys of `extensions`' Struct in its dictionary's order, which
    /// differs from one dictionary to the next (its JSON options' deterministic ordering does not
    /// reach a Struct); Go's protojson and the writer sort them. The fixtures' values hold no
    /// comma or brace, so the Struct's entries are what lies between its commas.
    static func sortingStructKeys(_ line: String) -> String {
        guard let start = line.range(of: #""type.googleapis.com/google.protobuf.Struct","value":{"#),
            let end = line[start.upperBound...].firstIndex(of: "}")
        else { return line }
        let entries = line[start.upperBound..<end].split(separator: ",").sorted()
        return line.replacingCharacters(in: start.upperBound..<end, with: entries.joined(separator: ","))
    }

    @Test("a line parses back to the flow it was written from, hostile text included")
    func parsesBack() throws {
        var lines: [UInt8] = []
        let writer = FlowJSONWriter()
        for flow in Self.flows { writer.appendLine(flow, to: &lines) }
        let parsed = try String(decoding: lines, as: UTF8.self).split(separator: "\n").map {
            try FlowJSONLines.parse(String($0))
        }
        for (line, flow) in zip(parsed, Self.flows) {
            var read = line.flow
            var written = FlowMessage.make(flow)
            // An Any compares by its packed bytes, whose map order is free: compare its fields.
            #expect(FlowExtensions.fields(of: read) == FlowExtensions.fields(of: written))
            read.clearExtensions()
            written.clearExtensions()
            #expect(read == written, "flow \(flow.summary)")
        }
        #expect(parsed[9].flow.l7.dns.query.hasPrefix("<img src=x onerror=alert(1)>.\"quote\\back\u{1}"))
    }
}
