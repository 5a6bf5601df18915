import Flows
import Foundation
import HubbleAPI
import HubbleWire

/// A service map built from flows, the way Hubble UI draws one — a card per workload, world
/// endpoint or node, an edge per source, destination, protocol and port — with what Hubble UI
/// leaves out: counts per verdict, drop reasons, resets, handshake RTT and DNS latency
/// percentiles, DNS errors and unanswered queries, all over a time window.
///
/// Not thread-safe: one view owns it (`MapView`).
public struct ServiceMap {
    /// Statistics are kept in buckets of this many seconds; a window is a whole number of them.
    public static let bucketSeconds: Double = 10
    /// The longest window a view may ask for.
    public static let maxWindow: Double = 3600

    var cards: [String: CardState] = [:]
    var edges: [EdgeKey: EdgeState] = [:]

    public init() {}

    // MARK: - taking flows in

    /// Adds a flow seen at `flow.time` (its own time, so the window follows the cluster's clock).
    public mutating func add(_ flow: Flow_Flow) {
        let time = flow.hasTime ? FlowMessage.date(flow.time) : Date()
        // A reply belongs to the connection its request opened: client → server.
        let reply = flow.hasIsReply && flow.isReply.value
        let (client, server) = reply ? (flow.destination, flow.source) : (flow.source, flow.destination)
        let (clientNames, serverNames) =
            reply ? (flow.destinationNames, flow.sourceNames) : (flow.sourceNames, flow.destinationNames)
        let (clientIP, serverIP) = reply ? (flow.ip.destination, flow.ip.source) : (flow.ip.source, flow.ip.destination)
        let from = Self.card(for: client, names: clientNames, ip: clientIP)
        let to = Self.card(for: server, names: serverNames, ip: serverIP)
        let (proto, ports) = Self.layer4(flow.l4)
        let port = reply ? ports.source : ports.destination
        note(from, client, time)
        note(to, server, time)
        let isDNS = flow.l7.isDNS || (flow.type == .l7 && port == 53)
        if port > 0 || proto.hasPrefix("ICMP") {
            cards[to.id]?.receives(port: port, protocol: proto, dns: isDNS, at: time)
        }
        let key = EdgeKey(source: from.id, destination: to.id, protocol: proto, port: port)
        let connection =
            proto == "TCP" ? Connection(client: clientIP, port: reply ? ports.destination : ports.source) : nil
        edges[key, default: EdgeState()].add(flow, at: time, reply: reply, connection: connection)
    }

    private mutating func note(_ identity: CardIdentity, _ endpoint: Flow_Endpoint, _ time: Date) {
        cards[identity.id, default: CardState(identity)].saw(endpoint, at: time)
    }

    /// Forgets what is older than the longest window.
    public mutating func expire(now: Date) {
        let horizon = now.addingTimeInterval(-Self.maxWindow)
        edges = edges.filter { $0.value.lastSeen >= horizon }
        for key in edges.keys { edges[key]?.drop(before: horizon) }
        cards = cards.filter { $0.value.lastSeen >= horizon }
    }

    // MARK: - cards

    /// Which card an endpoint belongs to.
    struct CardIdentity: Hashable {
        var id: String
        var kind: Card.Kind
        var namespace: String
        var name: String
    }

