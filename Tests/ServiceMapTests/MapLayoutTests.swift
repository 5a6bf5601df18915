import FlowTestKit
import Foundation
import Testing

@testable import ServiceMap

/// The map's layout without a browser: nothing overlaps, senders sit left of receivers, the
/// same input gives the same picture, and cards stay where they were as new ones arrive.
@Suite("Service map layout")
struct MapLayoutTests {
    static func card(_ id: String, ports: Int = 1) -> Card {
        let parts = id.split(separator: "/").map(String.init)
        let namespace = parts[0] == "world" || parts[0] == "reserved" ? "" : parts[0]
        return Card(
            id: id, kind: namespace.isEmpty ? .world : .workload, namespace: namespace, name: parts[1], pods: [],
            labels: [], ports: (0..<ports).map { Card.Port(port: 8000 + $0, protocol: "TCP", dns: false) })
    }

    static func edge(_ source: String, _ destination: String) -> Edge {
        Edge(
            id: "\(source)→\(destination)", source: source, destination: destination, protocol: "TCP", port: 80,
            flows: 1, verdicts: ["FORWARDED": 1], dropReasons: [:], connections: 1, droppedConnections: 0, resets: 0,
            handshakeRTT: nil, dnsLatency: nil, dnsQueries: 0,
            dnsErrors: [:], unansweredDNS: 0, lastSeen: Date(timeIntervalSince1970: 0))
    }

    static func snapshot(_ edges: [(String, String)], ports: [String: Int] = [:]) -> Snapshot {
        let ids = Set(edges.flatMap { [$0.0, $0.1] })
        return Snapshot(
            window: 300, cards: ids.sorted().map { card($0, ports: ports[$0] ?? 1) },
            edges: edges.map { edge($0.0, $0.1) })
    }

    /// The lab's shop: loadgen → frontend → checkout → ledger (billing), DNS, the world.
    static let shop: [(String, String)] = [
        ("shop/loadgen", "shop/frontend"), ("shop/untrusted", "shop/frontend"), ("shop/frontend", "shop/checkout"),
        ("shop/checkout", "billing/ledger"), ("shop/reporter", "billing/ledger"),
        ("shop/loadgen", "kube-system/kube-dns"), ("shop/reporter", "kube-system/kube-dns"),
        ("shop/reporter", "world/192.0.2.53"), ("shop/frontend", "shop/catalog"),
    ]

