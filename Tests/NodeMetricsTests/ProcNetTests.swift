import Datapath
import Testing

@testable import NodeMetrics

@Suite("/proc/net parsing")
struct ProcNetTests {
    @Test("socket tables: states and remote addresses, IPv4, IPv6 and mapped IPv4")
    func sockets() {
        let tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 0
               1: 0301F40A:A2C4 0302F40A:0050 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 0
            """
        let sockets = ProcNet.sockets(tcp)
        #expect(sockets.map(\.state) == ["LISTEN", "ESTABLISHED"])
        #expect(sockets[1].remoteAddress == "10.244.2.3")
        #expect(sockets[1].remotePort == 80)
        let tcp6 = """
              sl  local_address                         remote_address                        st
               0: 00000000000000000000000000000000:0050 0000000000000000FFFF00000302F40A:C350 06 0
               1: 00000000000000000000000000000000:0050 100000FD020044020000000003000000:1F90 01 0
            """
        let six = ProcNet.sockets(tcp6)
        #expect(six[0].remoteAddress == "10.244.2.3")
        #expect(six[0].state == "TIME_WAIT")
        #expect(six[1].remoteAddress == "fd00:10:244:2::3")
        #expect(six[1].remotePort == 8080)
    }

    @Test("SNMP counter pairs become prefix → name → value")
    func counters() {
        let snmp = "Tcp: RtoAlgorithm ActiveOpens OutRsts\nTcp: 1 42 7\nUdp: InDatagrams NoPorts\nUdp: 10 3\n"
        let counters = ProcNet.counters(snmp)
        #expect(counters["Tcp"] == ["RtoAlgorithm": 1, "ActiveOpens": 42, "OutRsts": 7])
        #expect(counters["Udp"]?["NoPorts"] == 3)
    }

    static let dev = """
        Inter-|   Receive                                                |  Transmit
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
            lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
          eth0: 5000      40    1    2    0     0          0         0     6000      50    0    3    0     0       0          0
          eth1:  700       7    0    0    0     0          0         0      800       8    0    0    0     0       0          0
        """

    @Test("/proc/net/dev gives every interface's rx/tx statistics")
    func interfaces() {
        let stats = ProcNet.interfaces(Self.dev)
        #expect(stats["eth0"]?["rx_bytes"] == 5000)
        #expect(stats["eth0"]?["rx_errors"] == 1)
        #expect(stats["eth0"]?["tx_dropped"] == 3)
        #expect(stats["lo"]?["tx_packets"] == 2)
    }

    @Test("forward counts: the uplinks' received (ingress) and sent (egress) counters, summed; others ignored")
    func forwardFromUplinkCounters() {
        let interfaces = ProcNet.interfaces(Self.dev)
        let both = NodeMetricsCollector.forward(uplinks: ["eth0", "eth1"], interfaces: interfaces)
        #expect(both[.ingress] == Counter(packets: 47, bytes: 5700))
        #expect(both[.egress] == Counter(packets: 58, bytes: 6800))
        // An uplink that is gone right now counts nothing (it comes back from zero).
        let one = NodeMetricsCollector.forward(uplinks: ["eth0", "gone0"], interfaces: interfaces)
        #expect(one[.ingress] == Counter(packets: 40, bytes: 5000))
        #expect(one[.egress] == Counter(packets: 50, bytes: 6000))
    }
}
