import Foundation
import OnAirModel

/// How one attempt ended, and so what happens next (SPEC section 3).
public enum AttemptOutcome: Sendable, Hashable {
    case delivered
    /// Worth trying again: connection failure, timeout, TLS failure, 408, 429, 5xx, or an
    /// expected status with an unexpected body. `retryAfter` is the platform's own wish, in seconds.
    case retryable(reason: String, retryAfter: Double?)
    /// Trying again cannot help: a redirect, any other 4xx, an unexpected status.
    case permanent(reason: String)

    public var label: String {
        switch self {
        case .delivered: "delivered"
        case .retryable: "retry"
        case .permanent: "failed"
        }
    }
}

/// Classifies transfer results.
public enum OutcomeClassifier {
    /// libcurl errors that no retry can fix: OnAir built a request libcurl refuses.
    static let permanentCurlCodes: Set<Int> = [1, 3, 4, 43, 48]  // unsupported protocol, malformed URL, not built in, bad function argument, unknown option

    public static func classify(_ result: TransferResult, expect: ResponseExpectation?, now: Date) -> AttemptOutcome {
        switch result.kind {
        case .notSent(let reason):
            return .retryable(reason: reason, retryAfter: nil)
        case .failure(let code, let message):
            if permanentCurlCodes.contains(code) { return .permanent(reason: message) }
            return .retryable(reason: message, retryAfter: nil)
        case .response(let response):
            let status = response.status
            let accepted = expect?.statuses.map { $0.contains(status) } ?? (200...299).contains(status)
            if accepted {
                if let pattern = expect?.bodyPattern, !bodyMatches(response.body, pattern) {
                    return .retryable(reason: "unexpected response: HTTP \(status): \(response.firstLine)", retryAfter: nil)
                }
                return .delivered
            }
            if status == 408 || status == 429 || (500...599).contains(status) {
                return .retryable(reason: "HTTP \(status)", retryAfter: response.retryAfter.flatMap { retryAfterSeconds($0, now: now) })
            }
            if (300...399).contains(status) {
                return .permanent(reason: "HTTP \(status): redirects are not followed")
            }
            if (200...299).contains(status) {
                return .permanent(reason: "HTTP \(status) is not among the expected statuses")
            }
            return .permanent(reason: "HTTP \(status)" + (response.firstLine.isEmpty ? "" : ": \(response.firstLine)"))
        }
    }

    static func bodyMatches(_ body: [UInt8], _ pattern: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
        let text = String(decoding: body, as: UTF8.self)
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// `Retry-After` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3).
    public static func retryAfterSeconds(_ value: String, now: Date) -> Double? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds >= 0 { return Double(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: trimmed) { return max(0, date.timeIntervalSince(now)) }
        }
        return nil
    }
}
