import CDatapathABI
import Foundation
import Lab
import Locking
import TestSupport
import Testing

@testable import Datapath

/// The drop program on real kernel drops: packets sent between two network namespaces to a port
/// nobody listens on. Needs root (CI runs as root).
@Suite("Drops: the kfree_skb program in the real kernel", .serialized)
struct DropTests {
    /// Two namespaces joined by a veth pair, IPv6 off (no neighbour discovery or membership
    /// reports to muddle the counts), removed again by `down()`. With `groLists`, the receiving
    /// veth merges datagrams into GRO lists.
    struct Pair {
        let sender: String
        let receiver: String
        let senderLink: String
        let receiverLink: String
        let senderAddress = "10.251.0.1"
        let receiverAddress = "10.251.0.2"
        let host = Host()

        init(groLists: Bool = false) throws {
            let tag = String((0..<4).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
            sender = "ospdrop-\(tag)-a"
            receiver = "ospdrop-\(tag)-b"
            senderLink = "ospd\(tag)a"
            receiverLink = "ospd\(tag)b"
            do {
                for netns in [sender, receiver] {
                    try host.run(["ip", "netns", "add", netns])
                    try host.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
                    try host.run(["ip", "-n", netns, "link", "set", "lo", "up"])
                }
                try host.run([
                    "ip", "link", "add", senderLink, "netns", sender, "type", "veth", "peer", "name", receiverLink,
                    "netns", receiver,
                ])
                try host.run(["ip", "-n", sender, "addr", "add", "\(senderAddress)/24", "dev", senderLink])
                try host.run(["ip", "-n", receiver, "addr", "add", "\(receiverAddress)/24", "dev", receiverLink])
                try host.run(["ip", "-n", sender, "link", "set", senderLink, "up"])
                try host.run(["ip", "-n", receiver, "link", "set", receiverLink, "up"])
                // GRO with lists on the receiving veth, polled by a thread of its own: datagrams
                // of one flow that arrive while the thread is not running are merged into a list
                // behind the first, as a loaded node's veths do.
                guard groLists else { return }
                try host.run([
                    "ip", "netns", "exec", receiver, "ethtool", "-K", receiverLink, "gro", "on", "rx-gro-list", "on",
                ])
                try host.run([
                    "ip", "netns", "exec", receiver, "sh", "-c", "echo 1 > /sys/class/net/\(receiverLink)/threaded",
                ])
            } catch {
                down()
                throw error
            }
        }

        /// The receiving namespace's inode, as the drop program keys namespaces.
        var receiverInode: UInt32 {
            var info = stat()
            return stat("/run/netns/\(receiver)", &info) == 0 ? UInt32(truncatingIfNeeded: info.st_ino) : 0
        }

        /// Packets the sender's veth could not hand to the receiver (its transmit drops).
        func senderTransmitDrops() throws -> UInt64 {
            let out = try host.run(["ip", "-n", sender, "-s", "-j", "link", "show", "dev", senderLink])
            let links = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]]
            let stats = links?.first?["stats64"] as? [String: Any]
            return ((stats?["tx"] as? [String: Any])?["dropped"] as? NSNumber)?.uint64Value ?? 0
        }

