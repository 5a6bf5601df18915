import Flows
import Foundation
import PrometheusExposition

/// Retina's advanced pod-level metrics, from flows: `networkobservability_adv_forward_count`,
/// `_adv_forward_bytes`, `_adv_drop_count`, `_adv_drop_bytes`, `_adv_tcpflags_count`,
/// `_adv_dns_request_count` and `_adv_dns_response_count`, labelled as `PodLevelOptions` says.
///
/// Each packet is counted once, where it is best seen:
/// - local context: a pod's own traffic, on its veth — what it sent (from-endpoint, `egress`)
///   and what it received (to-endpoint, `ingress`); a drop for each end that is a pod on this
///   node. Two pods on one node each get their side, as in Retina.
/// - remote context: once in the cluster — at the sender's veth when the sender is a pod, else
///   at the receiver's; so `sum` over nodes is the real rate. `direction` is the observation's
///   (`EGRESS` at the sender, `INGRESS` at the receiver).
/// DNS queries count at the querying pod as it sends them, responses as it receives them.
///
/// Not thread-safe by itself: `HubbleMetrics` keeps it under its lock.
struct RetinaPodMetrics {
    enum Metric: Int, CaseIterable {
        case forwardCount, forwardBytes, dropCount, dropBytes, tcpFlags, dnsRequests, dnsResponses
        case tcpRetransmissions

        var name: String {
            switch self {
            case .forwardCount: "networkobservability_adv_forward_count"
            case .forwardBytes: "networkobservability_adv_forward_bytes"
            case .dropCount: "networkobservability_adv_drop_count"
            case .dropBytes: "networkobservability_adv_drop_bytes"
            case .tcpFlags: "networkobservability_adv_tcpflags_count"
            case .dnsRequests: "networkobservability_adv_dns_request_count"
            case .dnsResponses: "networkobservability_adv_dns_response_count"
            case .tcpRetransmissions: "networkobservability_adv_tcpretrans_count"
            }
        }

        /// What Retina calls it in a MetricsConfiguration and in its expiry counter.
        var baseName: String {
            switch self {
            case .forwardCount: "forward_count"
            case .forwardBytes: "forward_bytes"
            case .dropCount: "drop_count"
            case .dropBytes: "drop_bytes"
            case .tcpFlags: "adv_tcpflags_count"
            case .dnsRequests: "dns_request_count"
            case .dnsResponses: "dns_response_count"
            case .tcpRetransmissions: "adv_tcpretrans_count"
            }
        }

        var help: String {
            switch self {
            case .forwardCount: "Packets forwarded, by direction and pod context."
            case .forwardBytes: "Bytes forwarded, by direction and pod context."
            case .dropCount: "Packets dropped, by kernel drop reason, direction and pod context."
            case .dropBytes: "Bytes dropped, by kernel drop reason, direction and pod context."
            case .tcpFlags:
                "Forwarded TCP flows by flag (SYN, SYNACK, ACK, FIN, RST, PSH, URG, ECE, CWR) and pod context."
            case .dnsRequests: "DNS queries pods sent, by query type, name and pod context."
            case .dnsResponses:
                "DNS responses pods received, by return code, query type, name, answers and pod context."
            case .tcpRetransmissions: "TCP segments sockets sent again for want of an acknowledgement, by pod context."
            }
        }

        /// Retina types its forward, drop and flag counts as gauges (that only go up); DNS as counters.
        var kind: MetricFamily.Kind { self == .dnsRequests || self == .dnsResponses ? .counter : .gauge }

        /// Metric-specific labels before the context labels (`direction` is added apart).
        var leading: [String] {
            switch self {
            case .forwardCount, .forwardBytes, .tcpRetransmissions: []
            case .dropCount, .dropBytes: ["reason"]
            case .tcpFlags: ["flag"]
            case .dnsRequests: ["query_type", "query"]
            case .dnsResponses: ["return_code", "query_type", "query", "response", "num_response"]
            }
        }

        var hasDirection: Bool { self != .tcpFlags && self != .dnsRequests && self != .dnsResponses }
    }

    /// What a side of a series is keyed by: only what its labels read, so a label that is off
    /// does not split series.
    struct Side: Hashable {
        var endpoint: ObjectIdentifier?
        var ip: String?
        var port: Int32 = -1
        var service: String?
    }

