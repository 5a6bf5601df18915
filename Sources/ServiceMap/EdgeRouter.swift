import Foundation

/// Draws a placed snapshot's edges so that none passes over a card.
///
/// The layout leaves the cards in columns with card-free channels between them (every card of a
/// column shares its x, and no two columns overlap). An edge leaves its sender's right side and
/// enters its receiver's left side; on the way it crosses each column in between through a gap
/// between two cards (or above or below them), the gap nearest the straight line, on a lane of
/// its own when several edges share one gap. Within a channel it is an S-curve whose control
/// points stay in the channel, so the whole curve does; through a column it is a straight line in
/// the gap. A receiver in the sender's own column is reached with a loop around the right side,
/// one further left by turning around there and crossing the columns back, into its right side.
/// Where several edges meet a card's side they are spread along it in the order of where they
/// come from, so they do not cross at the card.
enum EdgeRouter {
    /// Room kept between an edge and a card it passes.
    static let clearance = 9.0
    /// Distance between edges sharing a gap.
    static let laneSpacing = 6.0
    /// Distance between edges meeting one side of a card.
    static let portSpacing = 9.0
    /// How far above the cards an edge may pass (the page leaves a margin around the map).
    static let topMargin = -12.0

    struct Column {
        var x: Double
        var right: Double
        /// Free vertical intervals, top to bottom (the last is open-ended).
        var gaps: [(low: Double, high: Double)]
    }

    /// Where an edge crosses one column.
    struct Crossing {
        var column: Int
        var gap: Int
        var ideal: Double
        var y: Double = 0
    }

    enum Shape { case forward, backward, loop }

    struct Plan {
        var edge: Int
        var source: Card
        var destination: Card
        var shape: Shape
        var crossings: [Crossing]
        var start: Double = 0
        var end: Double = 0
    }

