import Foundation
import OnAirModel

/// Removes secret values from text that leaves the delivery engine (error messages, response
/// lines), since a platform or libcurl may echo what it was sent.
public struct Redactor: Sendable {
    public private(set) var secrets: [String] = []

    public init() {}

    public mutating func add(_ secret: String) {
        if secret.count >= 3 { secrets.append(secret) }
    }

    public func scrub(_ text: String) -> String {
        var out = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) {
            out = out.replacingOccurrences(of: secret, with: "***")
        }
        return out
    }
}
