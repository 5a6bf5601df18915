import Foundation

/// `--time-format`: the layouts hubble accepts (names case-insensitive, as in hubble), named as
/// in Go's time package, plus Go's Stamp, StampMicro and StampNano.
public enum TimeFormat: String, CaseIterable, Sendable {
    case yearMonthDay = "YearMonthDay"
    case yearMonthDayHour = "YearMonthDayHour"
    case yearMonthDayHourMinute = "YearMonthDayHourMinute"
    case stamp = "Stamp"
    case stampMilli = "StampMilli"
    case stampMicro = "StampMicro"
    case stampNano = "StampNano"
    case rfc3339 = "RFC3339"
    case rfc3339Milli = "RFC3339Milli"
    case rfc3339Micro = "RFC3339Micro"
    case rfc3339Nano = "RFC3339Nano"
    case rfc1123z = "RFC1123Z"

    /// The format named `name`, in any letter case.
    public init?(named name: String) {
        guard let format = Self.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
            return nil
        }
        self = format
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]

    public func format(_ date: Date, timeZone: TimeZone) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let nanos = min(Int(((date.timeIntervalSince1970 - seconds) * 1e9).rounded()), 999_999_999)
        return format(seconds: Int64(seconds), nanos: nanos, timeZone: timeZone)
    }

    /// From a protobuf Timestamp's parts, without passing through a Double.
    public func format(seconds wholeSeconds: Int64, nanos: Int, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second, .weekday],
            from: Date(timeIntervalSince1970: TimeInterval(wholeSeconds)))
        let (year, month, day) = (parts.year!, parts.month!, parts.day!)
        let clock = String(format: "%02d:%02d:%02d", parts.hour!, parts.minute!, parts.second!)
        let offset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(wholeSeconds)))
        let sign = offset < 0 ? "-" : "+"
        let zone = String(format: "%@%02d:%02d", sign, abs(offset) / 3600, abs(offset) % 3600 / 60)
        let rfcZone = offset == 0 ? "Z" : zone
        let stamp = "\(Self.months[month - 1]) \(day < 10 ? " \(day)" : "\(day)") \(clock)"
        let date = String(format: "%04d-%02d-%02dT", year, month, day) + clock
        let day0 = String(format: "%04d-%02d-%02d", year, month, day)
        // Go's `.999…` layouts: the fraction without trailing zeros, and no dot when it is 0.
        func trimmed(_ digits: Int) -> String {
            var fraction = String(String(format: "%09d", nanos).prefix(digits))
            while fraction.hasSuffix("0") { fraction.removeLast() }
            return fraction.isEmpty ? "" : "." + fraction
        }
        switch self {
        case .yearMonthDay: return day0
        case .yearMonthDayHour: return day0 + String(format: "T%02d", parts.hour!) + rfcZone
        case .yearMonthDayHourMinute: return day0 + String(format: "T%02d:%02d", parts.hour!, parts.minute!) + rfcZone
        case .stamp: return stamp
        case .stampMilli: return stamp + String(format: ".%03d", nanos / 1_000_000)
        case .stampMicro: return stamp + String(format: ".%06d", nanos / 1000)
        case .stampNano: return stamp + String(format: ".%09d", nanos)
        case .rfc3339: return date + rfcZone
        case .rfc3339Milli: return date + trimmed(3) + rfcZone
        case .rfc3339Micro: return date + trimmed(6) + rfcZone
        case .rfc3339Nano: return date + trimmed(9) + rfcZone
        case .rfc1123z:
            return "\(Self.days[parts.weekday! - 1]), \(String(format: "%02d", day)) \(Self.months[month - 1]) "
                + "\(year) \(clock) \(zone.replacingOccurrences(of: ":", with: ""))"
        }
    }
}