        func down() {
            for netns in [sender, receiver] { _ = try? host.execute(["ip", "netns", "del", netns]) }
        }
    }

    /// Packets per drop reason, both directions together.
    static func packets(_ datapath: Datapath) -> [String: UInt64] {
        datapath.snapshot().drops.reduce(into: [:]) { $0[$1.key.reason, default: 0] += $1.value.packets }
    }

    /// Two datapaths watching the pair's receiver: one with the agent's rules, one without
    /// `reason`'s rule `rule` (what the kernel reports without it).
    static func datapaths(
        _ pair: Pair, without rule: Datapath.DropIgnoreRule, of reason: String = "NOT_SPECIFIED"
    ) throws -> (agent: Datapath, unfiltered: Datapath) {
        let agent = try Datapath(options: .init())
        var withoutRule = Datapath.notNetworkDrops
        withoutRule[reason]?.removeAll { $0 == rule }
        let unfiltered: Datapath
        do { unfiltered = try Datapath(options: .init(ignoredDrops: withoutRule)) } catch {
            agent.detachAll()
            throw error
        }
        for datapath in [agent, unfiltered] { try datapath.setNamespaces([pair.receiverInode: .pod]) }
        return (agent, unfiltered)
    }

    /// Polls `datapath` until it counted `total` drops or 5 s passed; returns its counts.
    static func packets(_ datapath: Datapath, reaching total: UInt64) -> [String: UInt64] {
        var seen: [String: UInt64] = [:]
        for _ in 0..<50 {
            seen = packets(datapath)
            if seen.values.reduce(0, +) >= total { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return seen
    }

    @Test("a drop's event says where the kernel freed the packet: UDP to a closed port, in the UDP receive path")
    func dropLocation() throws {
        let pair = try Pair()
        defer { pair.down() }
        let datapath = try Datapath(options: .init())
        defer { datapath.detachAll() }
        try datapath.setNamespaces([pair.receiverInode: .pod])
        let locations = Lock<[UInt64]>([])
        datapath.events.start { events, _ in
            let drops = events.filter { $0.kind == UInt8(OSP_EVENT_DROP.rawValue) }
            locations.withLock {
                $0 += drops.map { withUnsafeBytes(of: $0.location) { $0.loadUnaligned(as: UInt64.self) } }
            }
        }
        try PodSockets.sendUDP(from: pair.sender, to: pair.receiverAddress, port: 9, count: 3, payload: 100)
        for _ in 0..<50 where locations.withLock({ $0.count }) < 3 { Thread.sleep(forTimeInterval: 0.1) }
        let seen = locations.withLock { $0 }
        #expect(seen.count == 3, "one event per datagram")
        // On this 6.18 kernel __udp4_lib_rcv frees a datagram no socket wants; the name and
        // its offset come from /proc/kallsyms.
        let named = Set(seen.map { Datapath.kernelLocation(of: $0) ?? "unnamed \(String($0, radix: 16))" })
        #expect(named.count == 1, "one place in the kernel: \(named)")
        #expect(named.allSatisfy { $0.hasPrefix("__udp4_lib_rcv+0x") }, "\(named)")
    }

    @Test("a fragmented datagram to a closed port is one NO_SOCKET drop, not one per fragment")
    func reassembledDatagram() throws {
        let pair = try Pair()
        defer { pair.down() }
        let (agent, unfiltered) = try Self.datapaths(pair, without: .listMember)
        defer { for datapath in [agent, unfiltered] { datapath.detachAll() } }

        // 4,008 bytes of UDP leave in three fragments. The receiver reassembles them into one
        // packet (the first fragment, the other two in its list) and drops it for no socket; the
        // kernel then frees the two fragments with NOT_SPECIFIED from skb_release_data (`perf`),
        // but reassembly cleared their device, so they belong to no namespace Osprey watches.
        try PodSockets.sendUDP(from: pair.sender, to: pair.receiverAddress, port: 9, count: 20, payload: 4000)
        #expect(Self.packets(agent, reaching: 20) == ["NO_SOCKET": 20])
        #expect(Self.packets(unfiltered) == ["NO_SOCKET": 20])
    }

    @Test(
        "datagrams GRO merged behind a datagram dropped for no socket are not counted again as NOT_SPECIFIED drops"
    )
    func groListBehindDroppedHead() throws {
        let pair = try Pair(groLists: true)
        defer { pair.down() }
        let (agent, unfiltered) = try Self.datapaths(pair, without: .listMember)
        defer { for datapath in [agent, unfiltered] { datapath.detachAll() } }
        #expect(agent.listFree != nil, "\(Datapath.listFreeFunction) is found in /proc/kallsyms")

        // Small datagrams to a closed port in bursts of 32, 1 ms apart: the receiver's poll
        // thread finds several waiting and merges them into lists, and its ring of 256 does not
        // fill (a full ring drops at veth_xmit, NOT_SPECIFIED too: a real drop, which both count,
        // and the sender's veth counts as transmit drops).
        var sent = 0
        for _ in 0..<10 where (Self.packets(unfiltered)["NOT_SPECIFIED"] ?? 0) == 0 {
            try PodSockets.sendUDP(
                from: pair.sender, to: pair.receiverAddress, port: 9, count: 3200, payload: 16, burst: 32)
            sent += 3200
        }
        let seen = Self.packets(unfiltered, reaching: UInt64(sent))
        let ringDrops = try pair.senderTransmitDrops()
        let unspecified = seen["NOT_SPECIFIED"] ?? 0
        let members = unspecified > ringDrops ? unspecified - ringDrops : 0
        #expect(members > 0, "GRO lists formed: \(seen) after \(sent) datagrams, \(ringDrops) dropped by the ring")
        #expect(Set(seen.keys) == ["NO_SOCKET", "NOT_SPECIFIED"], "\(seen)")
        #expect(seen.values.reduce(0, +) == UInt64(sent), "every datagram dropped once: \(seen), sent \(sent)")

        // The agent's rules: the lists' heads as NO_SOCKET, the ring's drops, no list member.
        var expected = ["NO_SOCKET": seen["NO_SOCKET"] ?? 0]
        if ringDrops > 0 { expected["NOT_SPECIFIED"] = ringDrops }
        let counted = Self.packets(agent)
        #expect(counted == expected, "only the heads count, as NO_SOCKET: \(counted), \(ringDrops) dropped by the ring")
    }

    @Test(
        "a FIN sent again to a client in TIME-WAIT, whose last ACK was lost, is answered and freed by TCP: not a drop; the lost ACKs are"
    )
    func timeWaitDiscard() throws {
        let pair = try Pair()
        defer { pair.down() }
        let (agent, unfiltered) = try Self.datapaths(pair, without: .timeWait)
        defer { for datapath in [agent, unfiltered] { datapath.detachAll() } }
        #expect(agent.dropReceivingSocket, "this kernel's kfree_skb tracepoint names the receiving socket (6.12+)")

        // A client in the watched namespace connects to a server in the other and closes
        // first; the server closes in turn. The client's namespace drops its pure ACKs from
        // then on (nftables, a real drop), so the server never hears the last ACK and sends
        // its FIN again (after 200 ms, 400 ms, ...) to a client now in TIME-WAIT, which
        // answers with an ACK (dropped again) and frees the FIN: NOT_SPECIFIED, in tcp_v4_rcv.
        let listener = try PodSockets.listenTCP(in: pair.sender, port: 8080)
        defer { close(listener) }
        let client = try #require(
            try PodSockets.connectTCP(from: pair.receiver, to: pair.senderAddress, port: 8080, timeout: 5))
        defer { close(client) }
        let server = try #require(PodSockets.accept(listener, timeout: 5))
        var serverOpen = true  // closed once, by the test or, when it throws before, here
        defer { if serverOpen { close(server) } }
        for command in [
            ["add", "table", "inet", "osptw"],
            ["add", "chain", "inet", "osptw", "out", "{ type filter hook output priority 0 ; }"],
            ["add", "rule", "inet", "osptw", "out", "tcp", "dport", "8080", "tcp", "flags", "==", "ack", "drop"],
        ] {
            try pair.host.run(["ip", "netns", "exec", pair.receiver, "nft"] + command)
        }
        shutdown(client, Int32(SHUT_WR))
        var end = pollfd(fd: server, events: Int16(POLLIN), revents: 0)
        var byte: UInt8 = 0
        #expect(poll(&end, 1, 5000) == 1 && read(server, &byte, 1) == 0, "the server reads the client's FIN")
        close(server)
        serverOpen = false

        _ = Self.packets(unfiltered, reaching: 3)  // the lost ACK, a FIN again, its ACK
        // The server keeps sending its FIN (200 ms, 400 ms, … apart): both datapaths' counts
        // are read between two equal readings of the first, so that they cover the same frees.
        var seen: [String: UInt64] = [:]
        var counted: [String: UInt64] = [:]
        for _ in 0..<20 {
            seen = Self.packets(unfiltered)
            counted = Self.packets(agent)
            if Self.packets(unfiltered) == seen { break }
        }
        #expect((seen["NOT_SPECIFIED"] ?? 0) >= 1, "the FIN sent again was freed at TIME-WAIT: \(seen)")
        #expect((seen["NETFILTER_DROP"] ?? 0) >= 2, "the last ACK and the answer to the FIN: \(seen)")
        #expect(counted["NOT_SPECIFIED"] == nil, "TCP answered the FIN; not a drop: \(counted)")
        #expect(counted["NETFILTER_DROP"] == seen["NETFILTER_DROP"], "the ACKs nftables dropped: \(counted)")
    }

    @Test(
        "at a connection still opening, a SYN sent again (its SYN-ACK lost) and the RST that ends it are handled by TCP at the listener: not drops"
    )
    func openingConnection() throws {
        let pair = try Pair()
        defer { pair.down() }
        let (agent, unfiltered) = try Self.datapaths(pair, without: .opening)
        defer { for datapath in [agent, unfiltered] { datapath.detachAll() } }
        #expect(agent.dropReceivingSocket, "this kernel's kfree_skb tracepoint names the receiving socket (6.12+)")
        // The reason and TCP flags of every drop the datapath without the rule reports.
        let freed = Lock<[(reason: UInt32, flags: UInt8)]>([])
        unfiltered.events.start { events, _ in
            let drops = events.filter { $0.kind == UInt8(OSP_EVENT_DROP.rawValue) }
            freed.withLock { $0 += drops.map { ($0.drop_reason, $0.tcp_flags) } }
        }
        func freedAsNotSpecified() -> [UInt8] { freed.withLock { $0.filter { $0.reason == 2 }.map(\.flags) } }
        // What TCP did on each side: SYN-ACKs sent again and request sockets reset (server), RSTs
        // sent (client).
        func counters(_ netns: String) throws -> [String: UInt64] {
            let lines = try pair.host.run([
                "ip", "netns", "exec", netns, "nstat", "-asz", "TcpExtTCPSynRetrans", "TcpExtEmbryonicRsts",
                "TcpOutRsts", "TcpExtTCPTimeouts",
            ]).split(separator: "\n").filter { !$0.hasPrefix("#") }
            return lines.reduce(into: [:]) { counts, line in
                let fields = line.split(separator: " ")
                if fields.count >= 2, let value = UInt64(fields[1]) { counts[String(fields[0])] = value }
            }
        }

        // The watched namespace listens; the client's namespace drops every SYN-ACK it receives
        // (nftables there, unwatched), so the client sends its SYN again after 1 s: the server
        // finds the connection's request socket, sends its SYN-ACK again and frees the SYN
        // (NOT_SPECIFIED in tcp_v4_rcv, naming the listener as the receiving socket).
        let listener = try PodSockets.listenTCP(in: pair.receiver, port: 8080)
        defer { close(listener) }
        for command in [
            ["add", "table", "inet", "ospsyn"],
            ["add", "chain", "inet", "ospsyn", "in", "{ type filter hook input priority 0 ; }"],
            ["add", "rule", "inet", "ospsyn", "in", "tcp", "sport", "8080", "tcp", "flags", "syn", "drop"],
        ] {
            try pair.host.run(["ip", "netns", "exec", pair.sender, "nft"] + command)
        }
        let client = try PodSockets.connectTCP(from: pair.sender, to: pair.receiverAddress, port: 8080, timeout: 2)
        #expect(client == nil, "every SYN-ACK is dropped: the connection cannot open")
        if let client { close(client) }
        // The client has given up; the server's next SYN-ACK (its timer doubles: 3 s, 7 s, 15 s
        // and 31 s after the first, the last before it gives up) reaches it, finds no socket and
        // is answered with an RST, which resets the server's request socket (EmbryonicRsts) and
        // is freed there as NOT_SPECIFIED too. Under load the timer alone can take 31 s.
        try pair.host.run(["ip", "netns", "exec", pair.sender, "nft", "delete", "table", "inet", "ospsyn"])
        let deadline = Date().addingTimeInterval(90)
        var server = try counters(pair.receiver)
        while Date() < deadline, (server["TcpExtEmbryonicRsts"] ?? 0) == 0 {
            Thread.sleep(forTimeInterval: 0.5)
            server = try counters(pair.receiver)
        }
        let clientCounts = try counters(pair.sender)
        #expect(server["TcpExtEmbryonicRsts"] == 1, "the client's RST reset the request socket: \(server)")
        // A real drop in the watched namespace, after them: datagrams to a closed port.
        try PodSockets.sendUDP(from: pair.sender, to: pair.receiverAddress, port: 9, count: 3, payload: 16)

        let seen = Self.packets(unfiltered, reaching: 5)
        // The counts are the kernel's map, read at once; the events reach the handler when the
        // reader next drains the ring (every 10–25 ms, later on a loaded machine).
        let hasRST = { (flags: [UInt8]) in flags.contains { $0 & UInt8(OSP_TCPF_RST.rawValue) != 0 } }
        for _ in 0..<100 where !hasRST(freedAsNotSpecified()) { Thread.sleep(forTimeInterval: 0.05) }
        let flags = freedAsNotSpecified()
        #expect(flags.contains(UInt8(OSP_TCPF_SYN.rawValue)), "the SYN sent again was freed at the listener: \(flags)")
        #expect(
            hasRST(flags),
            """
            the client's RST was freed at the listener: every drop reported \(freed.withLock { $0 }), counted \(seen), \
            \(unfiltered.events.kernelLost) lost; server \(server); client \(clientCounts)
            """)
        #expect(seen["NO_SOCKET"] == 3, "the datagrams to the closed port: \(seen)")
        // The kernel runs both datapaths' programs at each free: the agent's counts are final.
        #expect(
            Self.packets(agent) == ["NO_SOCKET": 3], "TCP handled the SYN and the RST; only the datagrams are drops")
    }

    @Test(
        "the echo replies of a ping run as root (a raw socket, which has its copy first) are not NO_SOCKET drops; datagrams to a closed port still are"
    )
    func echoRepliesToRawPing() throws {
        let pair = try Pair()
        defer { pair.down() }
        let (agent, unfiltered) = try Self.datapaths(pair, without: .echoReply, of: "NO_SOCKET")
        defer { for datapath in [agent, unfiltered] { datapath.detachAll() } }

        // The watched namespace pings the other through a raw socket: each reply reaches it,
        // and ping_rcv, finding no ping socket for its identifier, frees it for NO_SOCKET.
        try PodSockets.ping(from: pair.receiver, to: pair.senderAddress, count: 10)
        try PodSockets.sendUDP(from: pair.sender, to: pair.receiverAddress, port: 9, count: 3, payload: 16)
        let seen = Self.packets(unfiltered, reaching: 13)
        #expect(seen == ["NO_SOCKET": 13], "each echo reply and each datagram freed for no socket: \(seen)")
        // The kernel runs both datapaths' programs at each free: the agent's counts are final.
        #expect(Self.packets(agent) == ["NO_SOCKET": 3], "only the datagrams to the closed port")
    }

    @Test(
        "what an established TCP connection discards after taking a segment off its device is placed by the receiving socket: a segment outside the window is an ingress drop in that pod; a window probe and data received before are not drops"
    )
    func discardsAtTheSocket() throws {
        let pair = try Pair()
        defer { pair.down() }
        let agent = try Datapath(options: .init())
        defer { agent.detachAll() }
        let unfiltered = try Datapath(options: .init(ignoredDrops: [:]))
        defer { unfiltered.detachAll() }
        for datapath in [agent, unfiltered] { try datapath.setNamespaces([pair.receiverInode: .pod]) }
        #expect(agent.dropReceivingSocket, "this kernel's kfree_skb tracepoint names the receiving socket (6.12+)")
        let (tcp, port): (UInt8, UInt16) = (6, 8080)
        let events = Lock<[osp_event]>([])
        agent.events.start { batch, _ in
            events.withLock { $0 += batch.filter { $0.kind == UInt8(OSP_EVENT_DROP.rawValue) } }
        }

        // A client in the other namespace sends 10 bytes to a server in the watched one, which
        // reads them; then three segments reach the server that TCP discards in tcp_v4_rcv's
        // processing of the connection, after it cleared the packet's device.
        let listener = try PodSockets.listenTCP(in: pair.receiver, port: port)
        defer { close(listener) }
        let client = try #require(
            try PodSockets.connectTCP(from: pair.sender, to: pair.receiverAddress, port: port, timeout: 5))
        defer { close(client) }
        let server = try #require(PodSockets.accept(listener, timeout: 5))
        defer { close(server) }
        #expect(PodSockets.transfer(10, from: client, to: server), "the server reads the client's 10 bytes")
        let clientPort = try UInt16(bigEndian: PodSockets.localAddress(client).sin_port)
        // 1. Reading the client's sequence numbers ends with a window probe, one byte behind
        //    what the server has (as every keepalive): TCP_OLD_SEQUENCE, answered with an ACK.
        let (next, expected) = try PodSockets.sequenceNumbers(client)
        func segment(_ sequence: UInt32, _ payload: [UInt8]) throws {
            try PodSockets.sendTCPSegment(
                from: pair.sender, sourcePort: clientPort, to: pair.receiverAddress, port: port, sequence: sequence,
                acknowledgment: expected, flags: UInt8(OSP_TCPF_ACK.rawValue | OSP_TCPF_PSH.rawValue),
                payload: payload)
        }
        // 2. The 10 bytes again, as a spurious retransmission sends them: TCP_OLD_DATA.
        try segment(next &- 10, [UInt8](repeating: 0x61, count: 10))
        // 3. Data a quarter of the sequence space ahead, far past the window's right edge.
        try segment(next &+ (1 << 30), [UInt8](repeating: 0x62, count: 10))

        let seen = Self.packets(unfiltered, reaching: 3).filter { $0.key.hasPrefix("TCP_") }
        #expect(
            seen == ["TCP_OLD_SEQUENCE": 1, "TCP_OLD_DATA": 1, "TCP_INVALID_SEQUENCE": 1],
            "the kernel's reasons, each placed in the server's namespace: \(seen)")
        // The kernel runs both datapaths' programs at each free: the agent's counts are final.
        let counted = agent.snapshot().drops.filter { $0.key.reason.hasPrefix("TCP_") }
        #expect(
            counted.mapValues(\.packets) == [DropKey(reason: "TCP_INVALID_SEQUENCE", direction: .ingress): 1],
            "only the segment outside the window is a drop, received by the server: \(counted)")
        for _ in 0..<50 where events.withLock({ $0.isEmpty }) { Thread.sleep(forTimeInterval: 0.1) }
        let drop = try #require(events.withLock { $0.first { $0.drop_reason != 0 && $0.tuple.protocol == tcp } })
        #expect(
            (drop.tuple.sport, drop.tuple.dport, drop.netns, drop.tcp_flags)
                == (clientPort, port, pair.receiverInode, UInt8(OSP_TCPF_ACK.rawValue | OSP_TCPF_PSH.rawValue)),
            "the flow: the client's port to the server's, in the server's namespace")
    }
}
