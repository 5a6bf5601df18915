/// Go-style durations: `500ms`, `5s`, `4m`, `1h43m`.
public enum Durations {
    /// A duration in whole nanoseconds (one `parse` returns always fits).
    public static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    /// Go's `time.Duration.String()`: `1h2m3.5s`, `2m0s`, `1.5ms`, `0s` (how hubble prints an
    /// uptime); past Go's range, the nanoseconds with `ns`, as hubble does.
    public static func goString(nanoseconds: UInt64) -> String {
        guard nanoseconds <= UInt64(Int64.max) else { return "\(nanoseconds)ns" }
        guard nanoseconds >= 1_000_000_000 else {
            if nanoseconds == 0 { return "0s" }
            if nanoseconds < 1_000 { return "\(nanoseconds)ns" }
            if nanoseconds < 1_000_000 { return decimal(nanoseconds, scale: 1_000) + "µs" }
            return decimal(nanoseconds, scale: 1_000_000) + "ms"
        }
        var text = decimal(nanoseconds % 60_000_000_000, scale: 1_000_000_000) + "s"
        let minutes = nanoseconds / 60_000_000_000
        if minutes > 0 { text = "\(minutes % 60)m" + text }
        if minutes >= 60 { text = "\(minutes / 60)h" + text }
        return text
    }

    /// `value / scale` (a power of ten) in decimal, the fraction's trailing zeros left out.
    static func decimal(_ value: UInt64, scale: UInt64) -> String {
        let (whole, fraction) = value.quotientAndRemainder(dividingBy: scale)
        guard fraction > 0 else { return "\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: String(scale).count - 1 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
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
