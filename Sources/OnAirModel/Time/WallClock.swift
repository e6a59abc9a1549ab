import Foundation

/// A calendar date without a time zone, as written in a schedule (`2021-11-08`).
public struct LocalDate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Parses `YYYY-MM-DD`, rejecting dates that do not exist (2021-02-30).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1...12).contains(m), d >= 1, d <= LocalDate.daysIn(month: m, year: y)
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (proleptic Gregorian), so that date arithmetic needs no Calendar.
    public var dayNumber: Int {
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public init(dayNumber z0: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yoe + era * 400 + (m <= 2 ? 1 : 0), month: m, day: d)
    }

    public func adding(days: Int) -> LocalDate { LocalDate(dayNumber: dayNumber + days) }

    public static func < (a: LocalDate, b: LocalDate) -> Bool { a.dayNumber < b.dayNumber }

    public var description: String {
        pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
    }
}

/// A time of day as written in a schedule: `HH:MM` or `HH:MM:SS`, optionally with an explicit
/// UTC offset (`10:00+01:00`, `10:00Z`) that pins the instant where the zone's rules are ambiguous.
public struct LocalTimeOfDay: Sendable, Hashable {
    public var secondsOfDay: Int
    /// Explicit offset east of UTC in seconds, when one was written.
    public var explicitOffset: Int?

    public init(secondsOfDay: Int, explicitOffset: Int? = nil) {
        self.secondsOfDay = secondsOfDay
        self.explicitOffset = explicitOffset
    }

    public init?(_ text: String) {
        var clock = Substring(text)
        var offset: Int? = nil
        if clock.hasSuffix("Z") {
            offset = 0
            clock = clock.dropLast()
        } else if let signIndex = clock.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let sign = clock[signIndex] == "-" ? -1 : 1
            let off = clock[clock.index(after: signIndex)...].split(separator: ":", omittingEmptySubsequences: false)
            guard off.count == 2, off.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
                  let oh = Int(off[0]), let om = Int(off[1]), oh <= 14, om < 60
            else { return nil }
            offset = sign * (oh * 3600 + om * 60)
            clock = clock[..<signIndex]
        }
        let parts = clock.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3,
              parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let h = Int(parts[0]), let m = Int(parts[1]), h < 24, m < 60
        else { return nil }
        let s = parts.count == 3 ? Int(parts[2]) ?? 99 : 0
        guard s < 60 else { return nil }
        self.init(secondsOfDay: h * 3600 + m * 60 + s, explicitOffset: offset)
    }
}

/// Why a local wall-clock time does not name exactly one instant.
public enum WallClockProblem: Error, Sendable, Hashable {
    /// The clocks jump over this time (spring forward): it never happens.
    case gap
    /// The clocks pass this time twice (fall back): the offsets are the candidates.
    case ambiguous(offsets: [Int])
    /// An explicit offset was written that the zone does not use at that time.
    case offsetNotInForce(Int)
}

/// Turns wall-clock times of a zone into instants, detecting DST gaps and overlaps itself:
/// Foundation's Calendar silently moves a nonexistent time to another hour and picks one side
/// of an ambiguous one, which for a broadcast schedule would mean a stream going live at the wrong hour.
public enum WallClock {
    /// The instant at `time` on `date` in `zone`, or the reason there is not exactly one.
    public static func instant(date: LocalDate, time: LocalTimeOfDay, zone: TimeZone) -> Result<Date, WallClockProblem> {
        let wall = Double(date.dayNumber * 86_400 + time.secondsOfDay)
        if let offset = time.explicitOffset {
            let t = Date(timeIntervalSince1970: wall - Double(offset))
            return zone.secondsFromGMT(for: t) == offset ? .success(t) : .failure(.offsetNotInForce(offset))
        }
        // Any transition near this wall time has the offset of a day before on one side and the
        // offset of a day after on the other. Each candidate offset that maps back to itself is a
        // real reading of the wall time.
        let candidates = Set([
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: wall - 86_400)),
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: wall + 86_400)),
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: wall)),
        ])
        let valid = candidates.filter { offset in
            zone.secondsFromGMT(for: Date(timeIntervalSince1970: wall - Double(offset))) == offset
        }.sorted(by: >)
        switch valid.count {
        case 1: return .success(Date(timeIntervalSince1970: wall - Double(valid[0])))
        case 0: return .failure(.gap)
        default: return .failure(.ambiguous(offsets: valid))
        }
    }

    /// `+01:00` style text of an offset in seconds.
    public static func offsetText(_ seconds: Int) -> String {
        let a = abs(seconds)
        return (seconds < 0 ? "-" : "+") + pad(a / 3600, 2) + ":" + pad((a % 3600) / 60, 2)
    }

    /// `20:30:05`.
    public static func clockText(_ secondsOfDay: Int) -> String {
        pad(secondsOfDay / 3600, 2) + ":" + pad((secondsOfDay % 3600) / 60, 2) + ":" + pad(secondsOfDay % 60, 2)
    }

    /// Local date and seconds-of-day of an instant in a zone.
    public static func local(_ instant: Date, in zone: TimeZone) -> (date: LocalDate, secondsOfDay: Int, offset: Int) {
        let offset = zone.secondsFromGMT(for: instant)
        let wall = Int(instant.timeIntervalSince1970.rounded(.down)) + offset
        let day = Int((Double(wall) / 86_400).rounded(.down))
        return (LocalDate(dayNumber: day), wall - day * 86_400, offset)
    }

    /// `2021-11-08 20:30:00` local rendering of an instant.
    public static func localText(_ instant: Date, in zone: TimeZone, withOffset: Bool = false) -> String {
        let l = local(instant, in: zone)
        let base = l.date.description + " " + clockText(l.secondsOfDay)
        return withOffset ? base + WallClock.offsetText(l.offset) : base
    }

    /// `2021-11-08 20:30:00 +01:00`, or `… UTC` in a zone without offset: the form every time
    /// an operator reads takes, always in the schedule's zone and always labelled (SPEC 2.1).
    public static func labelledText(_ instant: Date, in zone: TimeZone) -> String {
        let l = local(instant, in: zone)
        let label = ["UTC", "GMT", "Etc/UTC", "Etc/GMT"].contains(zone.identifier) ? "UTC" : offsetText(l.offset)
        return l.date.description + " " + clockText(l.secondsOfDay) + " " + label
    }

    /// `2021-11-08T19:30:00Z`.
    public static func utcText(_ instant: Date) -> String {
        let wall = Int(instant.timeIntervalSince1970.rounded(.down))
        let day = Int((Double(wall) / 86_400).rounded(.down))
        return LocalDate(dayNumber: day).description + "T" + clockText(wall - day * 86_400) + "Z"
    }
}

/// Zero-padded decimal text; String(format:) goes through CoreFoundation and is slow in bulk.
@inline(__always)
func pad(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}
