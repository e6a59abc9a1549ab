import Foundation

/// The programme as an RFC 5545 calendar, so producers, hosts and technicians can subscribe to
/// the week in their own calendar program.
public enum ICalendar {
    /// The whole programme: every item, online and on-site, one VEVENT each. `stamp` is DTSTAMP
    /// (the moment the calendar was made); UIDs are stable so a re-import updates events.
    public static func render(_ schedule: Schedule, stamp: Date) -> String {
        var lines: [String] = [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//OnAir//onair \(OnAirVersion.current)//EN",
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            "X-WR-CALNAME:" + escape(schedule.title),
            "X-WR-TIMEZONE:" + schedule.timeZone.identifier,
        ]
        for item in schedule.items {
            let day = schedule.day(item.day)
            var description = day?.title.map { "\($0) (\(item.day))" } ?? "\(item.day)"
            description += item.online ? "\nStreamed online." : "\nOn site only, not streamed."
            if let theme = schedule.theme { description += "\n\(schedule.title): \(theme)" }
            lines += [
                "BEGIN:VEVENT",
                "UID:\(item.id)@\(schedule.id).onair",
                "DTSTAMP:" + basicUTC(stamp),
                "DTSTART:" + basicUTC(item.start),
                "DTEND:" + basicUTC(item.end),
                "SUMMARY:" + escape(item.title),
            ]
            if let location = item.location { lines.append("LOCATION:" + escape(location)) }
            lines.append("DESCRIPTION:" + escape(description))
            if let kind = item.kind { lines.append("CATEGORIES:" + escape(kind)) }
            lines.append("END:VEVENT")
        }
        lines.append("END:VCALENDAR")
        return lines.map(fold).joined(separator: "\r\n") + "\r\n"
    }

    /// `20211108T090000Z`.
    static func basicUTC(_ date: Date) -> String {
        WallClock.utcText(date).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
    }

    /// TEXT escaping of RFC 5545 3.3.11: backslash, semicolon, comma and newlines.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case ";": out += "\\;"
            case ",": out += "\\,"
            case "\r": out += "\\n"
            case "\n": if !previousWasCR { out += "\\n" }
            default:
                // Other control characters are not allowed in TEXT; drop them.
                if scalar.value < 0x20 && scalar != "\t" || scalar.value == 0x7F { break }
                out.unicodeScalars.append(scalar)
            }
            previousWasCR = scalar == "\r"
        }
        return out
    }

    /// Folds a content line into pieces of at most 75 octets (RFC 5545 3.1), never splitting
    /// a UTF-8 sequence; continuation lines start with one space, which counts toward the 75.
    public static func fold(_ line: String) -> String {
        guard line.utf8.count > 75 else { return line }
        var out = ""
        var current = 0
        var limit = 75
        for scalar in line.unicodeScalars {
            let size = String(scalar).utf8.count
            if current + size > limit {
                out += "\r\n "
                current = 1
                limit = 75
            }
            out.unicodeScalars.append(scalar)
            current += size
        }
        return out
    }
}