    static func route(_ snapshot: inout Snapshot) {
        let cards = Dictionary(uniqueKeysWithValues: snapshot.cards.map { ($0.id, $0) })
        let columns = Self.columns(of: snapshot.cards)
        let columnOf = Dictionary(
            uniqueKeysWithValues: snapshot.cards.map { card in
                (card.id, columns.firstIndex { $0.x == card.x }!)
            })

        // Ties are broken by edge id (whatever order the edges come in): each edge's rank by id.
        var rank = [Int](repeating: 0, count: snapshot.edges.count)
        for (position, index) in snapshot.edges.indices.sorted(by: { snapshot.edges[$0].id < snapshot.edges[$1].id })
            .enumerated()
        {
            rank[index] = position
        }

        // Which columns each edge crosses, and through which gap (the one nearest its straight line).
        var plans: [Plan] = []
        for (index, edge) in snapshot.edges.enumerated() {
            guard let source = cards[edge.source], let destination = cards[edge.destination] else { continue }
            let (from, to) = (columnOf[source.id]!, columnOf[destination.id]!)
            let startY = anchor(source)
            let endY = anchor(destination)
            let shape: Shape
            let crossed: [Int]
            let (startX, endX): (Double, Double)
            if to > from {
                shape = .forward
                crossed = Array(from + 1..<to)
                (startX, endX) = (source.x + source.width, destination.x)
            } else if to < from {
                shape = .backward
                crossed = Array((to + 1...from).reversed())
                (startX, endX) = (source.x + source.width, destination.x + destination.width)
            } else {
                shape = .loop
                crossed = []
                (startX, endX) = (0, 0)
            }
            let crossings = crossed.map { column -> Crossing in
                let center = (columns[column].x + columns[column].right) / 2
                let share = endX == startX ? 0.5 : min(1, max(0, (center - startX) / (endX - startX)))
                let ideal = startY + (endY - startY) * share
                return Crossing(
                    column: column, gap: nearestGap(columns[column].gaps, to: ideal, toward: endY), ideal: ideal)
            }
            plans.append(
                Plan(edge: index, source: source, destination: destination, shape: shape, crossings: crossings))
        }

        // Lanes: the edges through one gap, in the order of their straight lines, side by side.
        struct GapKey: Hashable {
            var column: Int
            var gap: Int
        }
        var sharing: [GapKey: [(ideal: Double, rank: Int, plan: Int, crossing: Int)]] = [:]
        for (p, plan) in plans.enumerated() {
            for (c, crossing) in plan.crossings.enumerated() {
                sharing[GapKey(column: crossing.column, gap: crossing.gap), default: []].append(
                    (crossing.ideal, rank[plan.edge], p, c))
            }
        }
        for (key, users) in sharing {
            let gap = columns[key.column].gaps[key.gap]
            let ordered = users.sorted { ($0.ideal, $0.rank) < ($1.ideal, $1.rank) }
            let ideals = ordered.map(\.ideal)
            for (y, user) in zip(
                lanes(count: ordered.count, around: ideals.reduce(0, +) / Double(ideals.count), in: gap), ordered)
            {
                plans[user.plan].crossings[user.crossing].y = y
            }
        }

        // Ports: the edges meeting each side of a card, spread in the order of where they come from.
        struct End: Hashable {
            var card: String
            var right: Bool
        }
        var ends: [End: [(plan: Int, outgoing: Bool, toward: Double, rank: Int)]] = [:]
        for (p, plan) in plans.enumerated() {
            let first = plan.crossings.first?.y ?? anchor(plan.destination)
            let last = plan.crossings.last?.y ?? anchor(plan.source)
            ends[End(card: plan.source.id, right: true), default: []].append((p, true, first, rank[plan.edge]))
            ends[End(card: plan.destination.id, right: plan.shape != .forward), default: []].append(
                (p, false, last, rank[plan.edge]))
        }
        for (end, users) in ends {
            let card = cards[end.card]!
            let ordered = users.sorted {
                ($0.toward, $0.rank, $0.outgoing ? 0 : 1) < ($1.toward, $1.rank, $1.outgoing ? 0 : 1)
            }
            let spacing = ordered.count > 1 ? min(portSpacing, (card.height - 16) / Double(ordered.count - 1)) : 0
            let middle = card.y + card.height / 2
            for (i, user) in ordered.enumerated() {
                let y = middle + (Double(i) - Double(ordered.count - 1) / 2) * spacing
                if user.outgoing { plans[user.plan].start = y } else { plans[user.plan].end = y }
            }
        }

        for plan in plans {
            let path = curves(plan, columns: columns)
            snapshot.edges[plan.edge].path = path
            snapshot.edges[plan.edge].label = label(plan, path: path)
            // Lanes below the lowest card and loops beside the last column widen the picture.
            for curve in path {
                snapshot.height = max(snapshot.height, curve.y0 + 4, curve.y1 + 4, curve.y2 + 4, curve.y3 + 4)
                snapshot.width = max(snapshot.width, curve.x0, curve.x1, curve.x2, curve.x3)
            }
        }
    }

    /// Where an edge would meet a card if it were alone: the middle of its title.
    static func anchor(_ card: Card) -> Double { card.y + min(26, card.height / 2) }

    static func columns(of cards: [Card]) -> [Column] {
        Dictionary(grouping: cards, by: \.x).keys.sorted().map { x in
            let members = cards.filter { $0.x == x }.sorted { $0.y < $1.y }
            var gaps: [(low: Double, high: Double)] = []
            var top = topMargin
            for card in members {
                gaps.append((top, card.y))
                top = card.y + card.height
            }
            gaps.append((top, .infinity))
            return Column(x: x, right: x + (members.map(\.width).max() ?? 0), gaps: gaps)
        }
    }