    static func overlaps(
        _ a: (x: Double, y: Double, width: Double, height: Double),
        _ b: (x: Double, y: Double, width: Double, height: Double)
    ) -> Bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    static func checkNoOverlap(_ snapshot: Snapshot) {
        let cards = snapshot.cards
        for i in cards.indices {
            #expect(cards[i].width > 0 && cards[i].height > 0)
            for j in cards.indices where j > i {
                #expect(
                    !overlaps(
                        (cards[i].x, cards[i].y, cards[i].width, cards[i].height),
                        (cards[j].x, cards[j].y, cards[j].width, cards[j].height)),
                    "\(cards[i].id) and \(cards[j].id) overlap")
            }
            // Every card inside its box.
            let box = snapshot.boxes.first { $0.namespace == cards[i].namespace }
            #expect(
                box.map {
                    cards[i].x >= $0.x && cards[i].y >= $0.y && cards[i].x + cards[i].width <= $0.x + $0.width
                        && cards[i].y + cards[i].height <= $0.y + $0.height
                } ?? false, "\(cards[i].id) is in its namespace's box")
        }
        for i in snapshot.boxes.indices {
            for j in snapshot.boxes.indices where j > i {
                let (a, b) = (snapshot.boxes[i], snapshot.boxes[j])
                #expect(!overlaps((a.x, a.y, a.width, a.height), (b.x, b.y, b.width, b.height)), "boxes overlap")
            }
        }
    }

    @Test("all namespaces: no card overlaps another, boxes hold their cards and do not overlap")
    func noOverlap() {
        var snapshot = Self.snapshot(Self.shop, ports: ["shop/frontend": 9, "billing/ledger": 3])
        var layout = MapLayout()
        layout.place(&snapshot)
        Self.checkNoOverlap(snapshot)
        #expect(snapshot.boxes.map(\.namespace) == ["shop", "billing", "kube-system", ""], "callers' box first")
        #expect(snapshot.width > 0 && snapshot.height > 0)
    }

    @Test("senders are left of their receivers, inside a namespace and across namespaces")
    func sendersLeft() {
        var snapshot = Self.snapshot(Self.shop)
        var layout = MapLayout()
        layout.place(&snapshot)
        let x = Dictionary(uniqueKeysWithValues: snapshot.cards.map { ($0.id, $0.x) })
        for (source, destination) in Self.shop {
            #expect(x[source]! < x[destination]!, "\(source) left of \(destination)")
        }
    }

    @Test("deterministic: the same cards and edges, in any order, give the same picture")
    func deterministic() {
        var first = Self.snapshot(Self.shop)
        var second = Self.snapshot(Self.shop.reversed())
        second.cards.reverse()
        var one = MapLayout()
        var two = MapLayout()
        one.place(&first)
        two.place(&second)
        #expect(first.cards.sorted { $0.id < $1.id } == second.cards.sorted { $0.id < $1.id })
        #expect(first.boxes == second.boxes)
    }

    @Test("stable: cards placed before keep their column and order when new ones arrive or grow")
    func stable() {
        var layout = MapLayout()
        var before = Self.snapshot(Array(Self.shop.prefix(4)))
        layout.place(&before)
        var after = Self.snapshot(Self.shop + [("shop/loadgen", "shop/search")], ports: ["shop/loadgen": 6])
        layout.place(&after)
        Self.checkNoOverlap(after)
        let old = Dictionary(uniqueKeysWithValues: before.cards.map { ($0.id, $0) })
        let new = Dictionary(uniqueKeysWithValues: after.cards.map { ($0.id, $0) })
        for (id, card) in old {
            #expect(new[id]!.x == card.x || card.namespace != new[id]!.namespace, "\(id) keeps its column")
        }
        // Order in each column is kept.
        let columns = Dictionary(grouping: before.cards) { "\($0.namespace)@\($0.x)" }
        for column in columns.values where column.count > 1 {
            let ids = column.sorted { $0.y < $1.y }.map(\.id)
            #expect(ids == ids.sorted { new[$0]!.y < new[$1]!.y }, "order kept in \(ids)")
        }
    }

    @Test("few crossings: new receivers line up with their senders")
    func fewCrossings() {
        var snapshot = Self.snapshot([("ns/a1", "ns/b9"), ("ns/a2", "ns/b1"), ("ns/a3", "ns/b5")])
        var layout = MapLayout()
        layout.place(&snapshot)
        let y = Dictionary(uniqueKeysWithValues: snapshot.cards.map { ($0.id, $0.y) })
        var crossings = 0
        for (a, b) in [("ns/a1", "ns/b9"), ("ns/a2", "ns/b1"), ("ns/a3", "ns/b5")] {
            for (c, d) in [("ns/a1", "ns/b9"), ("ns/a2", "ns/b1"), ("ns/a3", "ns/b5")] where a < c {
                if (y[a]! < y[c]!) != (y[b]! < y[d]!) { crossings += 1 }
            }
        }
        #expect(crossings == 0, "receivers in their senders' order, not by name")
    }

    /// Every edge is a chain of curves from its sender's side to its receiver's, and no point of
    /// it lies on a card.
    static func checkRoutes(_ snapshot: Snapshot) {
        let cards = Dictionary(uniqueKeysWithValues: snapshot.cards.map { ($0.id, $0) })
        for edge in snapshot.edges {
            let (source, destination) = (cards[edge.source]!, cards[edge.destination]!)
            guard let first = edge.path.first, let last = edge.path.last else {
                Issue.record("\(edge.id) has no path")
                continue
            }
            #expect(first.x0 == source.x + source.width, "\(edge.id) leaves its sender's right side")
            #expect(first.y0 > source.y && first.y0 < source.y + source.height, "\(edge.id) leaves from its sender")
            #expect(
                last.x3 == destination.x || last.x3 == destination.x + destination.width,
                "\(edge.id) arrives at a side of its receiver")
            #expect(
                last.y3 > destination.y && last.y3 < destination.y + destination.height,
                "\(edge.id) arrives at its receiver")
            for (a, b) in zip(edge.path, edge.path.dropFirst()) {
                #expect(a.x3 == b.x0 && a.y3 == b.y0, "\(edge.id)'s curves join")
            }
            for curve in edge.path {
                for step in 1..<50 {
                    let point = curve.point(at: Double(step) / 50)
                    for card in snapshot.cards {
                        let inside =
                            point.x > card.x + 0.5 && point.x < card.x + card.width - 0.5 && point.y > card.y + 0.5
                            && point.y < card.y + card.height - 0.5
                        #expect(!inside, "\(edge.id) passes over \(card.id) at \(point)")
                    }
                }
            }
        }
    }

    @Test("edges go around cards: the shop, and every namespace of a busy cluster with loops and callers to the left")
    func routesAvoidCards() {
        var shop = Self.snapshot(Self.shop + [("shop/frontend", "shop/frontend")], ports: ["shop/frontend": 9])
        var layout = MapLayout()
        layout.place(&shop)
        Self.checkRoutes(shop)

        // A cluster of 6 namespaces × 6 workloads with random calls (a fixed seed), cycles and
        // self-calls included, so some receivers sit left of or beside their senders.
        var generator = SeededRandom(seed: 7)
        var calls: [(String, String)] = []
        let ids =
            (0..<6).flatMap { n in (0..<6).map { "ns\(n)/w\(n * 6 + $0)" } } + ["world/192.0.2.1", "world/192.0.2.2"]
        for _ in 0..<90 {
            calls.append(
                (ids[Int(generator.next() % UInt64(ids.count - 2))], ids[Int(generator.next() % UInt64(ids.count))]))
        }
        var busy = Self.snapshot(calls, ports: Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0 % 7) }))
        var busyLayout = MapLayout()
        busyLayout.place(&busy)
        Self.checkNoOverlap(busy)
        Self.checkRoutes(busy)
        let x = Dictionary(uniqueKeysWithValues: busy.cards.map { ($0.id, $0.x) })
        #expect(busy.edges.contains { x[$0.source]! > x[$0.destination]! }, "the test has callers to the right")
        #expect(busy.edges.contains { x[$0.source]! == x[$0.destination]! }, "and calls within a column")
    }

    @Test("edges through one gap get lanes of their own; edges at one card side are spread along it")
    func lanes() {
        // Three senders on the left, one card in the middle column, three receivers past it:
        // every call crosses the middle column.
        var snapshot = Self.snapshot([
            ("ns/a1", "ns/m"), ("ns/m", "ns/z1"), ("ns/m", "ns/z2"), ("ns/m", "ns/z3"),
            ("ns/a1", "ns/z1"), ("ns/a2", "ns/z2"), ("ns/a3", "ns/z3"),
        ])
        var layout = MapLayout()
        layout.place(&snapshot)
        Self.checkRoutes(snapshot)
        let crossing = snapshot.edges.filter { $0.path.count == 3 }.map { $0.path[1].y0 }
        #expect(crossing.count == 3, "three edges cross the middle column")
        #expect(Set(crossing).count == 3, "each on its own lane: \(crossing)")
        let starts = snapshot.edges.filter { $0.source == "ns/a1" }.map { $0.path[0].y0 }
        #expect(Set(starts).count == 2, "a1's two edges leave it at two places")
        let arrivals = snapshot.edges.filter { $0.destination == "ns/z2" }.map { $0.path.last!.y3 }
        #expect(Set(arrivals).count == 2, "z2's two edges arrive at two places")
    }
}
