import CDatapathABI
import FlowTestKit
import Foundation
import HubbleWire
import Locking
import Testing

@testable import FlowDecoder
@testable import Flows

/// DNS messages and raw datapath events become the flows Hubble users expect.
@Suite("Flow decoding")
struct FlowDecodingTests {
    /// A DNS message: header, one question, answers as (type, rdata).
    static func dns(
        id: UInt16, response: Bool, rcode: UInt8 = 0, name: String, qtype: UInt16,
        answers: [(UInt16, [UInt8], UInt32)] = []
    )
        -> [UInt8]
    {
        var bytes: [UInt8] = [
            UInt8(id >> 8), UInt8(id & 0xff), response ? 0x81 : 0x01, response ? 0x80 | rcode : 0, 0, 1, 0,
            UInt8(answers.count), 0, 0, 0, 0,
        ]
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        bytes += [0, UInt8(qtype >> 8), UInt8(qtype & 0xff), 0, 1]
        for (type, data, ttl) in answers {
            bytes += [0xc0, 12, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]  // name: pointer to the question
            bytes += [UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xff), UInt8(ttl >> 8 & 0xff), UInt8(ttl & 0xff)]
            bytes += [UInt8(data.count >> 8), UInt8(data.count & 0xff)] + data
        }
        return bytes
    }

    @Test("DNS responses: query, answers, smallest TTL, CNAMEs through compression pointers")
    func dnsMessages() throws {
        let cname: [UInt8] = [3] + Array("web".utf8) + [0xc0, 12]  // web.<question name>
        let bytes = Self.dns(
            id: 7, response: true, name: "frontend.shop.svc.cluster.local", qtype: 1,
            answers: [
                (5, cname, 60), (1, [10, 96, 0, 11], 30), (28, [0xfd, 0] + Array(repeating: 0, count: 13) + [1], 45),
            ])
        let message = try #require(DNSMessage(bytes))
        #expect(message.id == 7 && message.isResponse && message.rcode == 0)
        #expect(message.query == "frontend.shop.svc.cluster.local.")
        #expect(message.addresses == ["10.96.0.11", "fd00::1"])
        #expect(message.cnames == ["web.frontend.shop.svc.cluster.local."])
        #expect(message.ttl == 30)
        #expect(message.rrtypes == ["CNAME", "A", "AAAA"])
        let nx = try #require(
            DNSMessage(Self.dns(id: 9, response: true, rcode: 3, name: "catalog.shop.svc.cluster.local", qtype: 28)))
        #expect(nx.rcode == 3 && nx.addresses.isEmpty && DNSMessage.typeName(nx.qtype) == "AAAA")
        #expect(DNSMessage(Array(bytes.prefix(10))) == nil, "a truncated header is not a message")
        let cut = try #require(DNSMessage(Array(bytes.prefix(bytes.count - 5))), "a snapshot cut inside the answers")
        #expect(cut.addresses == ["10.96.0.11"])
    }

    @Test("DNS names in presentation format, as Cilium's DNS library writes them: no byte lost or read as a dot")
    func dnsNamePresentation() throws {
        // Labels as bytes: one with a dot and a quote in it, one with a space, a backslash and
        // bytes outside printable ASCII (a tab, an invalid UTF-8 byte).
        let labels: [[UInt8]] = [Array("a.b\"c".utf8), [0x20, 0x5c, 0x09, 0xff, 0x41], Array("example".utf8)]
        var bytes: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
        for label in labels { bytes += [UInt8(label.count)] + label }
        bytes += [0, 0, 1, 0, 1]
        let cname: [UInt8] = [4] + Array("w(x)".utf8) + [0xc0, 12]  // w(x).<question name>
        bytes += [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, UInt8(cname.count)] + cname
        let message = try #require(DNSMessage(bytes))
        #expect(message.query == #"a\.b\"c.\ \\\009\255A.example."#)
        #expect(message.cnames == [#"w\(x\).a\.b\"c.\ \\\009\255A.example."#])
        let root = try #require(DNSMessage([0, 2, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]))
        #expect(root.query == ".")

        // The summary quotes the answer as Go's %q does: the presentation's backslashes and
        // quotes escaped once more.
        var flow = Fixtures.dnsResponse
        var dns = DNSInfo(query: message.query, isResponse: true, rcode: 0, qtypes: ["A"])
        dns.cnames = [#"q\"t.example."#]
        flow.dns = dns
        #expect(flow.summary == #"DNS Answer CNAMEs: "q\\\"t.example." TTL: 0 (Query \#(message.query) A)"#)
    }

    static let client: [UInt8] = [10, 244, 1, 4]
    static let server: [UInt8] = [10, 244, 2, 3]

    @Test("TCP: SYN from the client, SYN-ACK marked as reply with the handshake round trip")
    func tcpHandshake() {
        var decoder = FlowDecoder(nodeName: "osp-node-1", kernelDropReasons: [:])
        var opening = RawEvent.packet(
            Self.client, 40000, Self.server, 80, protocol: 6, flags: RawEvent.syn, at: 1_000_000)
        opening.report = UInt8(OSP_REPORT_NEW.rawValue)
        let syn = decoder.decode(opening, interfaceName: "ospabc")
        #expect(syn.verdict == .forwarded && syn.isReply == false)
        #expect(syn.opensConnection, "the report that put the connection in the table")
        #expect(syn.sourceIP == "10.244.1.4" && syn.destinationIP == "10.244.2.3")
        #expect(syn.summary == "TCP Flags: SYN")
        #expect(syn.observationPoint == .fromEndpoint && syn.trafficDirection == .egress)
        #expect(syn.eventType == 4 && syn.eventSubType == 5)
        #expect(syn.interface?.name == "ospabc")
        #expect(syn.ethernet?.source.description == "02:00:00:00:00:0a")
        #expect(syn.ethernet?.destination.description == "ee:ff:00:00:1b:c2")
        let synAck = decoder.decode(
            RawEvent.packet(
                Self.server, 80, Self.client, 40000, protocol: 6, flags: RawEvent.syn | RawEvent.ack, reply: 1,
                observation: OSP_OBS_TO_ENDPOINT, at: 1_250_000),
            interfaceName: "ospabc")
        #expect(synAck.isReply == true)
        #expect(synAck.summary == "TCP Flags: SYN, ACK")
        #expect(synAck.latencyNanoseconds == 250_000)
        #expect(synAck.trafficDirection == .egress, "a reply entering the client: its connection out of the client")
        #expect(synAck.eventSubType == 0)
        let rst = decoder.decode(
            RawEvent.packet(
                Self.server, 8080, Self.client, 40001, protocol: 6, flags: RawEvent.rst | RawEvent.ack, reply: 1,
                at: 2_000_000),
            interfaceName: nil)
        #expect(rst.summary == "TCP Flags: ACK, RST")
        #expect(!synAck.opensConnection && !rst.opensConnection)
    }

    @Test(
        "traffic_direction is the direction of the packet's connection at the pod it crosses, as Cilium gives it: a reply leaving a pod is INGRESS, a reply entering one EGRESS; DNS flows take Retina's rule"
    )
    func trafficDirections() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [11: "NETFILTER_DROP"])
        func direction(
            _ observation: osp_observation, reply: UInt8, _ proto: UInt8 = 6, payload: [UInt8] = []
        )
            -> TrafficDirection
        {
            decoder.decode(
                RawEvent.packet(
                    Self.client, 40000, Self.server, 53, protocol: proto, reply: reply, observation: observation,
                    at: 1_000, payload: payload),
                interfaceName: nil
            ).trafficDirection
        }
        #expect(direction(OSP_OBS_FROM_ENDPOINT, reply: 0) == .egress, "a request leaving its client")
        #expect(direction(OSP_OBS_TO_ENDPOINT, reply: 0) == .ingress, "a request entering its server")
        #expect(direction(OSP_OBS_FROM_ENDPOINT, reply: 1) == .ingress, "a reply leaving its server")
        #expect(direction(OSP_OBS_TO_ENDPOINT, reply: 1) == .egress, "a reply entering its client")
        #expect(direction(OSP_OBS_FROM_ENDPOINT, reply: 2) == .egress, "reply status unknown: the packet's way")
        // DNS flows take Retina's rule, on which the ACNS dashboards group: a query is EGRESS, a
        // response INGRESS, wherever seen (the message's own reply bit decides).
        let query = Self.dns(id: 7, response: false, name: "ledger.billing.svc.cluster.local", qtype: 1)
        let answer = Self.dns(id: 7, response: true, name: "ledger.billing.svc.cluster.local", qtype: 1)
        #expect(direction(OSP_OBS_TO_ENDPOINT, reply: 0, 17, payload: query) == .egress)
        #expect(direction(OSP_OBS_TO_ENDPOINT, reply: 1, 17, payload: answer) == .ingress)
        #expect(direction(OSP_OBS_FROM_ENDPOINT, reply: 0, 17, payload: answer) == .ingress)
        let drop = decoder.decode(
            RawEvent.packet(Self.client, 40000, Self.server, 80, protocol: 6, at: 2_000, drop: 11), interfaceName: nil)
        #expect(drop.trafficDirection == .unknown, "the enricher gives a drop its direction from the node's pods")
    }

    @Test(
        "an ICMP error is RELATED and never a reply, whichever end of its entry sent it; its direction is the packet's way"
    )
    func icmpErrors() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:])
        for (reply, observation, direction) in [
            (UInt8(0), OSP_OBS_FROM_ENDPOINT, TrafficDirection.egress), (1, OSP_OBS_FROM_ENDPOINT, .egress),
            (1, OSP_OBS_TO_ENDPOINT, .ingress),
        ] {
            let unreachable = decoder.decode(
                RawEvent.packet(
                    Self.server, 3, Self.client, 3, protocol: 1, reply: reply, observation: observation, at: 1),
                interfaceName: nil)
            #expect(unreachable.summary == "ICMPv4 DestinationUnreachable(Port)")
            #expect(unreachable.isReply == false && unreachable.traceReason == .related)
            #expect(unreachable.trafficDirection == direction)
        }
        let echoReply = decoder.decode(
            RawEvent.packet(Self.server, 0, Self.client, 0, protocol: 1, reply: 1, at: 2), interfaceName: nil)
        #expect(echoReply.isReply == true && echoReply.traceReason == .reply, "an echo reply is a reply")
    }

    @Test(
        "ICMP: the summary names the type, and the code where the type has named codes, as Cilium's parser writes them",
        arguments: [
            (1, 8, 0, "ICMPv4 EchoRequest"), (1, 0, 0, "ICMPv4 EchoReply"),
            (1, 3, 3, "ICMPv4 DestinationUnreachable(Port)"),
            (1, 3, 13, "ICMPv4 DestinationUnreachable(CommAdminProhibited)"),
            (1, 3, 99, "ICMPv4 DestinationUnreachable(Code: 99)"), (1, 11, 0, "ICMPv4 TimeExceeded(TTLExceeded)"),
            (1, 5, 2, "ICMPv4 Redirect(TOS+Net)"), (1, 8, 1, "ICMPv4 EchoRequest(Code: 1)"), (1, 42, 7, "ICMPv4 42(7)"),
            (58, 128, 0, "ICMPv6 EchoRequest"), (58, 1, 4, "ICMPv6 DestinationUnreachable(PortUnreachable)"),
            (58, 135, 0, "ICMPv6 NeighborSolicitation"), (58, 143, 0, "ICMPv6 143(0)"),
            (58, 3, 0, "ICMPv6 TimeExceeded(HopLimitExceeded)"), (58, 2, 0, "ICMPv6 PacketTooBig"),
        ] as [(UInt8, UInt16, UInt16, String)])
    func icmpSummaries(proto: UInt8, type: UInt16, code: UInt16, summary: String) {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:])
        let (source, destination) =
            proto == 1
            ? (Self.client, Self.server)
            : (
                [0xfd, 0, 0x10, 0x44, 0, 1] + [UInt8](repeating: 0, count: 9) + [4],
                [0xff, 2] + [UInt8](repeating: 0, count: 13) + [0x16]
            )
        let flow = decoder.decode(
            RawEvent.packet(source, type, destination, code, protocol: proto, at: 1_000), interfaceName: nil)
        #expect(flow.summary == summary)
    }

    @Test(
        "DNS answers: the summary words them as Cilium's L7 parser does (hubble observe's last column)",
        arguments: [
            (0, ["10.96.0.11"], [], 30, #"DNS Answer "10.96.0.11" TTL: 30 (Query frontend.shop.svc.cluster.local. A)"#),
            (
                0, ["10.0.0.1", "10.0.0.2"], ["a.example.", "b.example."], 5,
                #"DNS Answer "10.0.0.1,10.0.0.2" CNAMEs: "a.example.,b.example." TTL: 5 (Query frontend.shop.svc.cluster.local. A)"#
            ),
            (
                0, [], ["a.example."], 7,
                #"DNS Answer CNAMEs: "a.example." TTL: 7 (Query frontend.shop.svc.cluster.local. A)"#
            ),
            (0, [], [], 0, "DNS Answer  TTL: 0 (Query frontend.shop.svc.cluster.local. A)"),
            (3, [], [], 0, "DNS Answer RCode: Non-Existent Domain TTL: 0 (Query frontend.shop.svc.cluster.local. A)"),
            (2, [], [], 0, "DNS Answer RCode: Server Failure TTL: 0 (Query frontend.shop.svc.cluster.local. A)"),
        ] as [(Int, [String], [String], UInt32, String)])
    func dnsAnswerSummaries(rcode: Int, ips: [String], cnames: [String], ttl: UInt32, summary: String) {
        var flow = Fixtures.dnsResponse
        var dns = DNSInfo(query: "frontend.shop.svc.cluster.local.", isResponse: true, rcode: rcode, qtypes: ["A"])
        dns.ips = ips
        dns.cnames = cnames
        dns.ttl = ttl
        flow.dns = dns
        #expect(flow.summary == summary)
    }

    @Test("drops: DROPPED, Hubble's reason next to the kernel's, no reply status")
    func drops() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [11: "NETFILTER_DROP", 2: "NO_SOCKET"])
        let drop = decoder.decode(
            RawEvent.packet(Self.client, 40000, Self.server, 80, protocol: 6, flags: RawEvent.syn, at: 5, drop: 11),
            interfaceName: nil)
        #expect(drop.verdict == .dropped)
        #expect(drop.kernelDropReason == "NETFILTER_DROP")
        #expect(drop.dropReason == 133 && ProtoNames.dropReason(drop.dropReason) == "POLICY_DENIED")
        #expect(drop.isReply == nil)
        #expect(drop.ethernet == nil)
        #expect(drop.eventType == 1 && drop.eventSubType == 133)
        let noSocket = decoder.decode(
            RawEvent.packet(Self.client, 5000, Self.server, 9, protocol: 17, at: 6, drop: 2), interfaceName: nil)
        #expect(ProtoNames.dropReason(noSocket.dropReason) == "SOCKET_LOOKUP_FAILED")
        #expect(noSocket.kernelDropReason == "NO_SOCKET")
        #expect(drop.kernelDropLocation == nil, "a decoder told no way to name kernel addresses")
    }

    @Test("a drop names where the kernel freed it, each address looked up once; none where it cannot be named")
    func dropLocations() {
        let lookups = Lock<[UInt64]>([])
        var decoder = FlowDecoder(
            nodeName: "n", kernelDropReasons: [11: "NETFILTER_DROP"],
            kernelLocation: { address in
                lookups.withLock { $0.append(address) }
                return address == 0xffff_ffff_81f7_70ec ? "nf_hook_slow+0x9c/0xb0" : nil
            })
        func drop(at location: UInt64) -> Flow {
            decoder.decode(
                RawEvent.packet(Self.client, 40000, Self.server, 80, protocol: 6, at: 5, drop: 11, location: location),
                interfaceName: nil)
        }
        let first = drop(at: 0xffff_ffff_81f7_70ec)
        #expect(first.kernelDropLocation == "nf_hook_slow+0x9c/0xb0")
        #expect(first.ethernet == nil, "the location is not read as Ethernet addresses")
        #expect(drop(at: 0xffff_ffff_81f7_70ec).kernelDropLocation == "nf_hook_slow+0x9c/0xb0")
        #expect(drop(at: 0xffff_ffff_8000_0001).kernelDropLocation == nil)
        #expect(drop(at: 0xffff_ffff_8000_0001).kernelDropLocation == nil)
        #expect(drop(at: 0).kernelDropLocation == nil, "no location")
        #expect(lookups.withLock { $0 } == [0xffff_ffff_81f7_70ec, 0xffff_ffff_8000_0001], "each address once")
        let trace = decoder.decode(
            RawEvent.packet(Self.client, 40000, Self.server, 80, protocol: 6, at: 6), interfaceName: nil)
        #expect(trace.kernelDropLocation == nil && trace.ethernet != nil)
    }

    @Test("DNS: request and response flows with latency; an unanswered query becomes a flow")
    func dnsFlows() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:], dnsTimeout: 1)
        let dnsServer: [UInt8] = [10, 96, 0, 10]
        let query = Self.dns(id: 42, response: false, name: "frontend.shop.svc.cluster.local", qtype: 1)
        let request = decoder.decode(
            RawEvent.packet(Self.client, 53000, dnsServer, 53, protocol: 17, at: 10_000_000, payload: query),
            interfaceName: nil)
        #expect(request.isL7 && request.dns?.isResponse == false)
        #expect(request.summary == "DNS Query frontend.shop.svc.cluster.local. A")
        #expect(request.isReply == false)
        let answer = Self.dns(
            id: 42, response: true, name: "frontend.shop.svc.cluster.local", qtype: 1,
            answers: [(1, [10, 96, 0, 11], 5)])
        let response = decoder.decode(
            RawEvent.packet(
                dnsServer, 53, Self.client, 53000, protocol: 17, reply: 1, observation: OSP_OBS_TO_ENDPOINT,
                at: 10_400_000, payload: answer),
            interfaceName: nil)
        #expect(response.dns?.ips == ["10.96.0.11"])
        #expect(response.latencyNanoseconds == 400_000)
        #expect(response.summary == "DNS Answer \"10.96.0.11\" TTL: 5 (Query frontend.shop.svc.cluster.local. A)")

        let lonely = Self.dns(id: 43, response: false, name: "ledger.billing.svc.cluster.local", qtype: 1)
        _ = decoder.decode(
            RawEvent.packet(Self.client, 53001, [192, 0, 2, 53], 53, protocol: 17, at: 20_000_000, payload: lonely),
            interfaceName: nil)
        #expect(decoder.unansweredQueries(nowNs: 20_500_000).isEmpty, "not yet: the timeout is 1 s")
        let unanswered = decoder.unansweredQueries(nowNs: 1_020_000_001)
        #expect(unanswered.count == 1)
        #expect(unanswered.first?.summary == "DNS Query ledger.billing.svc.cluster.local. A (no response)")
        #expect(decoder.unansweredQueries(nowNs: 3_000_000_000).isEmpty, "reported once")
    }

    @Test(
        "a DNS server that stops answering: each query lapses once, in deadline order; answered and re-asked ones right"
    )
    func dnsOutage() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:], dnsTimeout: 1)
        let dnsServer: [UInt8] = [10, 96, 0, 10]
        func query(id: UInt16, port: UInt16, at ns: UInt64) {
            let bytes = Self.dns(id: id, response: false, name: "q\(id).shop.svc.cluster.local", qtype: 1)
            _ = decoder.decode(
                RawEvent.packet(Self.client, port, dnsServer, 53, protocol: 17, at: ns, payload: bytes),
                interfaceName: nil)
        }
        // 20,000 queries from 1 s on, a millisecond apart but out of order within each pair (the
        // ring interleaves CPUs); every tenth is answered.
        for index in 0..<20_000 {
            let at = 1_000_000_000 + UInt64(index ^ 1) * 1_000_000
            query(id: UInt16(index), port: UInt16(10_000 + index % 20_000), at: at)
            if index % 10 == 0 {
                let answer = Self.dns(
                    id: UInt16(index), response: true, name: "q\(index).shop.svc.cluster.local", qtype: 1,
                    answers: [(1, [10, 96, 0, 11], 5)])
                _ = decoder.decode(
                    RawEvent.packet(
                        dnsServer, 53, Self.client, UInt16(10_000 + index % 20_000), protocol: 17, reply: 1,
                        observation: OSP_OBS_TO_ENDPOINT, at: at + 100_000, payload: answer),
                    interfaceName: nil)
            }
        }
        var lapsed: [Flow] = []
        var now: UInt64 = 1_000_000_000
        while now < 30_000_000_000 {
            now += 250_000_000
            // The same client port and ID asked again long after it lapsed: a second flow.
            if now == 15_000_000_000 { query(id: 1, port: 10_001, at: now) }
            lapsed += decoder.unansweredQueries(nowNs: now)
        }
        #expect(lapsed.count == 18_001)
        #expect(lapsed.allSatisfy { $0.dns?.unanswered == true && $0.summary.hasSuffix("(no response)") })
        #expect(zip(lapsed, lapsed.dropFirst()).allSatisfy { $0.time <= $1.time }, "in the order they lapsed")
        let names = lapsed.compactMap { $0.dns?.query }
        #expect(Set(names).count == 18_000, "each once")
        #expect(!names.contains("q10.shop.svc.cluster.local."), "an answered query never lapses")
        #expect(names.filter { $0 == "q1.shop.svc.cluster.local." }.count == 2, "asked twice, lapsed twice")
        #expect(decoder.unansweredQueries(nowNs: .max / 2).isEmpty)
    }

    @Test(
        "between two pods of one node reported only where packets enter them: the query entering the server and the answer entering the client are matched, as are a SYN and its SYN-ACK; a query whose answer is reported at the querier (a Service between them) waits for nothing where it entered"
    )
    func onlyWhereItEnters() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:], dnsTimeout: 1)
        let both = UInt8(OSP_QUIET_SENDS.rawValue | OSP_QUIET_PEER.rawValue)
        let coredns: [UInt8] = [10, 244, 1, 2]
        let query = Self.dns(id: 7, response: false, name: "frontend.shop.svc.cluster.local", qtype: 1)
        // The query entering coredns's veth (index 9), the answer entering the client's (7).
        let request = decoder.decode(
            RawEvent.packet(
                Self.client, 53000, coredns, 53, protocol: 17, observation: OSP_OBS_TO_ENDPOINT, at: 10_000_000,
                payload: query, ifindex: 9, quiet: both),
            interfaceName: nil)
        #expect(request.departureUnreported && request.reportsDeparture)
        let answer = Self.dns(
            id: 7, response: true, name: "frontend.shop.svc.cluster.local", qtype: 1,
            answers: [(1, [10, 96, 0, 11], 5)])
        let response = decoder.decode(
            RawEvent.packet(
                coredns, 53, Self.client, 53000, protocol: 17, reply: 1, observation: OSP_OBS_TO_ENDPOINT,
                at: 10_300_000, payload: answer, ifindex: 7, quiet: both),
            interfaceName: nil)
        #expect(response.latencyNanoseconds == 300_000)
        _ = decoder.decode(
            RawEvent.packet(
                Self.client, 40000, Self.server, 80, protocol: 6, flags: RawEvent.syn,
                observation: OSP_OBS_TO_ENDPOINT, at: 20_000_000, ifindex: 9, quiet: both),
            interfaceName: nil)
        let synAck = decoder.decode(
            RawEvent.packet(
                Self.server, 80, Self.client, 40000, protocol: 6, flags: RawEvent.syn | RawEvent.ack, reply: 1,
                observation: OSP_OBS_TO_ENDPOINT, at: 20_100_000, ifindex: 7, quiet: both),
            interfaceName: nil)
        #expect(synAck.latencyNanoseconds == 100_000)
        // Through kube-dns: coredns's veth does not report its answer (the client's reports it
        // entering), and the client's reported the query leaving: nothing waits at coredns's.
        let viaService = decoder.decode(
            RawEvent.packet(
                Self.client, 53001, coredns, 53, protocol: 17, observation: OSP_OBS_TO_ENDPOINT, at: 30_000_000,
                payload: Self.dns(id: 8, response: false, name: "ledger.billing.svc.cluster.local", qtype: 1),
                ifindex: 9, quiet: UInt8(OSP_QUIET_SENDS.rawValue)),
            interfaceName: nil)
        #expect(!viaService.departureUnreported && !viaService.reportsDeparture)
        #expect(decoder.unansweredQueries(nowNs: 5_000_000_000).isEmpty)
    }

    @Test(
        "between two pods of one node, a query whose source port the node's NAT changed is matched with its answer to the client's own port by addresses, DNS ID and name; an answer for another name is not, and an unmatched query still lapses"
    )
    func sourcePortChangedByNAT() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:], dnsTimeout: 1)
        let both = UInt8(OSP_QUIET_SENDS.rawValue | OSP_QUIET_PEER.rawValue)
        let coredns: [UInt8] = [10, 244, 1, 2]
        func query(_ name: String, id: UInt16, port: UInt16, at ns: UInt64) {
            // Entering coredns's veth (index 9) from the port the node's NAT gave it.
            _ = decoder.decode(
                RawEvent.packet(
                    Self.client, port, coredns, 53, protocol: 17, observation: OSP_OBS_TO_ENDPOINT, at: ns,
                    payload: Self.dns(id: id, response: false, name: name, qtype: 1), ifindex: 9, quiet: both),
                interfaceName: nil)
        }
        func answer(_ name: String, id: UInt16, port: UInt16, at ns: UInt64) -> Flow {
            // Entering the client's veth (7), to its socket's port.
            decoder.decode(
                RawEvent.packet(
                    coredns, 53, Self.client, port, protocol: 17, reply: 1, observation: OSP_OBS_TO_ENDPOINT, at: ns,
                    payload: Self.dns(
                        id: id, response: true, name: name, qtype: 1, answers: [(1, [10, 96, 0, 11], 5)]),
                    ifindex: 7, quiet: both),
                interfaceName: nil)
        }
        // The socket's port 47796, remapped to 55691 on the way to coredns.
        query("frontend.shop.svc.cluster.local", id: 7, port: 55691, at: 10_000_000)
        #expect(
            answer("frontend.shop.svc.cluster.local", id: 7, port: 47796, at: 10_400_000).latencyNanoseconds == 400_000)
        // The same ID from the same client, but another name: not that query's answer.
        query("ledger.billing.svc.cluster.local", id: 8, port: 55692, at: 20_000_000)
        #expect(answer("checkout.shop.svc.cluster.local", id: 8, port: 47797, at: 20_300_000).latencyNanoseconds == 0)
        let lapsed = decoder.unansweredQueries(nowNs: 2_000_000_000)
        #expect(lapsed.map { $0.dns?.query } == ["ledger.billing.svc.cluster.local."])
        // Two waiting under one key but their ports: each answer finds its own query.
        query("a.shop.svc.cluster.local", id: 9, port: 50001, at: 3_000_000_000)
        query("b.shop.svc.cluster.local", id: 9, port: 50002, at: 3_000_100_000)
        #expect(answer("a.shop.svc.cluster.local", id: 9, port: 50001, at: 3_000_500_000).latencyNanoseconds == 500_000)
        #expect(answer("b.shop.svc.cluster.local", id: 9, port: 40002, at: 3_000_600_000).latencyNanoseconds == 500_000)
        #expect(decoder.unansweredQueries(nowNs: 5_000_000_000).isEmpty)
    }

    @Test("destination_names / source_names: what a client resolved names its flows to that address, for the TTL")
    func namesFromDNS() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:])
        let dnsServer: [UInt8] = [10, 96, 0, 10]
        let vip: [UInt8] = [10, 96, 0, 11]
        let other: [UInt8] = [10, 244, 1, 9]
        func answer(_ name: String, _ rcode: UInt8 = 0, ttl: UInt32, to client: [UInt8], at ns: UInt64) {
            let bytes = Self.dns(
                id: 1, response: true, rcode: rcode, name: name, qtype: 1,
                answers: rcode == 0 ? [(UInt16(1), vip, ttl)] : [])
            _ = decoder.decode(
                RawEvent.packet(
                    dnsServer, 53, client, 53000, protocol: 17, reply: 1, observation: OSP_OBS_TO_ENDPOINT, at: ns,
                    payload: bytes),
                interfaceName: nil)
        }
        func syn(from client: [UInt8], at ns: UInt64) -> Flow {
            decoder.decode(
                RawEvent.packet(client, 41000, vip, 80, protocol: 6, flags: RawEvent.syn, at: ns), interfaceName: nil)
        }
        #expect(syn(from: Self.client, at: 1_000_000_000).destinationNames.isEmpty, "nothing resolved yet")
        answer("ledger.billing.svc.cluster.local", ttl: 5, to: Self.client, at: 2_000_000_000)
        answer("ledger.billing", 3, ttl: 5, to: Self.client, at: 2_000_000_000)  // NXDOMAIN teaches nothing
        answer("billing-api.example.com", ttl: 300, to: Self.client, at: 2_500_000_000)
        let out = syn(from: Self.client, at: 3_000_000_000)
        #expect(out.destinationNames == ["ledger.billing.svc.cluster.local", "billing-api.example.com"])
        #expect(out.sourceNames.isEmpty)
        let back = decoder.decode(
            RawEvent.packet(
                vip, 80, Self.client, 41000, protocol: 6, flags: RawEvent.syn | RawEvent.ack, reply: 1,
                at: 3_100_000_000),
            interfaceName: nil)
        #expect(back.sourceNames == out.destinationNames && back.destinationNames.isEmpty)
        #expect(syn(from: other, at: 3_000_000_000).destinationNames.isEmpty, "another client did not ask")
        // TTLs under a minute count as a minute; then the names are forgotten.
        decoder.forgetStale(nowNs: 61_000_000_000)
        #expect(syn(from: Self.client, at: 61_000_000_000).destinationNames.count == 2)
        decoder.forgetStale(nowNs: 62_100_000_000)
        #expect(syn(from: Self.client, at: 62_100_000_000).destinationNames == ["billing-api.example.com"])
        decoder.forgetStale(nowNs: 303_000_000_000)
        #expect(syn(from: Self.client, at: 303_000_000_000).destinationNames.isEmpty)
    }

    @Test("a wildcard domain asked for 1,000 names: a flow carries the latest 32, not a list that grows")
    func namesPerAddressBounded() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:])
        let dnsServer: [UInt8] = [10, 96, 0, 10]
        let cdn: [UInt8] = [198, 51, 100, 7]
        for index in 0..<1000 {
            let bytes = Self.dns(
                id: UInt16(index), response: true, name: "r\(index).wild.example.com", qtype: 1,
                answers: [(1, cdn, 300)])
            _ = decoder.decode(
                RawEvent.packet(
                    dnsServer, 53, Self.client, 53000, protocol: 17, reply: 1, observation: OSP_OBS_TO_ENDPOINT,
                    at: 1_000_000_000 + UInt64(index) * 1_000_000, payload: bytes),
                interfaceName: nil)
        }
        let flow = decoder.decode(
            RawEvent.packet(Self.client, 41000, cdn, 443, protocol: 6, flags: RawEvent.syn, at: 3_000_000_000),
            interfaceName: nil)
        #expect(flow.destinationNames == (968..<1000).map { "r\($0).wild.example.com" })
    }

    @Test("unanswered SYNs are forgotten after the timeout, even one stamped near the clock's end (fuzzing found it)")
    func staleSYNs() {
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [:], dnsTimeout: 1)
        func syn(port: UInt16, at ns: UInt64) -> Flow {
            decoder.decode(
                RawEvent.packet(Self.client, port, Self.server, 80, protocol: 6, flags: RawEvent.syn, at: ns),
                interfaceName: nil)
        }
        func synAck(port: UInt16, at ns: UInt64) -> Flow {
            decoder.decode(
                RawEvent.packet(
                    Self.server, 80, Self.client, port, protocol: 6, flags: RawEvent.syn | RawEvent.ack, reply: 1,
                    at: ns),
                interfaceName: nil)
        }
        for port in 0..<5000 { _ = syn(port: UInt16(10_000 + port), at: 1_000_000_000) }
        _ = syn(port: 9000, at: UInt64.max - 10)
        _ = syn(port: 9001, at: 2_500_000_000)
        decoder.forgetStale(nowNs: 3_000_000_000)
        #expect(synAck(port: 10_000, at: 3_000_000_000).latencyNanoseconds == 0, "an old SYN is forgotten")
        #expect(synAck(port: 9001, at: 3_000_000_000).latencyNanoseconds == 500_000_000, "a recent one is kept")
        #expect(synAck(port: 9000, at: UInt64.max - 5).latencyNanoseconds == 5)
    }

    @Test("TCP flag bits mean what the datapath's (osprey_abi.h) mean")
    func tcpFlagBits() {
        let bits: [(TCPFlags, osp_tcp_flag_bit)] = [
            (.fin, OSP_TCPF_FIN), (.syn, OSP_TCPF_SYN), (.rst, OSP_TCPF_RST), (.psh, OSP_TCPF_PSH),
            (.ack, OSP_TCPF_ACK), (.urg, OSP_TCPF_URG), (.ece, OSP_TCPF_ECE), (.cwr, OSP_TCPF_CWR),
        ]
        for (swift, c) in bits { #expect(UInt32(swift.rawValue) == c.rawValue, "\(swift)") }
    }

    @Test("IPv6 text follows RFC 5952")
    func ipv6Text() {
        #expect(
            IPText.ipv6([0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 2] + Array(repeating: 0, count: 7) + [3])
                == "fd00:10:244:2::3")
        #expect(IPText.ipv6(Array(repeating: 0, count: 16)) == "::")
        #expect(IPText.ipv6([0xfe, 0x80] + Array(repeating: 0, count: 13) + [1]) == "fe80::1")
    }
}
