import FlowTestKit
import Foundation
import HubbleAPI
import HubbleTransport
import HubbleWire
import Testing

/// Field masks, addresses and durations parsed and applied directly.
@Suite("Field masks, addresses, durations")
struct WireFormatTests {
    @Test("a field mask keeps exactly the named fields, nested ones inside their message")
    func fieldMask() throws {
        let flow = FlowMessage.make(Fixtures.syn)
        let mask = try #require(try FlowFieldMask(paths: ["time", "source.pod_name", "IP", "l4"]))
        let masked = mask.apply(flow)
        #expect(masked.time == flow.time)
        #expect(masked.source.podName == "loadgen-7d9f-abcde")
        #expect(masked.source.namespace.isEmpty && masked.source.labels.isEmpty)
        #expect(masked.ip == flow.ip && masked.l4 == flow.l4)
        #expect(!masked.hasDestination && masked.nodeName.isEmpty && masked.verdict == .unknown)
        #expect(try FlowFieldMask(paths: []) == nil, "an empty mask keeps everything")
    }

    @Test(
        "a mask path that is not a field of flow.Flow is refused in one sentence",
        arguments: ["sources", "source.pod", "IP.", ""])
    func badMask(_ path: String) {
        #expect(throws: FlowFieldMask.MaskError.self) { _ = try FlowFieldMask(paths: [path]) }
    }

    @Test(
        "addresses as users write them",
        arguments: [
            ("localhost:4245", HubbleAddress.Endpoint.tcp(host: "localhost", port: 4245), false),
            (":4244", .tcp(host: "", port: 4244), false),
            ("[fd00::1]:4244", .tcp(host: "fd00::1", port: 4244), false),
            ("tls://relay.example:443", .tcp(host: "relay.example", port: 443), true),
            ("relay", .tcp(host: "relay", port: 4245), false),
            ("unix:///var/run/osprey/hubble.sock", .unix(path: "/var/run/osprey/hubble.sock"), false),
        ])
    func addresses(_ text: String, _ endpoint: HubbleAddress.Endpoint, _ tls: Bool) throws {
        let address = try HubbleAddress(parsing: text, defaultPort: 4245)
        #expect(address.endpoint == endpoint && address.tls == tls)
    }

    @Test(
        "addresses that are none are refused", arguments: ["localhost:0", "host:99999", "unix://relative", "a/b:1", ""])
    func badAddresses(_ text: String) {
        #expect(throws: AddressError.self) { _ = try HubbleAddress(parsing: text, defaultPort: 4245) }
    }

    @Test(
        "Go durations",
        arguments: [
            ("500ms", Duration.milliseconds(500)), ("5s", .seconds(5)), ("1h43m", .seconds(6180)),
            ("1.5s", .milliseconds(1500)), ("250us", .microseconds(250)),
        ])
    func durations(_ text: String, _ expected: Duration) {
        #expect(Durations.parse(text) == expected)
    }

    @Test("not durations", arguments: ["", "5", "s", "5x", "1e400h", "-"])
    func badDurations(_ text: String) {
        #expect(Durations.parse(text) == nil)
    }
}