    /// The gap whose usable part comes nearest `y`; between two as near, the one toward `target`.
    static func nearestGap(_ gaps: [(low: Double, high: Double)], to y: Double, toward target: Double) -> Int {
        func distance(_ gap: (low: Double, high: Double)) -> Double {
            let (low, high) = (gap.low + clearance, gap.high - clearance)
            return y < low ? low - y : y > high ? y - high : 0
        }
        return gaps.indices.min {
            let (a, b) = (distance(gaps[$0]), distance(gaps[$1]))
            if a != b { return a < b }
            return abs(gaps[$0].low - target) < abs(gaps[$1].low - target)
        }!
    }

    /// `count` lanes `laneSpacing` apart (closer when the gap is narrow), centred as near `y` as the gap allows.
    static func lanes(count: Int, around y: Double, in gap: (low: Double, high: Double)) -> [Double] {
        let (low, high) = (gap.low + clearance, gap.high - clearance)
        guard high > low else { return Array(repeating: (gap.low + gap.high) / 2, count: count) }
        let spacing = count > 1 ? min(laneSpacing, (high - low) / Double(count - 1)) : 0
        let half = spacing * Double(count - 1) / 2
        let center = min(max(y, low + half), high - half)
        return (0..<count).map { center - half + Double($0) * spacing }
    }

    static func sCurve(_ a: (Double, Double), _ b: (Double, Double)) -> Edge.Curve {
        let middle = (a.0 + b.0) / 2
        return Edge.Curve(a.0, a.1, middle, a.1, middle, b.1, b.0, b.1)
    }

    static func line(_ a: (Double, Double), _ b: (Double, Double)) -> Edge.Curve {
        Edge.Curve(
            a.0, a.1, a.0 + (b.0 - a.0) / 3, a.1 + (b.1 - a.1) / 3, a.0 + 2 * (b.0 - a.0) / 3,
            a.1 + 2 * (b.1 - a.1) / 3, b.0, b.1)
    }

    /// A turn to the right of `x`, from `y1` back to `y2`.
    static func uTurn(x: Double, _ y1: Double, _ y2: Double) -> Edge.Curve {
        let reach = 28 + min(44, abs(y2 - y1) / 4)
        return Edge.Curve(x, y1, x + reach, y1, x + reach, y2, x, y2)
    }

    static func curves(_ plan: Plan, columns: [Column]) -> [Edge.Curve] {
        let source = plan.source
        let destination = plan.destination
        var point = (source.x + source.width, plan.start)
        var path: [Edge.Curve] = []
        switch plan.shape {
        case .loop:
            path.append(uTurn(x: point.0, plan.start, plan.end))
        case .forward:
            for crossing in plan.crossings {
                let column = columns[crossing.column]
                path.append(sCurve(point, (column.x, crossing.y)))
                path.append(line((column.x, crossing.y), (column.right, crossing.y)))
                point = (column.right, crossing.y)
            }
            path.append(sCurve(point, (destination.x, plan.end)))
        case .backward:
            // Turn around beside the sender, into its column's gap, then leftwards.
            let own = plan.crossings[0]
            path.append(uTurn(x: point.0, plan.start, own.y))
            point = (point.0, own.y)
            for (i, crossing) in plan.crossings.enumerated() {
                let column = columns[crossing.column]
                if i > 0 { path.append(sCurve(point, (column.right, crossing.y))) }
                path.append(line((column.right, crossing.y), (column.x, crossing.y)))
                point = (column.x, crossing.y)
            }
            path.append(sCurve(point, (destination.x + destination.width, plan.end)))
        }
        return path
    }

    /// The label sits on the last curve, the one arriving at the receiver: midway along it, or
    /// beside the turn of a loop.
    static func label(_ plan: Plan, path: [Edge.Curve]) -> Edge.Label {
        let last = path[path.count - 1]
        if plan.shape == .loop {
            return Edge.Label(x: last.x1 * 0.75 + last.x0 * 0.25 + 6, y: (last.y0 + last.y3) / 2 + 4, anchor: "start")
        }
        return Edge.Label(x: (last.x0 + last.x3) / 2, y: (last.y0 + last.y3) / 2 - 5, anchor: "middle")
    }
}