    /// A series by numbers and short strings: hashing it never touches an endpoint's labels.
    struct Key: Hashable {
        var metric: UInt8
        /// Direction (bits 0–1), is_reply (bits 2–3: none, false, true), or a flag's index, or
        /// a DNS response's answer count.
        var code: UInt32
        var v0 = "", v1 = "", v2 = "", v3 = ""
        var source: Side?
        var destination: Side?
    }

    /// A series: its key, the endpoints its labels come from (kept alive, so the key's box
    /// identities are never reused), its value and when it last changed.
    struct Series {
        var key: Key
        var source: Endpoint?
        var destination: Endpoint?
        var value: Double
        var updated: Double
    }

    let options: PodLevelOptions
    let seriesLimit: Int
    private var index: [Key: Int] = [:]
    private var series: [Series] = []
    private var counts: [Int] = Array(repeating: 0, count: Metric.allCases.count)
    /// Per metric: counts that found it at its series limit (drops and DNS; forwarded flows'
    /// are the forward contexts').
    private var limited: [Double] = Array(repeating: 0, count: Metric.allCases.count)
    /// Per metric: counts that found it at its series limit.
    var overflowed: [Double] {
        var overflowed = limited
        overflowed[Metric.forwardCount.rawValue] += forward.overflow.packets
        overflowed[Metric.forwardBytes.rawValue] += forward.overflow.bytes
        overflowed[Metric.tcpFlags.rawValue] += forward.overflow.flags
        return overflowed
    }
    /// Per metric: series removed because nothing updated them within the ttl.
    private(set) var expired: [Double] = Array(repeating: 0, count: Metric.allCases.count)
    /// Pods that went away (`namespace/name`) and when.
    var deleted: [(pod: String, at: Date)] = []

    /// Forwarded flows: the hot path.
    private var forward: ForwardContexts

    init(options: PodLevelOptions, seriesLimit: Int) {
        self.options = options
        self.seriesLimit = seriesLimit
        // In local context the one side is labelled with the source labels (Retina's rule).
        forward = ForwardContexts(
            source: ForwardContexts.Reads(options.sourceLabels),
            destination: ForwardContexts.Reads(
                options.context == .local ? options.sourceLabels : options.destinationLabels),
            seriesLimit: seriesLimit)
    }

    // MARK: Counting

    /// TCP flags as Retina names them; SYN with ACK is `SYNACK` (and neither alone).
    static let flagNames = ["SYN", "SYNACK", "ACK", "FIN", "RST", "PSH", "URG", "ECE", "CWR"]

    mutating func count(_ flow: borrowing Flow, now: Double) {
        switch flow.verdict {
        case .forwarded:
            if flow.hasDNS, let dns = flow.dns {
                countDNS(flow, dns, now: now)
                if dns.unanswered { return }  // a report of silence, not a packet
            }
            countForward(flow, now: now)
        case .dropped:
            countDrop(flow, now: now)
        case .unknown:
            return
        }
    }

    /// One side a flow is counted for: which ends its labels describe, and the direction.
    typealias Side3 = (source: Bool, destination: Bool, direction: TrafficDirection)

    /// The (at most two) sides of a flow this node counts. Local: one pod per observation.
    /// Remote: the whole flow, once in the cluster.
    private func sides(_ flow: borrowing Flow) -> (Side3?, Side3?) {
        switch options.context {
        case .local:
            switch flow.observationPoint {
            case .fromEndpoint: return (flow.source.podName.isEmpty ? nil : (true, false, .egress), nil)
            case .toEndpoint:
                let ingress: Side3? = flow.destination.podName.isEmpty ? nil : (false, true, .ingress)
                // Its sender's interface did not report it leaving: its egress is counted here.
                let egress: Side3? =
                    flow.departureUnreported && !flow.source.podName.isEmpty ? (true, false, .egress) : nil
                return (ingress, egress)
            case .unknown:
                return (
                    isLocalPod(flow.source, flow) ? (true, false, .egress) : nil,
                    isLocalPod(flow.destination, flow) ? (false, true, .ingress) : nil
                )
            }
        case .remote:
            // `direction` is the packet's way at the veth (the flow's traffic_direction is its
            // connection's, as Cilium gives it); a drop's is the enricher's.
            switch flow.observationPoint {
            case .fromEndpoint: return ((true, true, .egress), nil)
            case .unknown: return ((true, true, flow.trafficDirection), nil)
            // Counted once, where it leaves a pod (here, when its sender's interface did not
            // report that), else where it enters one from outside the pods.
            case .toEndpoint where flow.departureUnreported: return ((true, true, .egress), nil)
            // A pod sender was counted at its own veth.
            case .toEndpoint: return (flow.source.podName.isEmpty ? (true, true, .ingress) : nil, nil)
            }
        }
    }