    static func card(for endpoint: Flow_Endpoint, names: [String], ip: String) -> CardIdentity {
        if !endpoint.namespace.isEmpty {
            let workload =
                endpoint.workloads.first?.name
                ?? endpoint.labels.first { $0.hasPrefix("k8s:app=") }.map { String($0.dropFirst(8)) }
                ?? endpoint.podName
            let name = workload.isEmpty ? endpoint.podName : workload
            return CardIdentity(
                id: "\(endpoint.namespace)/\(name)", kind: .workload, namespace: endpoint.namespace, name: name)
        }
        let reserved = HubbleVocabulary.reservedIdentities[endpoint.identity]
        switch reserved {
        case "host", "remote-node", "kube-apiserver", "health", "ingress":
            return CardIdentity(id: "reserved/\(reserved!)", kind: .reserved, namespace: "", name: reserved!)
        default:
            // Link-local and multicast addresses (neighbour discovery, IGMP, mDNS) are one card,
            // not one per address.
            if Self.isLinkLocalOrMulticast(ip) {
                return CardIdentity(id: "world/link-local", kind: .world, namespace: "", name: "link-local & multicast")
            }
            // The world by the name a pod resolved it by, else by address.
            let name = names.first.map { $0.hasSuffix(".") ? String($0.dropLast()) : $0 } ?? ip
            return CardIdentity(id: "world/\(name)", kind: .world, namespace: "", name: name)
        }
    }

    /// fe80::/10, ff00::/8, 169.254.0.0/16 and 224.0.0.0/4.
    static func isLinkLocalOrMulticast(_ ip: String) -> Bool {
        let lower = ip.lowercased()
        if lower.contains(":") {
            return lower.hasPrefix("ff") || lower.hasPrefix("fe8") || lower.hasPrefix("fe9") || lower.hasPrefix("fea")
                || lower.hasPrefix("feb")
        }
        guard let first = lower.split(separator: ".").first.flatMap({ Int($0) }) else { return false }
        return (224...239).contains(first) || lower.hasPrefix("169.254.")
    }

    static func layer4(_ l4: Flow_Layer4) -> (String, (source: Int, destination: Int)) {
        switch l4.protocol {
        case .tcp(let tcp)?: ("TCP", (Int(tcp.sourcePort), Int(tcp.destinationPort)))
        case .udp(let udp)?: ("UDP", (Int(udp.sourcePort), Int(udp.destinationPort)))
        case .sctp(let sctp)?: ("SCTP", (Int(sctp.sourcePort), Int(sctp.destinationPort)))
        case .icmpv4?: ("ICMPv4", (0, 0))
        case .icmpv6?: ("ICMPv6", (0, 0))
        default: ("other", (0, 0))
        }
    }

    // MARK: - reading the map

    /// The map over the last `window` seconds before `now`, narrowed to `namespace` (its cards,
    /// and the cards they talk to) when given.
    public func snapshot(window: Double, now: Date, namespace: String? = nil) -> Snapshot {
        let since = now.addingTimeInterval(-min(window, Self.maxWindow))
        var shownEdges: [Edge] = []
        var used: Set<String> = []
        for (key, state) in edges where state.lastSeen >= since {
            if let namespace,
                cards[key.source]?.identity.namespace != namespace,
                cards[key.destination]?.identity.namespace != namespace
            {
                continue
            }
            guard let edge = state.edge(key, since: since) else { continue }
            shownEdges.append(edge)
            used.insert(key.source)
            used.insert(key.destination)
        }
        let shownCards = used.compactMap { cards[$0]?.card(since: since) }
        return Snapshot(
            window: window, cards: shownCards.sorted { $0.id < $1.id }, edges: shownEdges.sorted { $0.id < $1.id })
    }
}

/// What a snapshot holds, as the browser receives it (JSON).
public struct Snapshot: Sendable, Codable, Equatable {
    public var window: Double
    public var cards: [Card]
    public var edges: [Edge]
    /// Namespace boxes, filled in by `MapLayout`.
    public var boxes: [Box] = []
    public var width: Double = 0
    public var height: Double = 0
}

public struct Card: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case workload, world, reserved }

    public var id: String
    public var kind: Kind
    public var namespace: String
    public var name: String
    public var pods: [String]
    public var labels: [String]
    public var ports: [Port]
    /// Position and size, filled in by `MapLayout`.
    public var x: Double = 0
    public var y: Double = 0
    public var width: Double = 0
    public var height: Double = 0

    public struct Port: Sendable, Codable, Equatable, Hashable {
        public var port: Int
        public var `protocol`: String
        public var dns: Bool
    }
}

