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
            flows: 1, verdicts: ["FORWARDED": 1], dropReasons: [:], resets: 0, handshakeRTT: nil, dnsLatency: nil,
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
}
