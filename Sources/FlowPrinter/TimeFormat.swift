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

extension TimeFormat {
    /// A time in a layout hubble's `--since` and `--until` take — YearMonthDay,
    /// YearMonthDayHour, YearMonthDayHourMinute, RFC 3339 with a fraction of any length or none,
    /// RFC1123Z — or `2006-01-02T15:04:05` without a zone. A time without a zone is UTC, as Go
    /// reads one. Exact to the nanosecond (a `Date` is not: it holds about 0.2 µs today). Nil for
    /// anything else, and for a date or clock that does not exist.
    public static func parse(_ text: String) -> (seconds: Int64, nanos: Int32)? {
        var rfc3339 = TimeText(text)
        if let date = rfc3339.rfc3339() { return date }
        var rfc1123z = TimeText(text)
        return rfc1123z.rfc1123z()
    }
}

/// The text of a time, read from the start: each reader consumes what it matched.
private struct TimeText {
    let bytes: [UInt8]
    var at = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    var atEnd: Bool { at == bytes.count }

    /// `2006-01-02`, then `T15Z07:00`, `T15:04Z07:00` or `T15:04:05[.999999999][Z07:00]`.
    mutating func rfc3339() -> (seconds: Int64, nanos: Int32)? {
        guard let year = number(4), literal("-"), let month = number(2), literal("-"), let day = number(2) else {
            return nil
        }
        if atEnd { return Self.date(year, month, day) }
        guard literal("T"), let hour = number(2) else { return nil }
        var (minute, second, nanos, hasSeconds) = (0, 0, 0, false)
        if literal(":") {
            guard let read = number(2) else { return nil }
            minute = read
            if literal(":") {
                guard let read = number(2) else { return nil }
                (second, hasSeconds) = (read, true)
                if literal(".") {
                    guard let read = fraction() else { return nil }
                    nanos = read
                }
            }
        }
        var offset = 0
        if atEnd {
            guard hasSeconds else { return nil }  // hubble's hour and minute layouts name a zone
        } else {
            guard let zone = rfc3339Zone(), atEnd else { return nil }
            offset = zone
        }
        return Self.date(year, month, day, hour, minute, second, nanos, offset: offset)
    }

    /// `Mon, 02 Jan 2006 15:04:05 -0700`.
    mutating func rfc1123z() -> (seconds: Int64, nanos: Int32)? {
        guard word(TimeFormat.days) != nil, literal(", "), let day = number(2), literal(" "),
            let month = word(TimeFormat.months), literal(" "), let year = number(4), literal(" "),
            let hour = number(2), literal(":"), let minute = number(2), literal(":"), let second = number(2)
        else { return nil }
        var nanos = 0
        if literal(".") {
            guard let read = fraction() else { return nil }
            nanos = read
        }
        guard literal(" "), let sign = sign(), let hours = number(2), let minutes = number(2), atEnd,
            minutes < 60
        else { return nil }
        return Self.date(
            year, month + 1, day, hour, minute, second, nanos, offset: sign * (hours * 3600 + minutes * 60))
    }

    /// Exactly `digits` decimal digits.
    mutating func number(_ digits: Int) -> Int? {
        guard at + digits <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[at..<at + digits] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        at += digits
        return value
    }

    mutating func literal(_ text: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        guard bytes[at...].starts(with: expected) else { return false }
        at += expected.count
        return true
    }

    /// Nanoseconds from one or more digits after the dot (beyond nine ignored, as Go does).
    mutating func fraction() -> Int? {
        var (nanos, digits) = (0, 0)
        while at < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) {
            if digits < 9 { nanos = nanos * 10 + Int(bytes[at] - UInt8(ascii: "0")) }
            digits += 1
            at += 1
        }
        guard digits > 0 else { return nil }
        for _ in digits..<max(digits, 9) { nanos *= 10 }
        return nanos
    }

    /// `Z`, or `+07:00` / `-07:00`: seconds east of UTC.
    mutating func rfc3339Zone() -> Int? {
        if literal("Z") { return 0 }
        guard let sign = sign(), let hours = number(2), literal(":"), let minutes = number(2), minutes < 60 else {
            return nil
        }
        return sign * (hours * 3600 + minutes * 60)
    }

    mutating func sign() -> Int? {
        if literal("+") { return 1 }
        if literal("-") { return -1 }
        return nil
    }

    /// The index of the three-letter name at the cursor, in any letter case.
    mutating func word(_ names: [String]) -> Int? {
        guard at + 3 <= bytes.count, let text = String(bytes: bytes[at..<at + 3], encoding: .ascii),
            let index = names.firstIndex(where: { $0.caseInsensitiveCompare(text) == .orderedSame })
        else { return nil }
        at += 3
        return index
    }

    /// The instant of a civil date and clock at `offset` seconds east of UTC; nil when the date
    /// or the clock does not exist.
    static func date(
        _ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0,
        _ nanos: Int = 0, offset: Int = 0
    ) -> (seconds: Int64, nanos: Int32)? {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...monthDays[month - 1]).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        // Days since 1970-01-01 of the proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return (Int64(seconds), Int32(nanos))
    }
}