    private func isLocalPod(_ endpoint: Endpoint, _ flow: borrowing Flow) -> Bool {
        !endpoint.podName.isEmpty && endpoint.nodeName == flow.nodeName
    }

    private mutating func countForward(_ flow: borrowing Flow, now: Double) {
        let reply: UInt32 = options.isReply && options.context == .remote ? (flow.isReply == true ? 2 : 1) << 2 : 0
        var flags: UInt16 = 0
        if case .tcp(_, _, let tcpFlags) = flow.l4 { flags = Self.flagMask(tcpFlags) }
        let (first, second) = sides(flow)
        if let side = first {
            forward.add(
                flow, sides: (side.source, side.destination), code: Self.directionCode(side.direction) | reply,
                flags: flags, now: now)
        }
        if let side = second {
            forward.add(
                flow, sides: (side.source, side.destination), code: Self.directionCode(side.direction) | reply,
                flags: flags, now: now)
        }
    }

    /// Retina's flags of a TCP flags byte, bit `i` for `flagNames[i]`: SYN with ACK is SYNACK
    /// only. Looked up: every forwarded TCP flow needs it.
    static func flagMask(_ flags: TCPFlags) -> UInt16 { flagMasks[Int(flags.rawValue)] }

    private static let flagMasks: [UInt16] = (0...255).map { byte in
        let flags = TCPFlags(rawValue: UInt8(byte))
        let synAck = flags.contains(.syn) && flags.contains(.ack)
        let has = [
            flags.contains(.syn) && !synAck, synAck, flags.contains(.ack) && !synAck, flags.contains(.fin),
            flags.contains(.rst), flags.contains(.psh), flags.contains(.urg), flags.contains(.ece),
            flags.contains(.cwr),
        ]
        return has.enumerated().reduce(0) { $0 | ($1.element ? 1 << $1.offset : 0) }
    }

    /// A retransmitted segment, on the sending socket's side (`egress`; in local context also
    /// the receiver's `ingress` when it is a pod on this node, as Retina does).
    mutating func countRetransmission(_ flow: borrowing Flow, now: Double) {
        let (first, second) = sides(flow)
        for side in [first, second].compactMap({ $0 }) {
            add(.tcpRetransmissions, Key(metric: 0, code: Self.directionCode(side.direction)), flow, side, 1, now: now)
        }
    }

    private mutating func countDrop(_ flow: borrowing Flow, now: Double) {
        let reason = flow.kernelDropReason ?? "UNKNOWN_DROP"
        let (first, second) = sides(flow)
        for side in [first, second].compactMap({ $0 }) {
            let key = Key(metric: 0, code: Self.directionCode(side.direction), v0: reason)
            add(.dropCount, key, flow, side, Double(flow.packets), now: now)
            add(.dropBytes, key, flow, side, Double(flow.bytes), now: now)
        }
    }

    private mutating func countDNS(_ flow: borrowing Flow, _ dns: DNSInfo, now: Double) {
        guard !dns.unanswered else { return }
        let queryType = dns.qtypes.first ?? "Unknown"
        if !dns.isResponse {
            guard flow.reportsDeparture, !flow.source.podName.isEmpty || options.context == .remote
            else { return }
            let side = (source: true, destination: options.context == .remote, direction: TrafficDirection.egress)
            add(.dnsRequests, Key(metric: 0, code: 0, v0: queryType, v1: dns.query), flow, side, 1, now: now)
        } else {
            guard flow.observationPoint == .toEndpoint, !flow.destination.podName.isEmpty || options.context == .remote
            else { return }
            let side = (source: options.context == .remote, destination: true, direction: TrafficDirection.ingress)
            let key = Key(
                metric: 0, code: UInt32(max(dns.rrtypes.count, dns.ips.count)), v0: Self.returnCode(dns.rcode),
                v1: queryType, v2: dns.query, v3: dns.ips.joined(separator: ","))
            add(.dnsResponses, key, flow, side, 1, now: now)
        }
    }

    /// Retina's `return_code` values (rcodes past 5 are empty, as there).
    static func returnCode(_ rcode: Int) -> String {
        ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"].indices.contains(rcode)
            ? ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"][rcode] : ""
    }

    static func directionCode(_ direction: TrafficDirection) -> UInt32 {
        switch direction {
        case .unknown: 0
        case .ingress: 1
        case .egress: 2
        }
    }

