import Flows

/// `hubble_tcp_flags_total{flag, family}`: forwarded TCP flows carrying SYN, SYN-ACK, FIN, RST.
enum TCPFlagsHandler: MetricHandler {
    static func count<Counter: SeriesCounter>(_ flow: borrowing Flow, _ facts: FlowFacts, into counter: inout Counter) {
        guard flow.verdict == .forwarded, case .tcp(_, _, let flags) = flow.l4 else { return }
        let v6: UInt64 = flow.ipVersion == 2 ? 1 : 0
        let family = v6 == 1 ? "IPv6" : "IPv4"
        if flags.contains(.syn) {
            let synAck = flags.contains(.ack)
            counter.count(.tcpFlags, codes: (synAck ? 2 : 1) | v6 << 4, synAck ? "SYN-ACK" : "SYN", family)
        }
        if flags.contains(.fin) { counter.count(.tcpFlags, codes: 3 | v6 << 4, "FIN", family) }
        if flags.contains(.rst) { counter.count(.tcpFlags, codes: 4 | v6 << 4, "RST", family) }
    }
}