public struct Edge: Sendable, Codable, Equatable {
    public var id: String
    public var source: String
    public var destination: String
    public var `protocol`: String
    public var port: Int
    public var flows: Int
    /// Flows by verdict name (`FORWARDED`, `DROPPED`).
    public var verdicts: [String: Int]
    /// Drops by reason name (`POLICY_DENIED`).
    public var dropReasons: [String: Int]
    /// TCP connections opened (their SYN seen), each counted once however many nodes reported
    /// it and however often it was sent again.
    public var connections: Int
    /// TCP connections with at least one dropped packet (a refused or denied connection counts
    /// once, not once per SYN it sent).
    public var droppedConnections: Int
    /// TCP connections reset (an RST seen), each counted once.
    public var resets: Int
    public var handshakeRTT: Latency?
    public var dnsLatency: Latency?
    /// DNS queries (one record each, whichever node reported it).
    public var dnsQueries: Int
    /// DNS answers that were errors, by rcode name (`Non-Existent Domain`).
    public var dnsErrors: [String: Int]
    public var unansweredDNS: Int
    public var lastSeen: Date

    public struct Latency: Sendable, Codable, Equatable {
        public var samples: Int
        /// Milliseconds.
        public var p50: Double
        public var p95: Double
    }

    /// How it is drawn, filled in by `MapLayout`: cubic Bézier curves, each starting where the
    /// one before ended, from the sender's side to the receiver's.
    public var path: [Curve] = []
    /// Where its label goes: the point, and which part of the text sits on it (SVG's `text-anchor`).
    public var label = Label(x: 0, y: 0, anchor: "middle")

    public var dropped: Bool { (verdicts["DROPPED"] ?? 0) > 0 }

    /// One cubic Bézier curve; in JSON `[x0, y0, x1, y1, x2, y2, x3, y3]`: start, two control
    /// points, end.
    public struct Curve: Sendable, Codable, Equatable {
        public var x0, y0, x1, y1, x2, y2, x3, y3: Double

        public init(
            _ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ x3: Double,
            _ y3: Double
        ) {
            (self.x0, self.y0, self.x1, self.y1, self.x2, self.y2, self.x3, self.y3) = (x0, y0, x1, y1, x2, y2, x3, y3)
        }

        /// The point a share `t` (0…1) of the way along.
        public func point(at t: Double) -> (x: Double, y: Double) {
            let u = 1 - t
            let (a, b, c, d) = (u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t)
            return (a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3)
        }

        public init(from decoder: any Decoder) throws {
            let values = try decoder.singleValueContainer().decode([Double].self)
            guard values.count == 8 else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "a curve is 8 numbers, not \(values.count)")
                )
            }
            self.init(values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7])
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode([x0, y0, x1, y1, x2, y2, x3, y3])
        }
    }

    public struct Label: Sendable, Codable, Equatable {
        public var x: Double
        public var y: Double
        public var anchor: String
    }
}

public struct Box: Sendable, Codable, Equatable {
    public var namespace: String
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double
}

// MARK: - state behind the snapshot

struct EdgeKey: Hashable {
    var source: String
    var destination: String
    var `protocol`: String
    var port: Int

    var id: String { "\(source)→\(destination):\(`protocol`)/\(port)" }
}

struct CardState {
    let identity: ServiceMap.CardIdentity
    var lastSeen = Date.distantPast
    /// Pod → when it was last seen.
    var pods: [String: Date] = [:]
    var labels: Set<String> = []
    var ports: [Card.Port: Date] = [:]

    init(_ identity: ServiceMap.CardIdentity) { self.identity = identity }

    mutating func saw(_ endpoint: Flow_Endpoint, at time: Date) {
        lastSeen = max(lastSeen, time)
        if !endpoint.podName.isEmpty { pods[endpoint.podName] = max(pods[endpoint.podName] ?? time, time) }
        if labels.count < 64 { labels.formUnion(endpoint.labels) }
    }

