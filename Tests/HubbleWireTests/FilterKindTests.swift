import FlowFilters
import FlowTestKit
import Flows
import HubbleAPI
import HubbleWire
import Testing

/// Each kind of FlowFilter field on its own, straight against the fixture flows (no server):
/// which of syn, synAck, dnsRequest, dnsResponse, drop, icmp it lets through.
@Suite("Flow filters, one field at a time")
struct FilterKindTests {
    static let flows = Fixtures.all.map { FlowMessage.make($0) }
    static let names = ["syn", "synAck", "dnsRequest", "dnsResponse", "drop", "icmp"]

    /// The fixture flows (by name) that `filter` allows. The quick check on the pipeline's flow
    /// (`mayMatch`, before any message is made) must let each of them through, and the agent's
    /// one way of filtering its flows (`message(for:)`) must pass exactly those.
    static func allowed(_ filter: Flow_FlowFilter) throws -> [String] {
        let set = try FlowFilterSet(allow: [filter], deny: [])
        for (name, (flow, message)) in zip(names, zip(Fixtures.all, flows)) {
            #expect((set.message(for: flow) == message) == set.matches(message), "message(for:) on \(name)")
            guard set.matches(message) else { continue }
            #expect(set.mayMatch(flow), "mayMatch rejected \(name), which the filter allows")
        }
        return zip(names, flows).filter { set.matches($0.1) }.map(\.0)
    }

    struct Row: CustomTestStringConvertible, Sendable {
        let field: String
        let filter: Flow_FlowFilter
        let expected: [String]
        var testDescription: String { field }
    }

    static let endpointRows: [Row] = [
        Row(
            field: "source_ip", filter: .with { $0.sourceIp = ["10.244.1.4"] }, expected: ["syn", "dnsRequest", "icmp"]),
        Row(
            field: "destination_ip CIDR", filter: .with { $0.destinationIp = ["10.244.2.0/24"] },
            expected: ["syn", "drop"]),
        Row(
            field: "source_pod prefix", filter: .with { $0.sourcePod = ["shop/loadgen"] },
            expected: ["syn", "dnsRequest", "icmp"]),
        Row(
            field: "destination_pod namespace/", filter: .with { $0.destinationPod = ["kube-system/"] },
            expected: ["dnsRequest"]),
        Row(field: "source_label", filter: .with { $0.sourceLabel = ["k8s:app=frontend"] }, expected: ["synAck"]),
        Row(
            field: "destination_label set", filter: .with { $0.destinationLabel = ["app in (ledger, coredns)"] },
            expected: ["drop"]),
        Row(
            field: "source_workload", filter: .with { $0.sourceWorkload = [.with { $0.name = "untrusted" }] },
            expected: ["drop"]),
        Row(
            field: "destination_cluster_name", filter: .with { $0.destinationClusterName = ["osp"] },
            expected: ["syn", "synAck", "dnsRequest", "dnsResponse", "drop"]),
    ]

    static let eventRows: [Row] = [
        Row(field: "verdict", filter: .with { $0.verdict = [.dropped] }, expected: ["drop"]),
        Row(field: "drop_reason_desc", filter: .with { $0.dropReasonDesc = [.policyDenied] }, expected: ["drop"]),
        // The SYN-ACK entering loadgen belongs to loadgen's connection out (EGRESS); a DNS
        // response is INGRESS.
        Row(
            field: "traffic_direction", filter: .with { $0.trafficDirection = [.ingress] },
            expected: ["dnsResponse"]),
        Row(field: "reply", filter: .with { $0.reply = [true] }, expected: ["synAck", "dnsResponse"]),
        Row(field: "node_name glob", filter: .with { $0.nodeName = ["*-2"] }, expected: ["drop"]),
        Row(
            field: "uuid", filter: .with { $0.uuid = ["00000000-0000-4000-8000-000000000006"] }, expected: ["icmp"]),
        Row(field: "event_type drop", filter: .with { $0.eventType = [.with { $0.type = 1 }] }, expected: ["drop"]),
    ]

