import Foundation

/// Places a snapshot's cards: each namespace is a box of columns, senders left of receivers
/// (a card's column is the length of the longest chain of senders before it inside its box);
/// cards outside the cluster's namespaces (world, host, remote nodes) share a box of their own.
/// Boxes are placed the same way: a namespace that calls another sits to its left. Deterministic — the same cards and edges give the same picture — and stable:
/// a card keeps its box, column and place in the column for as long as the layout lives, new
/// cards join the end of their column, and coordinates are recomputed from that order so
/// nothing overlaps when a card grows or a column gets longer. Edges are then drawn around the
/// cards (`EdgeRouter`).
public struct MapLayout: Sendable {
    public static let cardWidth: Double = 230
    public static let cardHeaderHeight: Double = 54
    public static let portLineHeight: Double = 18
    /// Ports listed on a card before "+N more".
    public static let maxPortLines = 5
    public static let columnGap: Double = 150
    public static let rowGap: Double = 28
    public static let boxPadding: Double = 24
    public static let boxTitleHeight: Double = 30
    public static let boxGap: Double = 48

    /// Group (namespace; "" for outside the cluster) → columns → card ids, in placement order.
    var columns: [String: [[String]]] = [:]

    public init() {}

    /// Lays `snapshot` out, keeping every card that was placed before where it was.
    public mutating func place(_ snapshot: inout Snapshot) {
        let groups = Dictionary(grouping: snapshot.cards, by: \.namespace)
        let groupOf = Dictionary(uniqueKeysWithValues: snapshot.cards.map { ($0.id, $0.namespace) })
        // Cards inside each group, by the edges inside it.
        for (group, cards) in groups {
            var senders: [String: [String]] = [:]
            for edge in snapshot.edges
            where edge.source != edge.destination
                && groupOf[edge.source] == group && groupOf[edge.destination] == group
            {
                senders[edge.destination, default: []].append(edge.source)
            }
            Self.layer(cards.map(\.id), into: &columns[group, default: []], senders: senders)
        }
        // Boxes the same way, by the edges between them: a namespace that calls another sits to
        // its left.
        // (Outside the cluster sorts after every namespace in its column.)
        func boxKey(_ group: String) -> String { group.isEmpty ? Self.outsideKey : group }
        var groupSenders: [String: [String]] = [:]
        for edge in snapshot.edges {
            guard let from = groupOf[edge.source], let to = groupOf[edge.destination], from != to else { continue }
            groupSenders[boxKey(to), default: []].append(boxKey(from))
        }
        Self.layer(groups.keys.map(boxKey), into: &boxColumns, senders: groupSenders)

        // Coordinates from the kept order: box columns left to right, boxes stacked in each.
        var byID = Dictionary(uniqueKeysWithValues: snapshot.cards.map { ($0.id, $0) })
        var boxes: [Box] = []
        var x = 0.0
        var bottom = 0.0
        for column in boxColumns {
            var y = 0.0
            var widest = 0.0
            for key in column {
                let group = key == Self.outsideKey ? "" : key
                guard groups[group] != nil else { continue }
                let box = arrange(group: group, cards: &byID, x: x, y: y)
                boxes.append(box)
                y += box.height + Self.boxGap
                widest = max(widest, box.width)
            }
            guard widest > 0 else { continue }
            bottom = max(bottom, y - Self.boxGap)
            x += widest + Self.boxGap * 2
        }
        snapshot.cards = snapshot.cards.map { byID[$0.id] ?? $0 }
        snapshot.boxes = boxes
        snapshot.width = max(0, x - Self.boxGap * 2)
        snapshot.height = bottom
        EdgeRouter.route(&snapshot)
    }

    /// Box columns: namespaces (`outsideKey` for outside the cluster), in placement order.
    var boxColumns: [[String]] = []
    static let outsideKey = "\u{10FFFF}outside"

    /// Puts the items of `ids` not placed yet into `columns`: an item's column is the longest
    /// chain of senders before it (the chain stops at a cycle; an item placed before keeps its
    /// column), and new items join the end of their column in their senders' order (fewer
    /// crossings), ties broken by id.
    static func layer(_ ids: [String], into columns: inout [[String]], senders: [String: [String]]) {
        let placed = Set(columns.flatMap { $0 })
        let fresh = Set(ids).subtracting(placed).sorted()
        guard !fresh.isEmpty else { return }
        var depth: [String: Int] = [:]
        var visiting: Set<String> = []
        func column(of id: String) -> Int {
            if let known = depth[id] { return known }
            if let kept = columns.firstIndex(where: { $0.contains(id) }) { return kept }
            guard visiting.insert(id).inserted else { return 0 }  // a cycle: stop here
            let result = (senders[id] ?? []).sorted().map { column(of: $0) + 1 }.max() ?? 0
            visiting.remove(id)
            depth[id] = result
            return result
        }
        let byColumn = Dictionary(grouping: fresh, by: column(of:))
        // Column by column, left to right, so each column's order can follow the one before.
        for index in byColumn.keys.sorted() {
            func row(_ id: String) -> Double {
                let rows = (senders[id] ?? []).compactMap { sender in
                    columns.lazy.compactMap { $0.firstIndex(of: sender) }.first
                }
                return rows.isEmpty ? .infinity : Double(rows.reduce(0, +)) / Double(rows.count)
            }
            let ordered = byColumn[index]!.map { (id: $0, row: row($0)) }.sorted { ($0.row, $0.id) < ($1.row, $1.id) }
            while columns.count <= index { columns.append([]) }
            columns[index] += ordered.map(\.id)
        }
    }

    /// Sets the coordinates of a group's cards present in `cards` and returns its box.
    func arrange(group: String, cards: inout [String: Card], x: Double, y: Double) -> Box {
        var columnX = x + Self.boxPadding
        var bottom = y + Self.boxTitleHeight
        var used = 0
        for column in columns[group] ?? [] {
            let present = column.filter { cards[$0] != nil }
            guard !present.isEmpty else { continue }
            var rowY = y + Self.boxTitleHeight + Self.boxPadding / 2
            for id in present {
                var card = cards[id]!
                card.x = columnX
                card.y = rowY
                card.width = Self.cardWidth
                card.height = Self.height(of: card)
                cards[id] = card
                rowY += card.height + Self.rowGap
            }
            bottom = max(bottom, rowY - Self.rowGap)
            columnX += Self.cardWidth + Self.columnGap
            used += 1
        }
        let width = used == 0 ? Self.cardWidth : columnX - Self.columnGap - x + Self.boxPadding
        return Box(namespace: group, x: x, y: y, width: width, height: bottom - y + Self.boxPadding)
    }

    static func height(of card: Card) -> Double {
        let lines = min(card.ports.count, maxPortLines) + (card.ports.count > maxPortLines ? 1 : 0)
        return cardHeaderHeight + Double(lines) * portLineHeight + (lines > 0 ? 8 : 0)
    }
}
