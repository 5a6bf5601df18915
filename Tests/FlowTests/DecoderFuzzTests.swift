import CDatapathABI
import FlowTestKit
import Testing

@testable import FlowDecoder
@testable import Flows

/// Malformed and truncated input: the decoders must neither crash nor allocate without bound.
/// Deterministic (seeded) so a failure reproduces.
@Suite("Decoder fuzzing")
struct DecoderFuzzTests {
    @Test("random and mutated DNS messages parse or are rejected, with bounded output")
    func dnsMessages() {
        var random = SeededRandom(seed: 0x05b7)
        let valid = FlowDecodingTests.dns(
            id: 1, response: true, name: "frontend.shop.svc.cluster.local", qtype: 1,
            answers: [(1, [10, 96, 0, 11], 30), (5, [0xc0, 12], 10)])
        for round in 0..<50_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            } else {
                bytes = Array(valid.prefix(Int.random(in: 0...valid.count, using: &random)))
                for _ in 0..<Int.random(in: 0...4, using: &random) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            }
            if let message = DNSMessage(bytes) {
                // Answers cannot outnumber what the bytes can hold (each takes at least 11 bytes).
                #expect(message.addresses.count + message.cnames.count <= bytes.count / 11 + 1)
                // RFC 1035 bounds a name to 255 bytes on the wire; presentation format writes a
                // byte as at most 4 (`\DDD`), a label's length byte as its dot.
                #expect(message.query.utf8.count <= 4 * 255, "a name of at most 255 bytes")
                #expect(message.query.hasSuffix("."))
            }
        }
    }

    @Test("random raw events decode to well-formed flows: addresses of the event's family, a known summary")
    func rawEvents() {
        var random = SeededRandom(seed: 0x0f1a)
        var decoder = FlowDecoder(nodeName: "n", kernelDropReasons: [2: "NO_SOCKET"], dnsTimeout: 0.001)
        for _ in 0..<20_000 {
            var event = osp_event()
            withUnsafeMutableBytes(of: &event) { raw in
                for index in raw.indices { raw[index] = UInt8.random(in: 0...255, using: &random) }
            }
            // Keep the lengths the kernel guarantees; everything else is arbitrary.
            event.payload_len %= UInt16(OSP_DNS_SNAPLEN + 1)
            event.tuple.family = Bool.random(using: &random) ? 4 : 6
            event.tuple.sport = Bool.random(using: &random) ? 53 : event.tuple.sport
            let flow = decoder.decode(event, interfaceName: nil)
            let v6 = event.tuple.family == 6
            #expect(flow.ipVersion == (v6 ? 2 : 1))
            #expect(flow.sourceIP.contains(":") == v6 && flow.destinationIP.contains(":") == v6)
            #expect(IPText.bytes(flow.sourceIP)?.count == (v6 ? 16 : 4))
            let summaries = ["TCP Flags:", "UDP", "ICMPv4 ", "ICMPv6 ", "IP protocol ", "DNS Query ", "DNS Answer "]
            #expect(summaries.contains { flow.summary.hasPrefix($0) }, "\(flow.summary)")
            #expect(flow.verdict == (event.kind == UInt8(OSP_EVENT_DROP.rawValue) ? .dropped : .forwarded))
        }
        _ = decoder.unansweredQueries(nowNs: .max / 2)
    }
}