    static let l4Rows: [Row] = [
        Row(field: "protocol", filter: .with { $0.protocol = ["udp"] }, expected: ["dnsRequest", "dnsResponse"]),
        Row(field: "protocol icmp", filter: .with { $0.protocol = ["ICMPv4"] }, expected: ["icmp"]),
        Row(field: "destination_port", filter: .with { $0.destinationPort = ["80"] }, expected: ["syn", "drop"]),
        Row(field: "source_port", filter: .with { $0.sourcePort = ["53"] }, expected: ["dnsResponse"]),
        Row(
            field: "tcp_flags SYN+ACK",
            filter: .with {
                $0.tcpFlags = [
                    .with {
                        $0.syn = true; $0.ack = true
                    }
                ]
            },
            expected: ["synAck"]),
        Row(field: "ip_version", filter: .with { $0.ipVersion = [.ipv6] }, expected: []),
    ]

    static let l7Rows: [Row] = [
        Row(
            field: "dns_query regex", filter: .with { $0.dnsQuery = [#"^catalog\..*"#] },
            expected: ["dnsRequest", "dnsResponse"]),
        Row(field: "http_status_code", filter: .with { $0.httpStatusCode = ["5+"] }, expected: []),
    ]

    @Test("endpoint fields", arguments: endpointRows)
    func endpoint(_ row: Row) throws { #expect(try Self.allowed(row.filter) == row.expected) }

    @Test("event fields", arguments: eventRows)
    func event(_ row: Row) throws { #expect(try Self.allowed(row.filter) == row.expected) }

    @Test("layer 4 fields", arguments: l4Rows)
    func l4(_ row: Row) throws { #expect(try Self.allowed(row.filter) == row.expected) }

    @Test("layer 7 fields", arguments: l7Rows)
    func l7(_ row: Row) throws { #expect(try Self.allowed(row.filter) == row.expected) }

    @Test(
        "addresses, pods and verdicts decide on the pipeline's flow, before its message is made",
        arguments: endpointRows.prefix(4) + eventRows.prefix(1))
    func quick(_ row: Row) throws {
        let set = try FlowFilterSet(allow: [row.filter], deny: [])
        #expect(zip(Self.names, Fixtures.all).filter { set.mayMatch($0.1) }.map(\.0) == row.expected)
        #expect(
            try FlowFilterSet(allow: [row.filter, .with { $0.protocol = ["icmp"] }], deny: []).mayMatch(Fixtures.all[5])
        )
    }

    @Test("traffic_direction INGRESS selects the server's side of a connection, its replies leaving it included")
    func trafficDirection() throws {
        var atServer = Fixtures.synAck  // the same SYN-ACK, where it leaves frontend
        atServer.observationPoint = .fromEndpoint
        atServer.trafficDirection = .ingress
        let ingress = try FlowFilterSet(allow: [.with { $0.trafficDirection = [.ingress] }], deny: [])
        #expect(ingress.matches(FlowMessage.make(atServer)) && ingress.mayMatch(atServer))
        #expect(!ingress.matches(FlowMessage.make(Fixtures.synAck)), "entering loadgen, it is loadgen's egress")
    }

    @Test("fields of one filter all apply; filters of a list are alternatives; deny wins")
    func combination() throws {
        let both = Flow_FlowFilter.with {
            $0.sourcePod = ["shop/"]
            $0.protocol = ["tcp"]
        }
        #expect(try Self.allowed(both) == ["syn", "synAck", "drop"])
        let either = try FlowFilterSet(
            allow: [.with { $0.verdict = [.dropped] }, .with { $0.protocol = ["icmp"] }],
            deny: [.with { $0.nodeName = ["osp-node-2"] }])
        #expect(zip(Self.names, Self.flows).filter { either.matches($0.1) }.map(\.0) == ["icmp"])
    }

    @Test(
        "bad values are one sentence naming the value",
        arguments: [
            (Flow_FlowFilter.with { $0.sourceIp = ["10.0.0.300"] }, "10.0.0.300"),
            (.with { $0.destinationPort = ["http"] }, "http"),
            (.with { $0.dnsQuery = ["(["] }, "(["),
            (.with { $0.httpStatusCode = ["99"] }, "99"),
            (.with { $0.protocol = ["sctpx"] }, "sctpx"),
        ])
    func badValues(_ filter: Flow_FlowFilter, _ value: String) {
        #expect {
            _ = try FlowFilterSet(allow: [filter], deny: [])
        } throws: { error in
            let text = "\(error)"
            return text.contains(value) && text.hasSuffix(".")
        }
    }
}