    /// Adds `amount` to a series, creating it (past the limit: counting the overflow).
    private mutating func add(
        _ metric: Metric, _ partial: Key, _ flow: borrowing Flow,
        _ side: (source: Bool, destination: Bool, direction: TrafficDirection), _ amount: Double, now: Double
    ) {
        var key = partial
        key.metric = UInt8(metric.rawValue)
        // In local context the single side's labels are the source labels (Retina's rule).
        let local = options.context == .local
        if side.source {
            key.source = Self.side(
                options.sourceLabels, flow.source, ip: flow.sourceIP, port: flow.l4.ports.source, hasPorts: flow.l4,
                service: flow.sourceService)
        }
        if side.destination {
            key.destination = Self.side(
                local ? options.sourceLabels : options.destinationLabels, flow.destination, ip: flow.destinationIP,
                port: flow.l4.ports.destination, hasPorts: flow.l4, service: flow.destinationService)
        }
        if let slot = index[key] {
            series[slot].value += amount
            series[slot].updated = now
            return
        }
        guard counts[metric.rawValue] < seriesLimit else {
            limited[metric.rawValue] += amount
            return
        }
        counts[metric.rawValue] += 1
        index[key] = series.count
        series.append(
            Series(
                key: key, source: side.source ? flow.source : nil,
                destination: side.destination ? flow.destination : nil,
                value: amount, updated: now))
    }

    private static func side(
        _ labels: [PodLevelOptions.Label], _ endpoint: Endpoint, ip: String, port: UInt16, hasPorts l4: Layer4,
        service: ServiceRef?
    ) -> Side {
        var side = Side()
        for label in labels {
            switch label {
            case .ip: side.ip = ip
            case .namespace, .podname, .workload, .zone: side.endpoint = endpoint.boxIdentity
            case .port:
                switch l4 {
                case .tcp, .udp: side.port = Int32(port)
                default: side.port = -1
                }
            case .service: side.service = service?.name ?? ""
            }
        }
        return side
    }

    // MARK: Expiry

    /// Removes series not updated within the ttl, and those of pods that went away `expiry`
    /// seconds ago or more.
    mutating func expire(now: Date, expiry: Double) {
        let due = Set(deleted.filter { now.timeIntervalSince($0.at) >= expiry }.map(\.pod))
        deleted.removeAll { due.contains($0.pod) }
        let cutoff = options.ttl > 0 ? now.timeIntervalSince1970 - options.ttl : -Double.infinity
        func gone(_ endpoint: Endpoint?) -> Bool { endpoint.map { due.contains($0.podQualifiedName) } ?? false }
        guard !due.isEmpty || options.ttl > 0 else { return }  // nothing can go
        var stale = 0
        _ = forward.retain { [forward] context, slot in
            if context.updated < cutoff {
                stale += 1
                if (0..<ForwardContexts.flagCount).contains(where: { forward.flags(slot, $0) > 0 }) {
                    expired[Metric.tcpFlags.rawValue] += 1
                }
                return false
            }
            return !gone(context.source) && !gone(context.destination)
        }
        expired[Metric.forwardCount.rawValue] += Double(stale)
        expired[Metric.forwardBytes.rawValue] += Double(stale)
        guard !due.isEmpty || series.contains(where: { $0.updated < cutoff }) else { return }
        var kept: [Series] = []
        kept.reserveCapacity(series.count)
        for entry in series {
            if entry.updated < cutoff {
                expired[Int(entry.key.metric)] += 1
            } else if !gone(entry.source) && !gone(entry.destination) {
                kept.append(entry)
            }
        }
        series = kept
        index = [:]
        counts = Array(repeating: 0, count: Metric.allCases.count)
        for (slot, entry) in series.enumerated() {
            index[entry.key] = slot
            counts[Int(entry.key.metric)] += 1
        }
    }

    // MARK: Exposition

