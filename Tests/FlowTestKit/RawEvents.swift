import CDatapathABI

/// Raw datapath events as the eBPF programs write them (`struct osp_event`), for decoder and
/// pipeline tests and the bench: no kernel needed.
public enum RawEvent {
    /// A trace event of one packet (or a drop when `drop` is a kernel drop reason, freed at the
    /// kernel text address `location`), IPv4 when the addresses have 4 bytes, IPv6 when 16.
    public static func packet(
        _ source: [UInt8], _ sport: UInt16, _ destination: [UInt8], _ dport: UInt16, protocol proto: UInt8,
        flags: UInt8 = 0, reply: UInt8 = 0, observation: osp_observation = OSP_OBS_FROM_ENDPOINT, at ns: UInt64,
        payload: [UInt8] = [], drop: UInt32? = nil, location: UInt64 = 0, ifindex: UInt32 = 7, bytes: UInt64 = 74,
        quiet: UInt8 = 0
    ) -> osp_event {
        var event = osp_event()
        withUnsafeMutableBytes(of: &event.tuple.saddr) { $0.copyBytes(from: source) }
        withUnsafeMutableBytes(of: &event.tuple.daddr) { $0.copyBytes(from: destination) }
        event.tuple.sport = sport
        event.tuple.dport = dport
        event.tuple.family = source.count == 16 ? 6 : 4
        event.tuple.protocol = proto
        event.timestamp_ns = ns
        event.packets = 1
        event.bytes = bytes
        event.ifindex = ifindex
        event.kind = UInt8(drop == nil ? OSP_EVENT_TRACE.rawValue : OSP_EVENT_DROP.rawValue)
        event.observation = UInt8(drop == nil ? observation.rawValue : OSP_OBS_DROP.rawValue)
        event.tcp_flags = flags
        event.is_reply = drop == nil ? reply : 2
        event.flags = quiet  // enum osp_quiet: between two pods of one node (monitor aggregation)
        event.drop_reason = drop ?? 0
        event.payload_len = UInt16(payload.count)
        withUnsafeMutableBytes(of: &event.payload) { $0.copyBytes(from: payload) }
        if drop == nil {
            withUnsafeMutableBytes(of: &event.smac) { $0.copyBytes(from: [0x02, 0, 0, 0, 0, 0x0a] as [UInt8]) }
            withUnsafeMutableBytes(of: &event.dmac) { $0.copyBytes(from: [0xee, 0xff, 0, 0, 0x1b, 0xc2] as [UInt8]) }
        } else {
            withUnsafeMutableBytes(of: &event.location) { $0.storeBytes(of: location, as: UInt64.self) }
        }
        return event
    }

    /// A TCP segment the socket `source:sport` sent again to `destination:dport`
    /// (tcp:tcp_retransmit_skb).
    public static func retransmission(
        _ source: [UInt8], _ sport: UInt16, _ destination: [UInt8], _ dport: UInt16, at ns: UInt64
    ) -> osp_event {
        var event = packet(source, sport, destination, dport, protocol: 6, at: ns, ifindex: 0, bytes: 1448)
        event.kind = UInt8(OSP_EVENT_RETRANSMIT.rawValue)
        event.observation = UInt8(OSP_OBS_SOCKET.rawValue)
        event.report = UInt8(OSP_REPORT_RETRANSMIT.rawValue)
        event.is_reply = 2
        event.smac = (0, 0, 0, 0, 0, 0)
        event.dmac = (0, 0, 0, 0, 0, 0)
        return event
    }

    /// The Service translation a packet entering a pod carries: `client → service` went to `backend`.
    public static func withNAT(
        _ event: osp_event, client: [UInt8], clientPort: UInt16, service: [UInt8], servicePort: UInt16,
        backend: [UInt8], backendPort: UInt16
    ) -> osp_event {
        var event = event
        event.nat.original.family = client.count == 16 ? 6 : 4
        event.nat.original.protocol = event.tuple.protocol
        withUnsafeMutableBytes(of: &event.nat.original.saddr) { $0.copyBytes(from: client) }
        withUnsafeMutableBytes(of: &event.nat.original.daddr) { $0.copyBytes(from: service) }
        withUnsafeMutableBytes(of: &event.nat.backend) { $0.copyBytes(from: backend) }
        event.nat.original.sport = clientPort
        event.nat.original.dport = servicePort
        event.nat.backend_port = backendPort
        event.nat.present = 1
        return event
    }

    /// TCP flag bits as the programs report them.
    public static let syn = UInt8(OSP_TCPF_SYN.rawValue)
    public static let ack = UInt8(OSP_TCPF_ACK.rawValue)
    public static let fin = UInt8(OSP_TCPF_FIN.rawValue)
    public static let rst = UInt8(OSP_TCPF_RST.rawValue)
}
