/// Go-style durations: `500ms`, `5s`, `4m`, `1h43m`.
public enum Durations {
    /// A duration in whole nanoseconds (one `parse` returns always fits).
    public static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    public static func parse(_ text: String) -> Duration? {
        guard !text.isEmpty else { return nil }
        var total = 0.0
        var number = ""
        var index = text.startIndex
        var sawUnit = false
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            var unit = ""
            while index < text.endIndex, text[index].isLetter {
                unit.append(text[index])
                index = text.index(after: index)
            }
            guard let value = Double(number) else { return nil }
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            total += value * scale
            number = ""
            sawUnit = true
        }
        // Longer than about 292 years does not fit a Duration's nanoseconds: not a duration.
        guard sawUnit, number.isEmpty, total * 1e9 < Double(Int64.max) else { return nil }
        return .nanoseconds(Int64(total * 1e9))
    }
}
