import FlowTestKit
import Flows
import Foundation
import HubbleAPI
import HubbleWire
import Testing

@testable import FlowPrinter
@testable import OspreyCLI

/// Golden output of each `osprey observe -o` format on the fixture flows, in UTC.
@Suite("osprey observe output formats")
struct OutputFormatTests {
    func render(_ format: FlowPrinter.Format, nodeName: Bool = false, color: Bool = false) -> String {
        var options = FlowPrinter.Options()
        options.format = format
        options.timeZone = TimeZone(identifier: "UTC")!
        options.printNodeName = nodeName
        options.color = color
        var printer = FlowPrinter(options: options)
        var lines: [String] = []
        for flow in Fixtures.all {
            let message = FlowMessage.make(flow)
            let response = Observer_GetFlowsResponse.with {
                $0.flow = message
                $0.nodeName = message.nodeName
                $0.time = message.time
            }
            if let line = printer.render(response) { lines.append(line) }
        }
        if let rest = printer.finish() { lines.append(rest) }
        return lines.joined(separator: "\n")
    }

    @Test("compact: hubble's line layout, arrows by is_reply, identities, types and summaries")
    func compact() {
        let id = { (endpoint: Endpoint) in endpoint.identity }
        #expect(
            render(.compact) == """
                Jan 15 08:00:00.250: shop/loadgen-7d9f-abcde:40000 (ID:\(id(Fixtures.loadgen))) -> shop/frontend-5c8b-fghij:80 (ID:\(id(Fixtures.frontend))) from-endpoint FORWARDED (TCP Flags: SYN)
                Jan 15 08:00:00.251: shop/loadgen-7d9f-abcde:40000 (ID:\(id(Fixtures.loadgen))) <- shop/frontend-5c8b-fghij:80 (ID:\(id(Fixtures.frontend))) to-endpoint FORWARDED (TCP Flags: SYN, ACK)
                Jan 15 08:00:00.252: shop/loadgen-7d9f-abcde:53000 (ID:\(id(Fixtures.loadgen))) -> kube-system/coredns-6f4d-klmno:53 (ID:\(id(Fixtures.coredns))) dns-request datapath FORWARDED (DNS Query catalog.shop.svc.cluster.local. A)
                Jan 15 08:00:00.253: shop/loadgen-7d9f-abcde:53000 (ID:\(id(Fixtures.loadgen))) <- kube-system/coredns-6f4d-klmno:53 (ID:\(id(Fixtures.coredns))) dns-response datapath FORWARDED (DNS Answer RCode: Non-Existent Domain TTL: 0 (Query catalog.shop.svc.cluster.local. A))
                Jan 15 08:00:01.250: shop/untrusted-9a8b-pqrst:41000 (ID:\(id(Fixtures.untrusted))) <> billing/ledger-4e5f-uvwxy:80 (ID:\(id(Fixtures.ledger))) Policy denied DROPPED (TCP Flags: SYN)
                Jan 15 08:00:02.250: shop/loadgen-7d9f-abcde (ID:\(id(Fixtures.loadgen))) -> 192.0.2.80 (world) from-endpoint FORWARDED (ICMPv4 EchoRequest)
                """)
    }

    @Test("compact with --print-node-name and --color always")
    func nodeNameAndColor() {
        let lines = render(.compact, nodeName: true, color: true).split(separator: "\n")
        #expect(lines[4].hasPrefix("Jan 15 08:00:01.250 [osp-node-2]: \u{1b}[36mshop/untrusted-9a8b-pqrst\u{1b}[0m:"))
        #expect(lines[4].contains("\u{1b}[31mDROPPED\u{1b}[0m"))
        #expect(lines[0].contains("\u{1b}[32mFORWARDED\u{1b}[0m"))
        #expect(lines[0].contains(":\u{1b}[33m40000\u{1b}[0m"))
    }

    @Test("dict: right-aligned keys, records separated by dashes")
    func dict() {
        let text = render(.dict)
        let records = text.components(separatedBy: "\n------------\n")
        #expect(records.count == 6)
        #expect(
            records[4] == """
                  TIMESTAMP: Jan 15 08:00:01.250
                     SOURCE: shop/untrusted-9a8b-pqrst:41000
                DESTINATION: billing/ledger-4e5f-uvwxy:80
                       TYPE: Policy denied
                    VERDICT: DROPPED
                    SUMMARY: TCP Flags: SYN
                """)
        // As hubble: only the compact line turns a reply around; dict shows the flow as it is.
        #expect(
            records[1].contains("     SOURCE: shop/frontend-5c8b-fghij:80\nDESTINATION: shop/loadgen-7d9f-abcde:40000"))
    }

    @Test("table: one header, columns padded by three spaces")
    func table() {
        let lines = render(.table).split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        // SOURCE and DESTINATION are as wide as "kube-system/coredns-6f4d-klmno:53" (the DNS
        // answer's source: a table shows replies as they are), TYPE as "dns-response datapath".
        #expect(lines[0].hasPrefix("TIMESTAMP             SOURCE                              DESTINATION"))
        #expect(
            lines[5].contains("billing/ledger-4e5f-uvwxy:80        Policy denied           DROPPED     TCP Flags: SYN"))
        #expect(
            lines[2].contains("shop/frontend-5c8b-fghij:80         shop/loadgen-7d9f-abcde:40000"), "a reply as it is")
    }

    @Test("json/jsonpb: one GetFlowsResponse per line with proto field names that parses back to the same flow")
    func json() throws {
        let lines = render(.jsonpb).split(separator: "\n").map(String.init)
        #expect(lines.count == 6)
        let drop = try FlowJSONLines.parse(lines[4])
        #expect(drop.nodeName == "osp-node-2")
        #expect(drop.flow.verdict == .dropped)
        #expect(drop.flow.dropReasonDesc == .policyDenied)
        #expect(!drop.flow.hasIsReply)
        #expect(
            FlowExtensions.fields(of: drop.flow) == [
                FlowExtensions.kernelDropReason: "NETFILTER_DROP",
                FlowExtensions.kernelDropLocation: "nf_hook_slow+0x9c/0x120",
            ])
        // Any keeps its value as bytes: compare the extension by its fields (above), the rest whole.
        var parsed = drop.flow
        var made = FlowMessage.make(Fixtures.drop)
        parsed.clearExtensions()
        made.clearExtensions()
        #expect(parsed == made)
        #expect(lines[4].contains(#""drop_reason_desc":"POLICY_DENIED""#))
        #expect(lines[4].contains(#""node_name":"osp-node-2""#))
        // A well-known type: clients that know only the upstream protos print it too.
        #expect(
            lines[4].contains(
                #""extensions":{"@type":"type.googleapis.com/google.protobuf.Struct","value":{"kernel_drop_location":"nf_hook_slow+0x9c/0x120","kernel_drop_reason":"NETFILTER_DROP"}}"#
            ))
        let response = try FlowJSONLines.parse(lines[3])
        #expect(response.flow.l7.dns.rcode == 3)
        #expect(response.flow.l7.latencyNs == 80_000)
        #expect(lines[3].contains(#""latency_ns":"80000""#))
        // The handshake round trip of an L3/L4 flow is no L7 record: hubble would print "l7-unknown_l7_type".
        let synAck = try FlowJSONLines.parse(lines[1])
        #expect(!synAck.flow.hasL7 && synAck.flow.type == .l3L4)
        #expect(FlowExtensions.fields(of: synAck.flow)[FlowExtensions.handshakeLatency] == "250000")
        #expect(lines[0].contains(#""IP":{"source":"10.244.1.4","destination":"10.244.2.2","ipVersion":"IPv4"}"#))
        #expect(lines[0].contains(#""is_reply":false"#))
        // Go's protojson order (as the .proto declares the fields, not by number), as hubble prints it.
        #expect(
            lines[0].hasPrefix(
                #"{"flow":{"time":"2027-01-15T08:00:00.250Z","uuid":"00000000-0000-4000-8000-000000000001","emitter":{"name":"Osprey","version":"\#(OspreyVersion.current)"},"verdict":"FORWARDED","#
            ))
        #expect(lines[0].hasSuffix(#""node_name":"osp-node-1","time":"2027-01-15T08:00:00.250Z"}"#))
        // Map entries sorted, HTML characters escaped, as Go's encoder writes them.
        #expect(
            GoJSONLayout.relayout(#"{"b":"<x>","a":{"z":1,"y":2}}"#, as: "google.protobuf.Struct")
                == #"{"a":{"z":1,"y":2},"b":"\u003cx\u003e"}"#)
        #expect(lines[0].contains(#""time":"2027-01-15T08:00:00.250Z""#))
    }

    @Test("lost events print as hubble's EVENTS LOST line")
    func lostEvents() {
        var options = FlowPrinter.Options()
        options.timeZone = TimeZone(identifier: "UTC")!
        var printer = FlowPrinter(options: options)
        let line = printer.render(
            .with {
                $0.lostEvents = .with {
                    $0.source = .hubbleRingBuffer
                    $0.numEventsLost = 12
                    $0.last = FlowMessage.timestamp(Fixtures.start)
                }
            })
        #expect(line == "Jan 15 08:00:00.250 EVENTS LOST: HUBBLE_RING_BUFFER CPU(0) 12")
    }

    @Test("lost events in dict and table: a record and a row, as hubble lays them out")
    func lostEventsLaidOut() {
        let lost = Observer_GetFlowsResponse.with {
            $0.nodeName = "osp-node-1"
            $0.lostEvents = .with {
                $0.source = .perfEventRingBuffer
                $0.numEventsLost = 7
                $0.cpu = .init(1)
                $0.last = FlowMessage.timestamp(Fixtures.start)
            }
        }
        var options = FlowPrinter.Options()
        options.timeZone = TimeZone(identifier: "UTC")!
        options.format = .dict
        var dict = FlowPrinter(options: options)
        let record = """
              TIMESTAMP: Jan 15 08:00:00.250
                 SOURCE: PERF_EVENT_RING_BUFFER
                   TYPE: EVENTS LOST
                VERDICT: \("")
                SUMMARY: CPU(1) - 7
            """
        #expect(dict.render(lost) == record)
        #expect(dict.render(lost) == "------------\n" + record)

        options.format = .table
        options.printNodeName = true
        var table = FlowPrinter(options: options)
        #expect(table.render(lost) == nil, "a row of the table, printed at its end")
        #expect(
            table.finish() == """
                TIMESTAMP             NODE         SOURCE                   DESTINATION   TYPE          VERDICT   SUMMARY
                Jan 15 08:00:00.250   osp-node-1   PERF_EVENT_RING_BUFFER                 EVENTS LOST             CPU(1) - 7
                """)
    }

    @Test("a relay's node status as hubble writes it to stderr: by format, only unavailable and failing nodes")
    func nodeStatus() throws {
        func status(
            _ state: Relay_NodeState, _ names: [String], _ message: String = ""
        )
            -> Observer_GetFlowsResponse
        {
            .with {
                $0.nodeName = "osp-relay"
                $0.time = FlowMessage.timestamp(Fixtures.start)
                $0.nodeStatus = .with {
                    $0.stateChange = state
                    $0.nodeNames = names
                    $0.message = message
                }
            }
        }
        var options = FlowPrinter.Options()
        options.timeZone = TimeZone(identifier: "UTC")!
        var compact = FlowPrinter(options: options)
        #expect(
            compact.renderStatus(status(.nodeUnavailable, ["osp-node-2", "osp-node-3"]))
                == "Jan 15 08:00:00.250 [osp-relay]: 2 nodes are unavailable: osp-node-2, osp-node-3")
        #expect(
            compact.renderStatus(status(.nodeError, ["osp-node-2"], "dial \"10.0.0.2:4244\"\tfailed"))
                == #"Jan 15 08:00:00.250 [osp-relay]: Error "dial \"10.0.0.2:4244\"\tfailed" on 1 nodes: osp-node-2"#)
        // hubble shows these only with --debug.
        #expect(compact.renderStatus(status(.nodeConnected, ["osp-node-1"])) == nil)
        #expect(compact.renderStatus(status(.nodeGone, ["osp-node-1"])) == nil)
        var debugOptions = options
        debugOptions.debug = true
        var debug = FlowPrinter(options: debugOptions)
        #expect(
            debug.renderStatus(status(.nodeConnected, ["osp-node-1", "osp-node-2"]))
                == "Jan 15 08:00:00.250 [osp-relay]: Receiving flows from 2 nodes: osp-node-1, osp-node-2")
        #expect(
            debug.renderStatus(status(.nodeGone, ["osp-node-3"]))
                == "Jan 15 08:00:00.250 [osp-relay]: 1 nodes removed from cluster: osp-node-3")
        // A long list is cut after about 50 characters: three names of 11 (13 with ", ") fit.
        let many = (1...12).map { "osp-node-" + ($0 < 10 ? "0\($0)" : "\($0)") }
        #expect(
            compact.renderStatus(status(.nodeUnavailable, many))
                == "Jan 15 08:00:00.250 [osp-relay]: 12 nodes are unavailable: osp-node-01, osp-node-02, osp-node-03 (and 9 more)"
        )

        // dict: a record among the flows' records (a separator once anything was printed).
        options.format = .dict
        var dict = FlowPrinter(options: options)
        let unavailable = """
              TIMESTAMP: Jan 15 08:00:00.250
                  STATE: NODE_UNAVAILABLE
                  NODES: osp-node-2
                MESSAGE: N/A
            """
        #expect(dict.renderStatus(status(.nodeUnavailable, ["osp-node-2"])) == unavailable)
        #expect(
            dict.renderStatus(status(.nodeError, ["osp-node-2"], "refused"))
                == "------------\n"
                + unavailable.replacingOccurrences(of: "NODE_UNAVAILABLE", with: "NODE_ERROR")
                .replacingOccurrences(of: "N/A", with: #""refused""#))
        let flow = FlowMessage.make(Fixtures.all[0])
        #expect(dict.render(.with { $0.flow = flow })?.hasPrefix("------------\n  TIMESTAMP:") == true)

        // jsonpb: the response itself, one line.
        options.format = .jsonpb
        var json = FlowPrinter(options: options)
        let rendered = json.renderStatus(status(.nodeUnavailable, ["osp-node-2"]))
        let line = try #require(rendered)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let nodeStatus = try #require(object["node_status"] as? [String: Any])
        #expect(nodeStatus["state_change"] as? String == "NODE_UNAVAILABLE")
        #expect(
            nodeStatus["node_names"] as? [String] == ["osp-node-2"] && object["node_name"] as? String == "osp-relay")
    }

    @Test("status -o compact|dict|table|json: hubble's layouts, N/A for what the server did not report")
    func statusLayouts() throws {
        let relay = Observer_ServerStatusResponse.with {
            $0.numFlows = 12_288
            $0.maxFlows = 12_285
            $0.seenFlows = 1_234_567
            $0.flowsRate = 77.849
            $0.uptimeNs = 3_723_500_000_000
            $0.numConnectedNodes = .init(2)
            $0.numUnavailableNodes = .init(3)
            $0.unavailableNodes = ["osp-node-4", "osp-node-3"]
            $0.version = "osprey-relay 0.2.0"
        }
        #expect(
            StatusCommand.render(relay, server: "unix:///run/h.sock") == """
                Healthcheck (via unix:///run/h.sock): Ok
                Current/Max Flows: 12,288/12,285 (100.02%)
                Flows/s: 77.85
                Connected Nodes: 2/5
                Unavailable Nodes: 3
                  - osp-node-3
                  - osp-node-4
                  - and 1 more...
                """)
        #expect(
            StatusCommand.render(relay, server: "", output: "dict") == """
                          NUM FLOWS: 12,288
                          MAX FLOWS: 12,285
                         SEEN FLOWS: 1,234,567
                   FLOWS PER SECOND: 77.85
                             UPTIME: 1h2m3.5s
                NUM CONNECTED NODES: 2
                 NUM UNAVAIL. NODES: 3
                            VERSION: osprey-relay 0.2.0
                """)
        // An agent: no node counts, no rate — compact works the rate out of the uptime, the
        // other layouts say N/A; no ratio without a capacity.
        let agent = Observer_ServerStatusResponse.with {
            $0.numFlows = 7
            $0.seenFlows = 90
            $0.uptimeNs = 45_000_000_000
            $0.version = "0.2.0"
        }
        #expect(
            StatusCommand.render(agent, server: "localhost:4245", output: "compact") == """
                Healthcheck (via localhost:4245): Ok
                Current/Max Flows: 7/0
                Flows/s: 2.00
                """)
        #expect(
            StatusCommand.render(agent, server: "", output: "table") == """
                NUM FLOWS   MAX FLOWS   SEEN FLOWS   FLOWS PER SECOND   UPTIME   NUM CONNECTED NODES   NUM UNAVAILABLE NODES   VERSION
                7           0           90           N/A                45s      N/A                   N/A                     0.2.0
                """)
        let json = StatusCommand.render(relay, server: "", output: "json")
        #expect(!json.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["num_flows"] as? String == "12288" && object["uptime_ns"] as? String == "3723500000000")
        #expect(object["num_connected_nodes"] as? Int == 2 && object["version"] as? String == "osprey-relay 0.2.0")
        #expect(object["unavailable_nodes"] as? [String] == ["osp-node-4", "osp-node-3"])

        // Go's Duration.String(), as hubble prints an uptime.
        let durations: [(UInt64, String)] = [
            (0, "0s"), (999, "999ns"), (1_500, "1.5µs"), (2_000_000, "2ms"), (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"), (3_600_000_000_000, "1h0m0s"), (86_400_123_456_789, "24h0m0.123456789s"),
            (UInt64(Int64.max) + 1, "9223372036854775808ns"),
        ]
        for (nanoseconds, text) in durations { #expect(Durations.goString(nanoseconds: nanoseconds) == text) }
    }

    @Test("time formats")
    func timeFormats() {
        let utc = TimeZone(identifier: "UTC")!
        let date = Fixtures.start
        #expect(TimeFormat.stampMilli.format(date, timeZone: utc) == "Jan 15 08:00:00.250")
        #expect(TimeFormat.rfc3339.format(date, timeZone: utc) == "2027-01-15T08:00:00Z")
        // Go's `.999` layouts, as hubble's: trailing zeros go, and the dot with an even second.
        #expect(TimeFormat.rfc3339Milli.format(date, timeZone: utc) == "2027-01-15T08:00:00.25Z")
        #expect(TimeFormat.rfc3339Nano.format(date, timeZone: utc) == "2027-01-15T08:00:00.25Z")
        #expect(
            TimeFormat.rfc3339Micro.format(seconds: 1_800_000_000, nanos: 0, timeZone: utc) == "2027-01-15T08:00:00Z")
        #expect(
            TimeFormat.rfc3339Nano.format(seconds: 1_800_000_000, nanos: 1, timeZone: utc)
                == "2027-01-15T08:00:00.000000001Z")
        #expect(TimeFormat.yearMonthDay.format(date, timeZone: utc) == "2027-01-15")
        #expect(TimeFormat.yearMonthDayHour.format(date, timeZone: utc) == "2027-01-15T08Z")
        #expect(TimeFormat(named: "yearmonthdayhourminute")?.format(date, timeZone: utc) == "2027-01-15T08:00Z")
        #expect(TimeFormat.rfc1123z.format(date, timeZone: utc) == "Fri, 15 Jan 2027 08:00:00 +0000")
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        #expect(TimeFormat.rfc3339.format(date, timeZone: berlin) == "2027-01-15T09:00:00+01:00")
    }

    @Test(
        "--since/--until read every layout hubble reads them in, as --time-format writes it; no date that does not exist"
    )
    func timesRead() {
        let exact: Int64 = 1_807_150_521_123_456_789  // 2027-04-08T02:15:21.123456789Z, in nanoseconds
        let zones = [
            TimeZone(identifier: "UTC")!, TimeZone(identifier: "Asia/Kolkata")!,
            TimeZone(identifier: "America/St_Johns")!,
        ]
        // Each layout of hubble's --since, and the precision it keeps.
        let layouts: [(TimeFormat, Double)] = [
            (.yearMonthDay, 86_400), (.yearMonthDayHour, 3600), (.yearMonthDayHourMinute, 60), (.rfc3339, 1),
            (.rfc3339Milli, 1e-3), (.rfc3339Micro, 1e-6), (.rfc3339Nano, 1e-9), (.rfc1123z, 1),
        ]
        for (format, precision) in layouts {
            for zone in zones where format != .yearMonthDay || zone.identifier == "UTC" {
                let text = format.format(seconds: 1_807_150_521, nanos: 123_456_789, timeZone: zone)
                let read = TimeFormat.parse(text)
                #expect(read != nil, "\(format) \(text)")
                if let read {
                    // What the layout keeps, cut in the zone's own clock.
                    let nanos = read.seconds * 1_000_000_000 + Int64(read.nanos)
                    #expect(nanos <= exact && exact - nanos < Int64(precision * 1e9), "\(format) \(text) → \(read)")
                }
            }
        }
        // A date alone is UTC midnight, as Go reads it; so is a clock without a zone.
        func read(_ text: String) -> [Int64] { TimeFormat.parse(text).map { [$0.seconds, Int64($0.nanos)] } ?? [] }
        #expect(read("2027-04-08") == [1_807_142_400, 0])
        #expect(read("2027-04-08T02:15:21") == [1_807_150_521, 0])
        #expect(read("2027-04-08T02:15:21.5-01:30") == [1_807_155_921, 500_000_000])
        #expect(read("2027-04-08T02:15:21.0000000015Z") == [1_807_150_521, 1], "past nine digits, cut as Go does")
        #expect(read("thu, 08 APR 2027 02:15:21 +0100") == [1_807_146_921, 0])
        for bad in [
            "2027-02-29", "2028-02-30", "2027-04-08T24:00:00Z", "2027-04-08T04:60Z", "2027-04-08T04",
            "2027-04-08T04:55", "2027-04-08T04:55:21.Z", "2027-04-08T04:55:21+0100", "2027-4-8", "yesterday",
            "Thu, 08 Apr 2027 04:55:21 UTC", "",
        ] {
            #expect(TimeFormat.parse(bad) == nil, "\(bad)")
        }
        #expect(TimeFormat.parse("2028-02-29") != nil, "a leap day")
    }

    @Test("watch peers: hubble's line")
    func peerLine() {
        let change = Peer_ChangeNotification.with {
            $0.name = "osp-node-1"
            $0.address = "10.240.0.11:4244"
            $0.type = .peerAdded
        }
        #expect(WatchPeers.line(change) == "PEER_ADDED   10.240.0.11:4244 osp-node-1")
        var tls = change
        tls.type = .peerUpdated
        tls.tls = .with { $0.serverName = "osp-node-1.osp.hubble-grpc.osprey.local" }
        #expect(
            WatchPeers.line(tls)
                == "PEER_UPDATED 10.240.0.11:4244 osp-node-1 (TLS.ServerName: osp-node-1.osp.hubble-grpc.osprey.local)")
    }

    @Test("status and list layouts")
    func statusAndList() {
        let status = Observer_ServerStatusResponse.with {
            $0.numFlows = 6
            $0.maxFlows = 4095
            $0.seenFlows = 100
            $0.flowsRate = 12.5
            $0.numConnectedNodes = .init(2)
            $0.numUnavailableNodes = .init(1)
            $0.unavailableNodes = ["osp-node-3"]
        }
        #expect(
            StatusCommand.render(status, server: "127.0.0.1:4245") == """
                Healthcheck (via 127.0.0.1:4245): Ok
                Current/Max Flows: 6/4,095 (0.15%)
                Flows/s: 12.50
                Connected Nodes: 2/3
                Unavailable Nodes: 1
                  - osp-node-3
                """)
        let nodes = Observer_GetNodesResponse.with {
            $0.nodes = [
                .with {
                    $0.name = "osp-node-1"
                    $0.state = .nodeConnected
                    $0.uptimeNs = 3_600_000_000_000
                    $0.seenFlows = 720_000
                    $0.numFlows = 4095
                    $0.maxFlows = 4095
                    $0.version = "0.2.0"
                    $0.address = "10.240.0.11:4244"
                },
                .with {
                    $0.name = "osp-node-2"
                    $0.state = .nodeUnavailable
                    $0.address = "10.240.0.12:4244"
                },
            ]
        }
        #expect(
            ListNodes.render(nodes, output: .table) == """
                NAME         STATUS        AGE      FLOWS/S   CURRENT/MAX-FLOWS
                osp-node-1   Connected     1h0m0s   200.00    4095/4095 (100.00%)
                osp-node-2   Unavailable   N/A      N/A       N/A
                """)
        var partial = nodes
        partial.nodes[0].numFlows = 1752
        partial.nodes[0].tls = .with { $0.enabled = false }
        #expect(
            ListNodes.render(partial, output: .wide).split(separator: "\n")[1]
                == "osp-node-1   Connected     1h0m0s   200.00    1752/4095 ( 42.78%)   0.2.0     10.240.0.11:4244   Disabled",
            "the percentage padded to six characters, as hubble's")
        // hubble's -o json: the node list indented by Go's encoder over protojson (enum names,
        // 64-bit numbers as strings).
        #expect(
            ListNodes.render(partial, output: .json) == """
                [
                  {
                    "name": "osp-node-1",
                    "version": "0.2.0",
                    "address": "10.240.0.11:4244",
                    "state": "NODE_CONNECTED",
                    "tls": {},
                    "uptime_ns": "3600000000000",
                    "num_flows": "1752",
                    "max_flows": "4095",
                    "seen_flows": "720000"
                  },
                  {
                    "name": "osp-node-2",
                    "address": "10.240.0.12:4244",
                    "state": "NODE_UNAVAILABLE"
                  }
                ]
                """)
        let namespaces = Observer_GetNamespacesResponse.with {
            $0.namespaces = [
                .with {
                    $0.cluster = "osp"; $0.namespace = "shop"
                }, .with { $0.namespace = "<x>" },
            ]
        }
        #expect(
            ListNamespaces.render(namespaces, output: .json) == """
                [
                  {
                    "cluster": "osp",
                    "namespace": "shop"
                  },
                  {
                    "namespace": "\\u003cx\\u003e"
                  }
                ]
                """)
    }
}
