import Foundation

/// The duration notation of schedule files and the CLI: `90s`, `10m`, `1h30m`, `2h`, `1h0m30s`.
///
/// Only whole seconds: a broadcast schedule has no use for sub-second durations, and whole
/// seconds keep job instants exact and comparable across restarts.
public enum DurationText {
    /// Parses the notation into seconds, or nil when it is not one. `0` alone is accepted
    /// (it means "none", as for `lead_time`).
    public static func seconds(_ text: String) -> Int? {
        if text == "0" { return 0 }
        var total = 0
        var number: Int? = nil
        var lastUnitRank = -1
        var sawUnit = false
        for ch in text.unicodeScalars {
            if (48...57).contains(ch.value) {
                let digit = Int(ch.value - 48)
                let (mul, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (sum, o2) = mul.addingReportingOverflow(digit)
                if o1 || o2 || sum > 10_000_000 { return nil }
                number = sum
                continue
            }
            let (rank, factor): (Int, Int)
            switch ch {
            case "h": (rank, factor) = (0, 3600)
            case "m": (rank, factor) = (1, 60)
            case "s": (rank, factor) = (2, 1)
            default: return nil
            }
            guard let n = number, rank > lastUnitRank else { return nil }
            total += n * factor
            lastUnitRank = rank
            number = nil
            sawUnit = true
        }
        guard sawUnit, number == nil, total <= 366 * 86_400 else { return nil }
        return total
    }

    /// The canonical text of a number of seconds, the inverse of `seconds(_:)`.
    public static func format(_ seconds: Int) -> String {
        if seconds == 0 { return "0s" }
        let sign = seconds < 0 ? "-" : ""
        var rest = abs(seconds)
        var out = sign
        let h = rest / 3600; rest %= 3600
        let m = rest / 60; rest %= 60
        if h > 0 { out += "\(h)h" }
        if m > 0 { out += "\(m)m" }
        if rest > 0 { out += "\(rest)s" }
        return out
    }
}