    mutating func receives(port: Int, protocol proto: String, dns: Bool, at time: Date) {
        let key = Card.Port(port: port, protocol: proto, dns: dns)
        ports[key] = max(ports[key] ?? time, time)
    }

    func card(since: Date) -> Card {
        Card(
            id: identity.id, kind: identity.kind, namespace: identity.namespace, name: identity.name,
            pods: pods.filter { $0.value >= since }.keys.sorted(), labels: labels.sorted(),
            ports: receivedPorts(since: since))
    }

    /// The ports received on since `since`, one per port and protocol: a port that answered DNS
    /// is shown as DNS even when some of its flows (the UDP datagrams' own L4 flows) carry no DNS.
    private func receivedPorts(since: Date) -> [Card.Port] {
        var dns: [Card.Port: Bool] = [:]
        for (port, seen) in ports where seen >= since {
            let plain = Card.Port(port: port.port, protocol: port.protocol, dns: false)
            dns[plain] = (dns[plain] ?? false) || port.dns
        }
        return dns.map { Card.Port(port: $0.key.port, protocol: $0.key.protocol, dns: $0.value) }
            .sorted { ($0.port, $0.protocol) < ($1.port, $1.protocol) }
    }
}

/// An edge's statistics in buckets of `ServiceMap.bucketSeconds`, so any window is a sum.
struct EdgeState {
    struct Bucket {
        var start: Date
        var verdicts: [Int: Int] = [:]
        var dropReasons: [Int: Int] = [:]
        var connections = 0
        var droppedConnections = 0
        var resets = 0
        var rtt: [Double] = []
        var dnsLatency: [Double] = []
        var dnsErrors: [Int: Int] = [:]
        var dnsQueries = 0
        var unanswered = 0
    }

    /// Samples kept per bucket for each percentile (the first ones: enough for p95 of a bucket).
    static let samplesPerBucket = 64

    var buckets: [Bucket] = []
    var lastSeen = Date.distantPast
    /// What has been counted for this edge's recent TCP connections.
    var recent = RecentConnections()

    mutating func add(_ flow: Flow_Flow, at time: Date, reply: Bool, connection: Connection?) {
        lastSeen = max(lastSeen, time)
        let start = Date(
            timeIntervalSince1970: (time.timeIntervalSince1970 / ServiceMap.bucketSeconds).rounded(.down)
                * ServiceMap.bucketSeconds)
        // Flows arrive in time order from a relay; one out of order joins the newest bucket.
        if buckets.last.map({ $0.start < start }) ?? true { buckets.append(Bucket(start: start)) }
        var bucket = buckets[buckets.count - 1]
        defer { buckets[buckets.count - 1] = bucket }
        bucket.verdicts[flow.verdict.rawValue, default: 0] += 1
        if flow.verdict == .dropped {
            bucket.dropReasons[flow.dropReasonDesc.rawValue, default: 0] += 1
        }
        if let connection {
            let flags = flow.l4.tcp.flags
            if flags.syn, !flags.ack, !reply, recent.first(.opened, of: connection) { bucket.connections += 1 }
            if flow.verdict == .dropped, recent.first(.dropped, of: connection) { bucket.droppedConnections += 1 }
            if flags.rst, recent.first(.reset, of: connection) { bucket.resets += 1 }
        }
        if let rtt = FlowExtensions.fields(of: flow)[FlowExtensions.handshakeLatency].flatMap(Double.init),
            bucket.rtt.count < Self.samplesPerBucket
        {
            bucket.rtt.append(rtt / 1e6)
        }
        if flow.l7.isDNS {
            if flow.l7.type == .response {
                if flow.l7.latencyNs > 0, bucket.dnsLatency.count < Self.samplesPerBucket {
                    bucket.dnsLatency.append(Double(flow.l7.latencyNs) / 1e6)
                }
                if flow.l7.dns.rcode != 0 { bucket.dnsErrors[Int(flow.l7.dns.rcode), default: 0] += 1 }
            } else if flow.summary.hasSuffix("(no response)") {
                bucket.unanswered += 1
            } else {
                bucket.dnsQueries += 1
            }
        }
    }