    /// The labels of one side of a series, in Retina's order; `unknown` where nothing is known.
    func values(
        _ labels: [PodLevelOptions.Label], _ side: Side, _ endpoint: Endpoint?, zones: [String: String]
    ) -> [String] {
        let endpoint = endpoint ?? Endpoint()
        // Retina caches the API server's addresses as a pod named so.
        let apiServer = endpoint.reservedIdentity == .kubeAPIServer
        let pod = !endpoint.podName.isEmpty
        func known(_ value: String?) -> String { value.map { $0.isEmpty ? "unknown" : $0 } ?? "unknown" }
        var values: [String] = []
        for label in labels {
            switch label {
            case .ip: values.append(known(side.ip))
            case .namespace: values.append(apiServer ? "kubernetes-apiserver" : pod ? endpoint.namespace : "unknown")
            case .podname: values.append(apiServer ? "kubernetes-apiserver" : pod ? endpoint.podName : "unknown")
            case .workload:
                let workload = pod ? endpoint.workloads.first : nil
                values.append(workload?.kind ?? "unknown")
                values.append(workload?.name ?? "unknown")
            case .service: values.append(known(side.service))
            case .port: values.append(side.port < 0 ? "unknown" : String(side.port))
            case .zone: values.append(known(pod ? zones[endpoint.nodeName] : nil))
            }
        }
        return values
    }

    func direction(_ code: UInt32) -> String {
        let remote = options.context == .remote
        switch code & 3 {
        case 1: return remote ? "INGRESS" : "ingress"
        case 2: return remote ? "EGRESS" : "egress"
        default: return remote ? "TRAFFIC_DIRECTION_UNKNOWN" : "unknown"
        }
    }

    /// One family per metric. Series whose labels come out the same (a pod whose endpoint
    /// changed, say) are one sample.
    func families(zones: [String: String]) -> [MetricFamily] {
        let sourceNames = options.names(options.sourceLabels, prefix: "source_")
        let destinationNames =
            options.context == .local ? [] : options.names(options.destinationLabels, prefix: "destination_")
        var samples: [[[String]: Double]] = Array(repeating: [:], count: Metric.allCases.count)
        for (slot, context) in forward.contexts.enumerated() {
            var labels: [String]
            if options.context == .local {
                labels =
                    context.code & 16 != 0
                    ? values(options.sourceLabels, context.sourceSide, context.source, zones: zones)
                    : values(options.sourceLabels, context.destinationSide, context.destination, zones: zones)
            } else {
                labels =
                    values(options.sourceLabels, context.sourceSide, context.source, zones: zones)
                    + values(options.destinationLabels, context.destinationSide, context.destination, zones: zones)
            }
            var forwardLabels = [direction(context.code)] + labels
            if options.context == .remote && options.isReply {
                forwardLabels.append((context.code >> 2) & 3 == 2 ? "true" : "false")
            }
            samples[Metric.forwardCount.rawValue][forwardLabels, default: 0] += context.packets
            samples[Metric.forwardBytes.rawValue][forwardLabels, default: 0] += context.bytes
            for flag in 0..<ForwardContexts.flagCount where forward.flags(slot, flag) > 0 {
                samples[Metric.tcpFlags.rawValue][[Self.flagNames[flag]] + labels, default: 0] += forward.flags(
                    slot, flag)
            }
        }
        for entry in series {
            let metric = Metric(rawValue: Int(entry.key.metric))!
            let key = entry.key
            var values: [String]
            switch metric {
            case .forwardCount, .forwardBytes, .tcpFlags: continue  // the forward contexts'
            case .dropCount, .dropBytes: values = [key.v0, direction(key.code)]
            case .tcpRetransmissions: values = [direction(key.code)]
            case .dnsRequests: values = [key.v0, key.v1]
            case .dnsResponses: values = [key.v0, key.v1, key.v2, key.v3, String(key.code)]
            }
            if options.context == .local {
                // The one side there is, with the source labels.
                if let side = key.source {
                    values += self.values(options.sourceLabels, side, entry.source, zones: zones)
                } else if let side = key.destination {
                    values += self.values(options.sourceLabels, side, entry.destination, zones: zones)
                }
            } else {
                values += self.values(options.sourceLabels, key.source ?? Side(), entry.source, zones: zones)
                values += self.values(
                    options.destinationLabels, key.destination ?? Side(), entry.destination, zones: zones)
            }
            samples[metric.rawValue][values, default: 0] += entry.value
        }
        return Metric.allCases.map { metric in
            var names = metric.leading
            if metric.hasDirection {
                // Retina: forward has direction first; drops have reason, then direction.
                names.append("direction")
            }
            names += sourceNames + destinationNames
            if options.context == .remote && options.isReply && (metric == .forwardCount || metric == .forwardBytes) {
                names.append("is_reply")
            }
            return MetricFamily(
                name: metric.name, help: metric.help, kind: metric.kind,
                samples: samples[metric.rawValue].sorted { $0.key.lexicographicallyPrecedes($1.key) }.map {
                    MetricFamily.Sample(Array(zip(names, $0.key)), $0.value)
                })
        }
    }
}
