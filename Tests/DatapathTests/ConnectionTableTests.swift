import CDatapathABI
import Foundation
import Locking
import Testing

@testable import Datapath

/// The pod programs' connection table, driven packet by packet: each test loads its own datapath
/// (its own maps) and runs the tc program on hand-made frames with BPF_PROG_TEST_RUN, then reads
/// the table's counters and the events user space receives. Needs root (CI runs as root).
@Suite("Connection table: the pod program packet by packet", .serialized)
struct ConnectionTableTests {
    /// What a test checks of one event.
    struct Report: Equatable, CustomStringConvertible {
        var reason: osp_report_reason
        var flags: UInt8
        var isReply: Bool
        var packets: UInt64
        var clientPort: UInt16
        var protocolNumber: UInt8 = 6
        /// ICMP's type and code (the event's ports); nil for other protocols.
        var icmp: [UInt8]? = nil

        var description: String {
            "\(reason.rawValue)/\(flags)/reply \(isReply)/\(packets) pkt/:\(clientPort)/proto \(protocolNumber)"
                + (icmp.map { "/icmp \($0)" } ?? "")
        }
    }

    final class Reports: Sendable {
        let list = Lock<[Report]>([])
        /// Each report's observation point (enum osp_observation), in the same order.
        let observations = Lock<[UInt8]>([])
        /// Each report's `enum osp_quiet` bits (`osp_event.flags`), in the same order.
        let quiet = Lock<[UInt8]>([])
    }

    /// A datapath with a table of `entries`, its events collected.
    final class Lab: @unchecked Sendable {
        let datapath: Datapath
        private let reports = Reports()

        private let idleInterval: Double

        /// `perPacket`: every packet reported (`--per-packet-events`). Unless `reading`, the
        /// events stay in the ring until `startReading()`.
        init(
            entries: Int, idleInterval: Double = 0.025, perPacket: Bool = false, reportInterval: Double = 10,
            reading: Bool = true, localAggregation: Bool = false
        ) throws {
            datapath = try Datapath(
                options: .init(
                    reportInterval: reportInterval, perPacket: perPacket, connectionTableSize: entries,
                    localAggregation: localAggregation))
            self.idleInterval = idleInterval
            if reading { startReading() }
        }

        func startReading() {
            datapath.events.start(idleInterval: idleInterval, quietPolls: 3) { [reports] events, _ in
                let traces = events.filter { $0.kind == UInt8(OSP_EVENT_TRACE.rawValue) }
                let new = traces.map {
                    Report(
                        reason: osp_report_reason(UInt32($0.report)), flags: $0.tcp_flags, isReply: $0.is_reply == 1,
                        packets: $0.packets, clientPort: $0.is_reply == 1 ? $0.tuple.dport : $0.tuple.sport,
                        protocolNumber: $0.tuple.protocol,
                        icmp: [1, 58].contains($0.tuple.protocol)
                            ? [UInt8(truncatingIfNeeded: $0.tuple.sport), UInt8(truncatingIfNeeded: $0.tuple.dport)]
                            : nil)
                }
                reports.observations.withLock { $0 += traces.map(\.observation) }
                reports.quiet.withLock { $0 += traces.map(\.flags) }
                reports.list.withLock { $0 += new }
            }
        }

        deinit { datapath.detachAll() }

        /// One TCP segment from `port` on 10.0.0.1 to 10.0.0.2:80, or back when `reply`,
        /// leaving a pod (the node side's tc ingress), or entering one when `entering` (its
        /// tc egress).
        func segment(_ port: UInt16, _ flags: UInt8, reply: Bool = false, entering: Bool = false) throws {
            let segment = ConnectionTableTests.tcp(port, flags, reply: reply)
            try run(ConnectionTableTests.ipv4(6, reply: reply, segment), entering: entering)
        }

        /// Runs the pod program on `frame`: leaving a pod, or entering one when `entering`.
        func run(_ frame: [UInt8], entering: Bool = false) throws {
            #expect(
                try datapath.run(entering ? .podEgress : .podIngress, packet: frame) == -1,
                "TC_ACT_UNSPEC: the packet goes on")
        }

        /// The events received once `count` have arrived (or after 5 s, whatever came).
        func reports(_ count: Int) -> [Report] {
            _ = ConnectionTableTests.within(5) { reports.list.withLock { $0.count } >= count }
            Thread.sleep(forTimeInterval: 0.05)  // and nothing more than expected
            return reports.list.withLock { $0 }
        }

