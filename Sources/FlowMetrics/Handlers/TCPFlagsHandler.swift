import Flows

/// `hubble_tcp_flags_total{flag, family}`: forwarded TCP flows carrying SYN, SYN-ACK, FIN, RST.
enum TCPFlagsHandler: MetricHandler {
    static func count<Counter: SeriesCounter>(_ flow: borrowing Flow, _ facts: FlowFacts, into counter: inout Counter) {
        guard flow.verdict == .forwarded, case .tcp(_, _, let flags) = flow.l4 else { return }
        let family = flow.ipVersion == 2 ? "IPv6" : "IPv4"
        if flags.contains(.syn) { counter.count(.tcpFlags, flags.contains(.ack) ? "SYN-ACK" : "SYN", family) }
        if flags.contains(.fin) { counter.count(.tcpFlags, "FIN", family) }
        if flags.contains(.rst) { counter.count(.tcpFlags, "RST", family) }
    }
}