    mutating func drop(before horizon: Date) {
        buckets.removeAll { $0.start.addingTimeInterval(ServiceMap.bucketSeconds) < horizon }
    }

    func edge(_ key: EdgeKey, since: Date) -> Edge? {
        let kept = buckets.filter { $0.start.addingTimeInterval(ServiceMap.bucketSeconds) > since }
        guard !kept.isEmpty else { return nil }
        var verdicts: [String: Int] = [:]
        var reasons: [String: Int] = [:]
        var errors: [String: Int] = [:]
        var (connections, droppedConnections, resets, queries, unanswered) = (0, 0, 0, 0, 0)
        var (rtt, dns) = ([Double](), [Double]())
        for bucket in kept {
            for (verdict, count) in bucket.verdicts {
                verdicts[ProtoNames.verdicts.name(Flow_Verdict(rawValue: verdict) ?? .unknown), default: 0] += count
            }
            for (reason, count) in bucket.dropReasons { reasons[ProtoNames.dropReason(reason), default: 0] += count }
            for (rcode, count) in bucket.dnsErrors {
                errors[DNSInfo.rcodeNames[rcode] ?? "RCode \(rcode)", default: 0] += count
            }
            connections += bucket.connections
            droppedConnections += bucket.droppedConnections
            resets += bucket.resets
            queries += bucket.dnsQueries
            unanswered += bucket.unanswered
            rtt += bucket.rtt
            dns += bucket.dnsLatency
        }
        return Edge(
            id: key.id, source: key.source, destination: key.destination, protocol: key.protocol, port: key.port,
            flows: verdicts.values.reduce(0, +), verdicts: verdicts, dropReasons: reasons, connections: connections,
            droppedConnections: droppedConnections, resets: resets,
            handshakeRTT: Self.latency(rtt), dnsLatency: Self.latency(dns), dnsQueries: queries, dnsErrors: errors,
            unansweredDNS: unanswered, lastSeen: lastSeen)
    }

    static func latency(_ samples: [Double]) -> Edge.Latency? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> Double {
            sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
        }
        return Edge.Latency(samples: sorted.count, p50: percentile(0.5), p95: percentile(0.95))
    }
}

/// A TCP connection of an edge, by its client's address and port (the edge holds the rest).
struct Connection: Hashable {
    var client: String
    var port: Int
}

/// What has been counted for an edge's last `limit` TCP connections, so that each is counted
/// once: a connection between pods of two nodes is reported by both, a refused or denied client
/// sends its SYN again, and each packet of it can be a flow. Flows reach the map in time order,
/// so a connection's reports come close together; one that comes after `limit` newer
/// connections is counted again.
struct RecentConnections {
    struct Counted: OptionSet {
        let rawValue: UInt8
        static let opened = Counted(rawValue: 1)
        static let dropped = Counted(rawValue: 2)
        static let reset = Counted(rawValue: 4)
    }

    static let limit = 512

    private var counted: [Connection: Counted] = [:]
    /// The connections in the order they were first seen, as a ring of `limit`.
    private var order: [Connection] = []
    private var oldest = 0

    /// Notes `what` for `connection`: true if it had not been noted for it yet.
    mutating func first(_ what: Counted, of connection: Connection) -> Bool {
        if let already = counted[connection] {
            guard !already.contains(what) else { return false }
            counted[connection] = already.union(what)
            return true
        }
        if order.count < Self.limit {
            order.append(connection)
        } else {
            counted[order[oldest]] = nil
            order[oldest] = connection
            oldest = (oldest + 1) % Self.limit
        }
        counted[connection] = what
        return true
    }
}

extension Flow_Layer7 {
    var isDNS: Bool {
        if case .dns? = record { true } else { false }
    }
}