        /// The observation points of the events received so far (after `reports`).
        var observations: [UInt8] { reports.observations.withLock { $0 } }
        /// The `enum osp_quiet` bits of the events received so far (after `reports`).
        var quiet: [UInt8] { reports.quiet.withLock { $0 } }
    }

    static let syn: UInt8 = 0x02, ack: UInt8 = 0x10, fin: UInt8 = 0x01, psh: UInt8 = 0x08, rst: UInt8 = 0x04

    /// Whether `condition` holds within `seconds`.
    static func within(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return true
    }

    @Test(
        "a connection takes one entry from its SYN to its last ACK, is reported at its start, SYN-ACK and FINs, each report with the packets its direction sent since that direction's last, and leaves; its flags are counted"
    )
    func lifecycle() throws {
        let lab = try Lab(entries: 64)
        #expect(lab.datapath.connectionTable().size == 80, "4 old sets of 16 and 1 young set")
        try lab.segment(40_000, Self.syn)
        try lab.segment(40_000, Self.syn | Self.ack, reply: true)
        try lab.segment(40_000, Self.ack)
        try lab.segment(40_000, Self.psh | Self.ack)
        try lab.segment(40_000, Self.psh | Self.ack, reply: true)
        try lab.segment(40_000, Self.fin | Self.ack, reply: true)
        try lab.segment(40_000, Self.ack)
        try lab.segment(40_000, Self.fin | Self.ack)
        try lab.segment(40_000, Self.ack, reply: true)  // the last ACK: the connection leaves
        #expect(
            lab.reports(4) == [
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 40_000),
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.syn | Self.ack, isReply: true, packets: 1, clientPort: 40_000),
                // The reply's data and its FIN; the client's ACK, data, ACK and FIN.
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.fin | Self.ack, isReply: true, packets: 2, clientPort: 40_000),
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.fin | Self.ack, isReply: false, packets: 4, clientPort: 40_000
                ),
            ])
        #expect(lab.datapath.connectionTable() == ConnectionTable(size: 80, inserted: 1, deleted: 1, evicted: 0))
        // The flag counters, every packet leaving "the pod" (tc ingress of the node side).
        let flags = lab.datapath.snapshot().tcpFlags
        let counted: [TCPFlag: UInt64] = [.syn: 1, .synack: 1, .ack: 7, .fin: 2, .psh: 2, .rst: 0, .urg: 0]
        for (flag, count) in counted {
            #expect(flags[TCPFlagKey(flag: flag, direction: .egress)] == count, "\(flag)")
            #expect(flags[TCPFlagKey(flag: flag, direction: .ingress)] == 0, "\(flag)")
        }
        try lab.segment(40_000, Self.syn)  // the same ports again: a new connection
        #expect(lab.datapath.connectionTable().inserted == 2)
        #expect(lab.datapath.snapshot().errors[.conntrackFull] == 0)
    }

    @Test(
        "a TCP connection or UDP exchange picked up mid-stream: a packet from a server port to an ephemeral one is the server's answer; any other, the client's"
    )
    func pickedUpMidStream() throws {
        let lab = try Lab(entries: 64)
        // Open before the agent: the server (port 80) speaks first, then the client.
        try lab.segment(45_000, Self.psh | Self.ack, reply: true)
        try lab.segment(45_000, Self.ack)
        // The client speaks first.
        try lab.segment(46_000, Self.psh | Self.ack)
        // Both ports below the ephemeral range (a client bound to a low port): no telling, so
        // the segment's source is taken as the client.
        try lab.segment(20_000, Self.psh | Self.ack, reply: true)
        /// A connection's start, reported at its first data segment.
        func start(client: UInt16, reply: Bool) -> Report {
            Report(reason: OSP_REPORT_NEW, flags: Self.psh | Self.ack, isReply: reply, packets: 1, clientPort: client)
        }
        // The same for UDP (a long-lived exchange, e.g. QUIC, when the agent starts): the
        // server's datagram (port 5000) first, the client's first, both ports low.
        try lab.run(Self.udp(45_000, reply: true))
        try lab.run(Self.udp(45_000))
        try lab.run(Self.udp(46_000))
        try lab.run(Self.udp(20_000, reply: true))
        func datagram(client: UInt16, reply: Bool) -> Report {
            Report(reason: OSP_REPORT_NEW, flags: 0, isReply: reply, packets: 1, clientPort: client, protocolNumber: 17)
        }
        #expect(
            lab.reports(6) == [
                start(client: 45_000, reply: true), start(client: 46_000, reply: false),
                start(client: 80, reply: false), datagram(client: 45_000, reply: true),
                datagram(client: 46_000, reply: false), datagram(client: 5000, reply: false),
            ])
        #expect(lab.datapath.connectionTable().inserted == 6)
    }

    /// An IPv4 UDP datagram from `port` to port 5000 with 4 bytes of payload, or back when `reply`.
    static func udp(_ port: UInt16, reply: Bool = false) -> [UInt8] {
        let ports = reply ? [5000, port] : [port, 5000]
        return ipv4(
            17, reply: reply, ports.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] } + [0, 12, 0, 0, 1, 2, 3, 4])
    }

    @Test(
        "an event takes only the ring bytes it uses: 96 and its 8-byte header, 160 where the program looks for a Service translation (a connection's first packets into a pod)"
    )
    func eventSizes() throws {
        let lab = try Lab(entries: 64)
        try lab.segment(40_002, Self.syn)  // leaving a pod
        try lab.segment(40_003, Self.syn, entering: true)  // the SYN into the server pod
        try lab.segment(40_003, Self.ack, entering: true)  // nothing to report
        try lab.segment(40_003, Self.fin | Self.ack, entering: true)
        #expect(
            lab.reports(3) == [
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 40_002),
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 40_003),
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.fin | Self.ack, isReply: false, packets: 2, clientPort: 40_003
                ),
            ])
        #expect(lab.datapath.events.bytesRead == 104 + 168 + 104)
        #expect(lab.datapath.events.kernelLost == 0, "no record too short to be an event")
    }

    @Test(
        "with local aggregation, a connection between two pods of this node is reported at each pod's interface only where it enters the pod (as Cilium's default aggregation), its events marked as standing for both points: still tracked both ways, it ends on its FINs, and the flush leaves what left the pod alone; a connection with any other address is reported both ways, unmarked"
    )
    func localAggregation() throws {
        let lab = try Lab(entries: 64, reportInterval: 0.2, localAggregation: true)
        let both = UInt8(OSP_QUIET_SENDS.rawValue | OSP_QUIET_PEER.rawValue)
        // 10.0.0.1, 10.0.0.2, fd00::2, and bytes that are no address.
        try lab.datapath.setLocalPods([
            [10, 0, 0, 1], [10, 0, 0, 2], [0xfd] + [UInt8](repeating: 0, count: 14) + [2], [1, 2, 3],
        ])
        #expect(
            lab.datapath.localPods() == [
                [4, 10, 0, 0, 1], [4, 10, 0, 0, 2], [6, 0xfd] + [UInt8](repeating: 0, count: 14) + [2],
            ],
            "the two IPv4 addresses and the IPv6 one, by family; the three bytes left out")
        // The pod behind the interface, 10.0.0.1, to the local pod 10.0.0.2:80.
        try lab.segment(40_000, Self.syn)
        try lab.segment(40_000, Self.syn | Self.ack, reply: true, entering: true)
        try lab.segment(40_000, Self.ack)
        try lab.segment(40_000, Self.fin | Self.ack, reply: true, entering: true)
        try lab.segment(40_000, Self.fin | Self.ack)
        try lab.segment(40_000, Self.ack, reply: true, entering: true)  // the last ACK
        // The start is its peer's interface's to report (where the SYN enters the server pod).
        #expect(
            lab.reports(2) == [
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.syn | Self.ack, isReply: true, packets: 1, clientPort: 40_000),
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.fin | Self.ack, isReply: true, packets: 1, clientPort: 40_000),
            ])
        #expect(lab.observations.allSatisfy { UInt32($0) == OSP_OBS_TO_ENDPOINT.rawValue })
        #expect(lab.quiet == [both, both], "each stands for the departure the peer's interface left unreported")
        #expect(lab.datapath.connectionTable().deleted == 1, "it ended on its FINs")
        // One left open: the flush reports what entered the pod, never what left it.
        try lab.segment(40_002, Self.syn)
        try lab.segment(40_002, Self.syn | Self.ack, reply: true, entering: true)
        try lab.segment(40_002, Self.ack)
        try lab.segment(40_002, Self.psh | Self.ack, reply: true, entering: true)
        #expect(lab.reports(3).count == 3)
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try lab.datapath.flushIdle() == 1)
        #expect(
            lab.reports(4).last
                == Report(reason: OSP_REPORT_IDLE, flags: 0, isReply: true, packets: 1, clientPort: 40_002))
        #expect(lab.quiet.last == both)
        // This pod no longer one of the node's (its peer still is): the peer's interface decides
        // the same way, so a new connection is reported here both ways, unmarked.
        try lab.datapath.setLocalPods([[10, 0, 0, 2]])
        #expect(lab.datapath.localPods() == [[4, 10, 0, 0, 2]], "the others removed")
        try lab.segment(40_001, Self.syn)
        try lab.segment(40_001, Self.syn | Self.ack, reply: true, entering: true)
        #expect(
            Array(lab.reports(6).suffix(2)) == [
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 40_001),
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.syn | Self.ack, isReply: true, packets: 1, clientPort: 40_001),
            ])
        #expect(lab.quiet.suffix(2) == [0, 0])
    }

    /// A TCP header from `port` to port 80 with `flags`, or back when `reply`.
    static func tcp(_ port: UInt16, _ flags: UInt8, reply: Bool = false) -> [UInt8] {
        let ports = reply ? [80, port] : [port, 80]
        return ports.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
            + [0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]
    }

    /// An IPv6 frame from fd00::1 to fd00::2 whose first header is `first`, then `rest`.
    static func ipv6(_ first: UInt8, _ rest: [UInt8]) -> [UInt8] {
        let length = UInt16(rest.count)
        var frame: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd]
        frame += [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xff), first, 64]
        frame += [0xfd] + [UInt8](repeating: 0, count: 14) + [1]
        frame += [0xfd] + [UInt8](repeating: 0, count: 14) + [2]
        return frame + rest
    }

    /// An IPv4 frame from 10.0.0.1 to 10.0.0.2 (or back when `reply`) of `protocolNumber`,
    /// then `rest`; a fragment of datagram `id` at `offset` (8-byte units) when `offset` or
    /// `more` (more fragments follow).
    /// An ICMP echo request (`type` 8) or reply (0) with identifier `id` and sequence 1, from
    /// 10.0.0.1 to 10.0.0.2 or back when `reply`.
    static func echo(_ type: UInt8, id: UInt16 = 1, reply: Bool = false) -> [UInt8] {
        ipv4(1, reply: reply, [type, 0, 0, 0, UInt8(id >> 8), UInt8(id & 0xff), 0, 1])
    }

    /// The report of one ICMP packet of `type` and `code`, which its event carries as ports.
    static func icmpReport(_ reason: osp_report_reason, _ type: UInt8, _ code: UInt8, reply: Bool = false) -> Report {
        Report(
            reason: reason, flags: 0, isReply: reply, packets: 1, clientPort: UInt16(reply ? code : type),
            protocolNumber: 1, icmp: [type, code])
    }

    static func ipv4(
        _ protocolNumber: UInt8, id: UInt16 = 0, offset: UInt16 = 0, more: Bool = false, reply: Bool = false,
        _ rest: [UInt8]
    ) -> [UInt8] {
        let client: [UInt8] = [10, 0, 0, 1]
        let server: [UInt8] = [10, 0, 0, 2]
        let length = UInt16(20 + rest.count)
        let field = offset | (more ? 0x2000 : 0)
        var frame: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
        frame += [0x45, 0, UInt8(length >> 8), UInt8(length & 0xff), UInt8(id >> 8), UInt8(id & 0xff)]
        frame += [UInt8(field >> 8), UInt8(field & 0xff), 64, protocolNumber, 0, 0]
        return frame + (reply ? server + client : client + server) + rest
    }

    @Test(
        "IPv6 extension headers are walked to the TCP header (hop-by-hop, destination options, a first fragment); a later fragment takes its ports from its datagram's first"
    )
    func ipv6Extensions() throws {
        let lab = try Lab(entries: 64, perPacket: true)
        let tcp: UInt8 = 6, destinationOptions: UInt8 = 60, fragment: UInt8 = 44
        // Hop-by-hop (8 bytes, PadN), then destination options of 16 bytes, then TCP.
        let hopByHop: [UInt8] = [destinationOptions, 0, 1, 4, 0, 0, 0, 0]
        let options: [UInt8] = [tcp, 1, 1, 12] + [UInt8](repeating: 0, count: 12)
        try lab.run(Self.ipv6(0, hopByHop + options + Self.tcp(41_000, Self.syn)))
        // A datagram's first fragment (offset 0, more fragments), then a later one (offset 23),
        // then a later one of a datagram whose first fragment was not seen.
        try lab.run(Self.ipv6(fragment, [tcp, 0, 0x00, 0x01, 0, 0, 0, 7] + Self.tcp(41_001, Self.syn)))
        try lab.run(Self.ipv6(fragment, [tcp, 0, 0x00, 0xb8, 0, 0, 0, 7] + [UInt8](repeating: 0xaa, count: 24)))
        try lab.run(Self.ipv6(fragment, [tcp, 0, 0x00, 0xb8, 0, 0, 0, 8] + [UInt8](repeating: 0xaa, count: 24)))
        #expect(
            lab.reports(4) == [
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 41_000),
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 41_001),
                Report(reason: OSP_REPORT_PACKET, flags: 0, isReply: false, packets: 1, clientPort: 41_001),
                Report(reason: OSP_REPORT_NEW, flags: 0, isReply: false, packets: 1, clientPort: 0),
            ])
        #expect(lab.datapath.snapshot().errors[.tcHeader] == 0)
    }

    @Test(
        "an IPv4 datagram's later fragments, which have no UDP header, are counted on its connection with the ports of its first fragment; nothing in them is read as ports"
    )
    func ipv4Fragments() throws {
        let lab = try Lab(entries: 64, perPacket: true)
        let udp: UInt8 = 17
        let header: [UInt8] = [0x9c, 0x4a, 0x13, 0x88, 0, 32, 0, 0]  // 40,010 -> 5,000, 32 bytes
        try lab.run(Self.ipv4(udp, id: 0x1234, offset: 0, more: true, header + [UInt8](repeating: 1, count: 16)))
        try lab.run(Self.ipv4(udp, id: 0x1234, offset: 3, more: false, [UInt8](repeating: 0x77, count: 8)))
        // A later fragment of another datagram: its first fragment never came.
        try lab.run(Self.ipv4(udp, id: 0x9999, offset: 3, more: false, [UInt8](repeating: 0x77, count: 8)))
        #expect(
            lab.reports(3) == [
                Report(
                    reason: OSP_REPORT_NEW, flags: 0, isReply: false, packets: 1, clientPort: 40_010,
                    protocolNumber: udp),
                Report(
                    reason: OSP_REPORT_PACKET, flags: 0, isReply: false, packets: 1, clientPort: 40_010,
                    protocolNumber: udp),
                Report(
                    reason: OSP_REPORT_NEW, flags: 0, isReply: false, packets: 1, clientPort: 0, protocolNumber: udp),
            ])
        #expect(lab.datapath.snapshot().errors[.tcHeader] == 0)
    }

    @Test("a reader asleep on an idle ring is woken by the next event's program, long before its next poll")
    func idleReaderWakes() throws {
        let lab = try Lab(entries: 64, idleInterval: 600)
        // Nothing comes: after three empty polls the reader waits up to 600 s and asks to be woken.
        #expect(Self.within(10) { lab.datapath.events.idleSpells >= 1 }, "the reader never went idle")
        #expect(lab.datapath.events.wakeRequested)
        let spells = lab.datapath.events.idleSpells
        try lab.segment(40_001, Self.syn)
        #expect(!lab.datapath.events.wakeRequested, "the SYN's program cleared the request when it woke the reader")
        #expect(
            lab.reports(1).first
                == Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 40_001))
        // Awake again, it polls often until the ring is quiet again, then asks anew.
        #expect(Self.within(10) { lab.datapath.events.idleSpells > spells })
        #expect(lab.datapath.events.wakeRequested)
    }

    @Test(
        "a table fuller than it holds evicts the least recently active connections, counts each, and still reports every start"
    )
    func eviction() throws {
        let lab = try Lab(entries: 64)  // 4 old sets of 16, and 1 young set
        try lab.segment(1_000, Self.syn)  // the connection kept active
        var port: UInt16 = 2_000
        for _ in 0..<40 {
            // A tick later (jiffies: 10 ms is at least one at any HZ), the kept connection is
            // the most recently active of its set; the 10 new ones after it are newer only
            // within this tick, and no set gets 16 of them.
            Thread.sleep(forTimeInterval: 0.01)
            try lab.segment(1_000, Self.ack)
            for _ in 0..<10 {
                try lab.segment(port, Self.syn)
                port += 1
            }
        }
        try lab.segment(1_000, Self.ack)
        let reports = lab.reports(401)
        #expect(reports.count == 401, "a start for each connection and nothing for the kept one's ACKs")
        #expect(reports.allSatisfy { $0.reason == OSP_REPORT_NEW && $0.flags == Self.syn })
        #expect(reports.first?.clientPort == 1_000)
        // Every set is full: 80 live, everything else evicted, the kept connection never.
        #expect(
            lab.datapath.connectionTable() == ConnectionTable(size: 80, inserted: 401, deleted: 0, evicted: 401 - 80))
        // The first new one was pushed out long ago: seen again, it is new again.
        try lab.segment(2_000, Self.ack)
        #expect(
            lab.reports(402).last
                == Report(reason: OSP_REPORT_NEW, flags: Self.ack, isReply: false, packets: 1, clientPort: 2_000))
        #expect(lab.datapath.connectionTable().inserted == 402)
        #expect(lab.datapath.snapshot().errors[.conntrackFull] == 0)
        #expect(lab.datapath.events.kernelLost == 0)
    }

    @Test(
        "a connection pushed out of a full young set moves to the old table with both directions' state: found there, not new again, its FINs reported with each direction's packets, and it leaves at its last ACK"
    )
    func aging() throws {
        let lab = try Lab(entries: 64)  // 1 young set: the 16 connections after it push it out
        try lab.segment(40_000, Self.syn)
        try lab.segment(40_000, Self.syn | Self.ack, reply: true)
        try lab.segment(40_000, Self.ack)  // counted in the young table, reported after the move
        // A tick later (jiffies; 10 ms is at least one at any HZ) it is the young set's least
        // recently active connection, and the last of 16 new ones moves it.
        Thread.sleep(forTimeInterval: 0.01)
        for port in UInt16(41_000)..<41_016 { try lab.segment(port, Self.syn) }
        try lab.segment(40_000, Self.ack)
        try lab.segment(40_000, Self.fin | Self.ack, reply: true)
        try lab.segment(40_000, Self.fin | Self.ack)
        try lab.segment(40_000, Self.ack, reply: true)  // the last ACK: it leaves the old table
        let reports = lab.reports(2 + 16 + 2).filter { $0.clientPort == 40_000 }
        #expect(
            reports == [
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 40_000),
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.syn | Self.ack, isReply: true, packets: 1, clientPort: 40_000),
                // Each direction's state moved with it: which end opened it, and the client's
                // ACKs before and after the move, counted with its FIN.
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.fin | Self.ack, isReply: true, packets: 1, clientPort: 40_000),
                Report(
                    reason: OSP_REPORT_FLAGS, flags: Self.fin | Self.ack, isReply: false, packets: 3, clientPort: 40_000
                ),
            ])
        #expect(lab.datapath.connectionTable() == ConnectionTable(size: 80, inserted: 17, deleted: 1, evicted: 0))
        try lab.segment(40_000, Self.ack)  // gone from both tables: new again
        #expect(lab.reports(21).last?.reason == OSP_REPORT_NEW)
        #expect(lab.datapath.connectionTable().inserted == 18)
    }

    @Test(
        "a direction that falls silent with packets unreported is reported by the flush once its interval has passed, in the young table and the old, with its own packets, where they crossed, and for ICMP what it sent"
    )
    func flushSilent() throws {
        let lab = try Lab(entries: 64, reportInterval: 0.2)  // 1 young set, 4 old ones
        // A UDP exchange that is not DNS: the request opens it, two replies enter the pod.
        try lab.run(Self.udp(40_000))
        try lab.run(Self.udp(40_000, reply: true), entering: true)
        try lab.run(Self.udp(40_000, reply: true), entering: true)
        // A ping: the request reported at once, two replies left to the flush.
        try lab.run(Self.echo(8))
        try lab.run(Self.echo(0, reply: true), entering: true)
        try lab.run(Self.echo(0, reply: true), entering: true)
        // A TCP connection whose client sent an ACK, then pushed to the old table by 16 new
        // ones a tick later, where the client sends another.
        try lab.segment(41_000, Self.syn)
        try lab.segment(41_000, Self.syn | Self.ack, reply: true)
        try lab.segment(41_000, Self.ack)
        Thread.sleep(forTimeInterval: 0.01)
        for port in UInt16(42_000)..<42_016 { try lab.segment(port, Self.syn) }
        try lab.segment(41_000, Self.ack)
        #expect(lab.reports(20).count == 20, "the starts, the SYN-ACK and the ping")
        #expect(try lab.datapath.flushIdle() == 0, "nothing is due within the interval")
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try lab.datapath.flushIdle() == 3)
        let flushed = Array(lab.reports(23).dropFirst(20))
        #expect(
            flushed.sorted { $0.clientPort < $1.clientPort } == [
                Report(
                    reason: OSP_REPORT_IDLE, flags: 0, isReply: true, packets: 2, clientPort: 0, protocolNumber: 1,
                    icmp: [0, 0]),
                Report(
                    reason: OSP_REPORT_IDLE, flags: 0, isReply: true, packets: 2, clientPort: 40_000, protocolNumber: 17
                ),
                Report(reason: OSP_REPORT_IDLE, flags: 0, isReply: false, packets: 2, clientPort: 41_000),
            ])
        let observed = Array(lab.observations.dropFirst(20))
        for (report, observation) in zip(flushed, observed) {
            // The replies entered the pod; the client's ACKs left it.
            let expected = report.isReply ? OSP_OBS_TO_ENDPOINT : OSP_OBS_FROM_ENDPOINT
            #expect(UInt32(observation) == expected.rawValue, "\(report)")
        }
        #expect(try lab.datapath.flushIdle() == 0, "reported once")
        // The flush restarted the direction's interval: a reply now waits for the next flush.
        try lab.run(Self.udp(40_000, reply: true), entering: true)
        #expect(try lab.datapath.flushIdle() == 0)
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try lab.datapath.flushIdle() == 1)
        #expect(
            lab.reports(24).last
                == Report(
                    reason: OSP_REPORT_IDLE, flags: 0, isReply: true, packets: 1, clientPort: 40_000, protocolNumber: 17
                ))
        #expect(lab.datapath.events.kernelLost == 0)
    }

    @Test(
        "the flush skips a set only when no way of it is in use: a connection alone in a set's second way (the first freed by an RST) is reported"
    )
    func flushFindsEveryWay() throws {
        let lab = try Lab(entries: 64, reportInterval: 0.2)  // 1 young set
        try lab.segment(41_000, Self.syn)  // the set's first way
        // A UDP exchange in the second way: the request opens it, a reply is left to the flush.
        try lab.run(Self.udp(40_000))
        try lab.run(Self.udp(40_000, reply: true), entering: true)
        try lab.segment(41_000, Self.rst)  // ends the TCP connection: the first way is free
        #expect(lab.reports(3).count == 3, "the two starts and the RST")
        #expect(lab.datapath.connectionTable().deleted == 1)
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try lab.datapath.flushIdle() == 1)
        let idle = lab.reports(4).filter { $0.reason == OSP_REPORT_IDLE }
        #expect(idle.map(\.clientPort) == [40_000], "the UDP reply, from the set's second way")
        #expect(idle.allSatisfy { $0.isReply && $0.packets == 1 && $0.protocolNumber == 17 })
    }

    @Test(
        "ICMP: an echo's request and replies share an entry opened by the requester, also when a reply comes first; pings each way are two connections; another kind of message has an entry of its own; the flush names what each direction sent"
    )
    func icmpEntries() throws {
        let lab = try Lab(entries: 64, reportInterval: 0.2)
        let unreachable = Self.ipv4(1, reply: true, [3, 3, 0, 0, 0, 0, 0, 0])  // port unreachable
        try lab.run(Self.echo(8))  // the client pings the server
        try lab.run(Self.echo(8, reply: true), entering: true)  // and the server the client
        try lab.run(Self.echo(0))  // the client answers
        try lab.run(Self.echo(0, reply: true), entering: true)  // the server answers
        try lab.run(unreachable, entering: true)
        try lab.run(unreachable, entering: true)
        let request = Self.icmpReport(OSP_REPORT_NEW, 8, 0)
        #expect(
            lab.reports(3) == [
                request, request,
                Self.icmpReport(OSP_REPORT_NEW, 3, 3),
            ])
        #expect(lab.datapath.connectionTable().inserted == 3)
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try lab.datapath.flushIdle() == 3)
        let reply = Self.icmpReport(OSP_REPORT_IDLE, 0, 0, reply: true)
        let flushed = Array(lab.reports(6).dropFirst(3))
        #expect(flushed.filter { $0 == reply }.count == 2, "each ping's reply: \(flushed)")
        #expect(
            flushed.contains(
                Self.icmpReport(OSP_REPORT_IDLE, 3, 3)), "the second port unreachable: \(flushed)")

        // A reply seen before its request (the agent started mid-ping): the destination asked.
        let late = try Lab(entries: 64, reportInterval: 0.2)
        try late.run(Self.echo(0, reply: true), entering: true)
        try late.run(Self.echo(8))
        #expect(
            late.reports(1) == [
                Self.icmpReport(OSP_REPORT_NEW, 0, 0, reply: true)
            ])
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try late.datapath.flushIdle() == 1)
        #expect(
            late.reports(2).last
                == Self.icmpReport(OSP_REPORT_IDLE, 8, 0))
        #expect(lab.datapath.events.kernelLost == 0 && late.datapath.events.kernelLost == 0)
    }

    @Test(
        "ICMP: each ping (echo identifier) between two addresses is a connection of its own, with its own start, as in Cilium; a ping's later requests and replies stay on its entry"
    )
    func pingsByIdentifier() throws {
        let lab = try Lab(entries: 64, reportInterval: 0.2)
        try lab.run(Self.echo(8, id: 0x0101))  // the first ping
        try lab.run(Self.echo(0, id: 0x0101, reply: true), entering: true)
        try lab.run(Self.echo(8, id: 0x0202))  // a second ping, right after, between the same pods
        try lab.run(Self.echo(0, id: 0x0202, reply: true), entering: true)
        try lab.run(Self.echo(8, id: 0x0101))  // the first one's next request
        let start = Self.icmpReport(OSP_REPORT_NEW, 8, 0)
        #expect(lab.reports(2) == [start, start], "each ping's first request starts a connection")
        #expect(lab.datapath.connectionTable().inserted == 2)
        Thread.sleep(forTimeInterval: 0.25)
        #expect(try lab.datapath.flushIdle() == 3, "each ping's reply, and the first one's second request")
        let flushed = Array(lab.reports(5).dropFirst(2))
        let reply = Self.icmpReport(OSP_REPORT_IDLE, 0, 0, reply: true)
        #expect(flushed.filter { $0 == reply }.count == 2, "\(flushed)")
        #expect(
            flushed.contains(
                Self.icmpReport(OSP_REPORT_IDLE, 8, 0)), "the first ping's second request, on its entry: \(flushed)")
        #expect(lab.datapath.events.kernelLost == 0)
    }

    @Test(
        "a flush with more to report than a quarter of the event ring holds stops there and goes on at its next runs: every silent direction is reported, none lost"
    )
    func flushBounded() throws {
        let lab = try Lab(entries: 131_072, reportInterval: 0.05, reading: false)
        // UDP connections from ports of their own, each a datagram reported at its start and
        // a second one left to the flush.
        let connections = 15_000
        for port in UInt16(20_000)..<UInt16(20_000 + connections) {
            let frame = Self.udp(port)
            try lab.run(frame)
            try lab.run(frame)
        }
        Thread.sleep(forTimeInterval: 0.1)
        // Nobody reads the ring yet: it holds the starts, 104 bytes each with their headers.
        // The flush walks a set only while the set's reports (32 at most) cannot take the ring
        // past OSP_FLUSH_RING_LIMIT bytes.
        let record = 8 + Int(OSP_EVENT_BASE_SIZE)
        let room = Int(OSP_FLUSH_RING_LIMIT) - connections * record
        let first = try lab.datapath.flushIdle()
        #expect(((room - 32 * record) / record...room / record).contains(first), "\(first) reports")
        #expect(try lab.datapath.flushIdle() == 0, "the ring is as full as a flush may fill it")
        lab.startReading()
        var flushed = first
        #expect(lab.reports(connections + flushed).count == connections + flushed)
        for _ in 0..<20 where flushed < connections {
            flushed += try lab.datapath.flushIdle()
            _ = lab.reports(connections + flushed)
        }
        let reports = lab.reports(2 * connections)
        let idle = reports.filter { $0.reason == OSP_REPORT_IDLE }
        #expect(idle.count == connections)
        #expect(idle.allSatisfy { $0.packets == 1 && $0.protocolNumber == 17 })
        #expect(Set(idle.map(\.clientPort)).count == connections, "each connection once")
        #expect(try lab.datapath.flushIdle() == 0)
        #expect(lab.datapath.events.kernelLost == 0)
    }

    @Test(
        "a new connection that loses the race for a way is still reported: its start from a state of its own, counted as conntrack_full; its next packet takes a way"
    )
    func lostClaim() throws {
        let lab = try Lab(entries: 64)  // 1 young set
        // Every way of it claimed, as while 16 other CPUs were filling them.
        var claimed = osp_ct_set()
        withUnsafeMutableBytes(of: &claimed.tags) { tags in
            for i in 0..<Int(OSP_CT_WAYS) {
                tags.storeBytes(of: UInt32(OSP_CT_CLAIMED), toByteOffset: i * 4, as: UInt32.self)
            }
        }
        try lab.datapath.setYoungSet(0, claimed)
        try lab.segment(40_000, Self.syn)
        #expect(
            lab.reports(1) == [
                Report(reason: OSP_REPORT_NEW, flags: Self.syn, isReply: false, packets: 1, clientPort: 40_000)
            ])
        #expect(lab.datapath.snapshot().errors[.conntrackFull] == 1)
        #expect(lab.datapath.connectionTable().inserted == 0)
        // The ways filled and freed again: the SYN-ACK finds room, as the connection's first packet
        // the table saw.
        try lab.datapath.setYoungSet(0, osp_ct_set())
        try lab.segment(40_000, Self.syn | Self.ack, reply: true)
        try lab.segment(40_000, Self.ack)
        #expect(
            lab.reports(2).last
                == Report(
                    reason: OSP_REPORT_NEW, flags: Self.syn | Self.ack, isReply: true, packets: 1, clientPort: 40_000))
        #expect(lab.datapath.connectionTable().inserted == 1)
        #expect(lab.datapath.snapshot().errors[.conntrackFull] == 1)
    }

    @Test(
        "a hook whose program cannot pass the packet on to osp_tc_pod counts a tail_call error, reports nothing, and lets the packet go on"
    )
    func tailCallFailure() throws {
        let lab = try Lab(entries: 64)
        try lab.segment(40_000, Self.syn)
        #expect(lab.reports(1).count == 1, "the hooks work before the slot is emptied")
        try lab.datapath.emptyPodBody()
        try lab.segment(40_001, Self.syn)  // each run expects TC_ACT_UNSPEC
        try lab.segment(40_001, Self.syn | Self.ack, reply: true, entering: true)
        #expect(lab.datapath.snapshot().errors[.tailCall] == 2)
        #expect(lab.reports(0).count == 1, "no report of the second connection")
        #expect(lab.datapath.connectionTable().inserted == 1)
    }

    @Test(
        "the verifier accepts each pod program in well under a tenth of its limit: the table's loops do not multiply its paths"
    )
    func verifierWork() throws {
        let lab = try Lab(entries: 524_288)
        for program in [Datapath.ProgramName.pod, .podIngress, .podEgress] {
            // The hooks' programs only pass the packet on: 19 each. osp_tc_pod: 67,059 (both
            // directions in one program, measured on 6.18; each direction's own inlined copy
            // took 24,000 to 36,000). The header walk of osp_parse_general and the ICMP ends of
            // osp_icmp_ends are checked on their own; 430,000 when the loops' results were
            // constants per way.
            let instructions = try lab.datapath.verifiedInstructions(program)
            #expect(instructions < 100_000, "\(program): \(instructions)")
        }
    }

    @Test(
        "--conntrack-max becomes whole sets of 16: a power of two, at least 4, never fewer entries than asked; a sixteenth of them, at most 256, in front for young connections"
    )
    func sizes() {
        #expect(Datapath.connectionTableSets(64) == 4)
        #expect(Datapath.connectionTableSets(1) == 4)
        #expect(Datapath.connectionTableSets(65) == 8)
        #expect(Datapath.connectionTableSets(256) == 16)
        #expect(Datapath.connectionTableSets(262_144) == 16_384)
        #expect(Datapath.connectionTableSets(300_000) == 32_768)
        #expect(Datapath.connectionTableSets(16_777_216) == 1_048_576)
        let config = Datapath.config(
            .init(), connectionTableSets: Datapath.connectionTableSets(1_000), dropReasons: [:])
        #expect(config.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self).ct_set_mask } == 63)
        #expect(config.withUnsafeBytes { $0.loadUnaligned(as: osp_config.self).ct_young_mask } == 3)
        #expect(Datapath.youngSets(4) == 1)
        #expect(Datapath.youngSets(64) == 4)
        #expect(Datapath.youngSets(32_768) == 256, "the default table: 4,096 young connections")
        #expect(Datapath.youngSets(1_048_576) == 256)
    }
}
