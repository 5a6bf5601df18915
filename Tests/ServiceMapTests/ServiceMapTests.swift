import FlowTestKit
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import Testing

@testable import ServiceMap

/// The service map without a browser: which cards and edges flows make, what an edge says,
/// and the filter bar's language.
@Suite("Service map")
struct ServiceMapTests {
    static func map(_ flows: [Flow]) -> ServiceMap {
        var map = ServiceMap()
        for flow in flows { map.add(FlowMessage.make(flow)) }
        return map
    }

    @Test("cards per workload, world and node; an edge per client, server, protocol and port, replies folded in")
    func cardsAndEdges() throws {
        let snapshot = Self.map(Fixtures.all).snapshot(window: 300, now: Fixtures.start.addingTimeInterval(10))
        #expect(
            snapshot.cards.map(\.id) == [
                "billing/ledger", "kube-system/kube-dns", "shop/frontend", "shop/loadgen", "shop/untrusted",
                "world/192.0.2.80",
            ])
        let frontend = try #require(snapshot.cards.first { $0.id == "shop/frontend" })
        #expect(frontend.pods == ["frontend-5c8b-fghij"] && frontend.kind == .workload)
        #expect(frontend.ports == [Card.Port(port: 80, protocol: "TCP", dns: false)])
        let dns = try #require(snapshot.cards.first { $0.id == "kube-system/kube-dns" })
        #expect(dns.ports == [Card.Port(port: 53, protocol: "UDP", dns: true)])
        // The query's datagram seen without its DNS (a to-endpoint L4 flow): still one port, DNS.
        var datagram = Fixtures.dnsRequest
        datagram.dns = nil
        datagram.observationPoint = .toEndpoint
        let both = Self.map([datagram, Fixtures.dnsRequest, Fixtures.syn]).snapshot(
            window: 300, now: Fixtures.start.addingTimeInterval(10))
        #expect(both.cards.first { $0.id == "kube-system/kube-dns" }?.ports == dns.ports)
        let plain = Self.map([datagram]).snapshot(window: 300, now: Fixtures.start.addingTimeInterval(10))
        #expect(
            plain.cards.first { $0.id == "kube-system/kube-dns" }?.ports == [
                Card.Port(port: 53, protocol: "UDP", dns: false)
            ])
        // Once the DNS flows leave the window, the port is plain again.
        var later = datagram
        later.time = Fixtures.start.addingTimeInterval(200)
        let aged = Self.map([Fixtures.dnsRequest, later]).snapshot(
            window: 60, now: Fixtures.start.addingTimeInterval(210))
        #expect(
            aged.cards.first { $0.id == "kube-system/kube-dns" }?.ports == [
                Card.Port(port: 53, protocol: "UDP", dns: false)
            ])

        // SYN and SYN-ACK: one edge client → server, with the handshake's RTT.
        let web = try #require(snapshot.edges.first { $0.id == "shop/loadgen→shop/frontend:TCP/80" })
        #expect(web.verdicts == ["FORWARDED": 2] && web.flows == 2 && !web.dropped)
        #expect(web.handshakeRTT == Edge.Latency(samples: 1, p50: 0.25, p95: 0.25))
        // The NXDOMAIN answer: a DNS error and a latency on the client's edge to DNS.
        let lookup = try #require(snapshot.edges.first { $0.id == "shop/loadgen→kube-system/kube-dns:UDP/53" })
        #expect(lookup.dnsErrors == ["Non-Existent Domain": 1] && lookup.dnsLatency?.p50 == 0.08)
        #expect(lookup.dnsQueries == 1 && lookup.flows == 2)
        let drop = try #require(snapshot.edges.first { $0.source == "shop/untrusted" })
        #expect(drop.dropped && drop.dropReasons == ["POLICY_DENIED": 1] && drop.destination == "billing/ledger")
        #expect(snapshot.edges.contains { $0.id == "shop/loadgen→world/192.0.2.80:ICMPv4/0" })
        #expect(snapshot.edges.count == 4)
    }

    @Test("resets, unanswered queries and the world by the name a pod resolved it by")
    func resetsAndNames() throws {
        var reset = Fixtures.synAck
        reset.l4 = .tcp(sourcePort: 80, destinationPort: 40000, flags: [.rst, .ack])
        reset.latencyNanoseconds = 0
        var unanswered = Fixtures.dnsRequest
        unanswered.dns?.unanswered = true
        var named = Fixtures.icmp
        named.destinationNames = ["api.example.com."]
        let snapshot = Self.map([Fixtures.syn, reset, unanswered, named]).snapshot(
            window: 300, now: Fixtures.start.addingTimeInterval(10))
        #expect(snapshot.edges.first { $0.destination == "shop/frontend" }?.resets == 1)
        // The report that a query went unanswered is no query of its own.
        let unansweredEdge = snapshot.edges.first { $0.destination == "kube-system/kube-dns" }
        #expect(unansweredEdge?.unansweredDNS == 1 && unansweredEdge?.dnsQueries == 0)
        #expect(snapshot.cards.contains { $0.id == "world/api.example.com" && $0.kind == .world })
        // Neighbour discovery and multicast: one card, however many addresses.
        var solicit = Fixtures.icmp
        solicit.destinationIP = "ff02::16"
        var igmp = Fixtures.icmp
        igmp.destinationIP = "224.0.0.22"
        var linkLocal = Fixtures.icmp
        linkLocal.source = Endpoint()
        linkLocal.sourceIP = "fe80::14ee:4dff:fe26:5611"
        linkLocal.destinationIP = "ff02::2"
        let noise = Self.map([solicit, igmp, linkLocal]).snapshot(
            window: 300, now: Fixtures.start.addingTimeInterval(10))
        #expect(noise.cards.map(\.id) == ["shop/loadgen", "world/link-local"])
    }

    @Test("an edge counts each TCP connection once: reported by two nodes, its SYN sent again and dropped, reset")
    func connectionsCountedOnce() throws {
        func flow(
            _ base: Flow, port: UInt16, node: String = "osp-node-1", _ change: (inout Flow) -> Void = { _ in }
        ) -> Flow {
            var flow = base
            let reply = flow.isReply == true
            let ports = flow.l4.ports
            flow.l4 = flow.l4.withPorts(
                source: reply ? ports.source : port, destination: reply ? port : ports.destination)
            flow.nodeName = node
            change(&flow)
            return flow
        }
        var deniedSyn = Fixtures.drop
        deniedSyn.sourceIP = Fixtures.syn.sourceIP
        deniedSyn.destinationIP = Fixtures.syn.destinationIP
        deniedSyn.source = Fixtures.loadgen
        deniedSyn.destination = Fixtures.frontend
        var reset = Fixtures.synAck
        reset.l4 = .tcp(sourcePort: 80, destinationPort: 40000, flags: [.rst, .ack])
        reset.latencyNanoseconds = 0
        let flows = [
            // Between two nodes: the SYN leaving the client's pod and entering the server's.
            flow(Fixtures.syn, port: 40000),
            flow(Fixtures.syn, port: 40000, node: "osp-node-2") { $0.observationPoint = .toEndpoint },
            flow(Fixtures.synAck, port: 40000, node: "osp-node-2"),
            // A SYN that left the client's pod, then it and the two sent again were dropped.
            flow(Fixtures.syn, port: 40001),
            flow(deniedSyn, port: 40001), flow(deniedSyn, port: 40001), flow(deniedSyn, port: 40001),
            // Refused: the RST reported leaving the server's pod and entering the client's.
            flow(Fixtures.syn, port: 40002),
            flow(reset, port: 40002, node: "osp-node-2") { $0.observationPoint = .fromEndpoint },
            flow(reset, port: 40002),
        ]
        let snapshot = Self.map(flows).snapshot(window: 300, now: Fixtures.start.addingTimeInterval(10))
        let web = try #require(snapshot.edges.first { $0.id == "shop/loadgen→shop/frontend:TCP/80" })
        #expect(web.flows == 10 && web.verdicts == ["FORWARDED": 7, "DROPPED": 3])
        #expect(web.connections == 3 && web.droppedConnections == 1 && web.resets == 1)

        // Each connection is remembered among an edge's last 512: a SYN of one older than that counts again.
        var many = ServiceMap()
        for port: UInt16 in 20000..<20513 { many.add(FlowMessage.make(flow(Fixtures.syn, port: port))) }
        many.add(FlowMessage.make(flow(Fixtures.syn, port: 20512, node: "osp-node-2")))
        #expect(many.snapshot(window: 300, now: Fixtures.start).edges.first?.connections == 513)
        many.add(FlowMessage.make(flow(Fixtures.syn, port: 20000, node: "osp-node-2")))
        #expect(many.snapshot(window: 300, now: Fixtures.start).edges.first?.connections == 514)
    }

    @Test("the window: edges and cards older than it are left out; a namespace keeps its cards and their peers")
    func windowAndNamespace() {
        var late = Fixtures.drop
        late.time = Fixtures.start.addingTimeInterval(400)
        let map = Self.map(Fixtures.all + [late])
        let recent = map.snapshot(window: 60, now: Fixtures.start.addingTimeInterval(410))
        #expect(recent.edges.map(\.source) == ["shop/untrusted"])
        #expect(recent.cards.map(\.id) == ["billing/ledger", "shop/untrusted"])
        let billing = map.snapshot(window: 3600, now: Fixtures.start.addingTimeInterval(410), namespace: "billing")
        #expect(billing.edges.map(\.id) == ["shop/untrusted→billing/ledger:TCP/80"])
        #expect(billing.edges.first?.verdicts == ["DROPPED": 2])
    }

    @Test(
        "the filter bar's entries: Hubble UI's syntax, one sentence for what cannot be used",
        arguments: [
            ("from:label=app=loadgen", "from:label=app=loadgen"), ("app=loadgen", "both:label=app=loadgen"),
            ("!to:port=53", "!to:port=53"), ("dns=example.com", "both:dns=example.com"),
            ("to:identity=world", "to:identity=world"), ("tcp-flag=syn", "both:tcp-flag=syn"),
            ("from:workload=shop/frontend", "from:workload=shop/frontend"),
            ("from:pod=shop/loadgen-1", "from:pod=shop/loadgen-1"), ("ip=10.0.0.1", "both:ip=10.0.0.1"),
        ])
    func filterEntries(_ text: String, _ canonical: String) throws {
        #expect(try FilterEntry(parsing: text).description == canonical)
    }

    @Test("bad filter entries", arguments: ["to:port=http", "from:label=", "identity=martian", "tcp-flag=XYZ", "!"])
    func badFilterEntries(_ text: String) {
        #expect(throws: FilterEntry.ParseError.self) { _ = try FilterEntry(parsing: text) }
    }

    @Test("a view becomes GetFlows' allow and deny lists: every combination of sides, negatives denied")
    func viewQuery() throws {
        let query = ViewQuery(
            namespace: "shop", verdicts: [.dropped],
            filters: [try FilterEntry(parsing: "to:port=80"), try FilterEntry(parsing: "!label=app=loadgen")])
        #expect(
            query.allowlist == [
                .with {
                    $0.sourcePod = ["shop/"]
                    $0.destinationPort = ["80"]
                    $0.verdict = [.dropped]
                },
                .with {
                    $0.destinationPod = ["shop/"]
                    $0.destinationPort = ["80"]
                    $0.verdict = [.dropped]
                },
            ])
        #expect(
            query.denylist == [
                .with { $0.sourceLabel = ["k8s:app=loadgen"] }, .with { $0.destinationLabel = ["k8s:app=loadgen"] },
            ])
        #expect(ViewQuery().allowlist.isEmpty && ViewQuery().denylist.isEmpty, "everything: no filter at all")
    }
}
