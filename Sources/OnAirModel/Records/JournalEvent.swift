import Foundation

/// Something the daemon did that is not a delivery: start-up, reload, shutdown, override.
public struct JournalEvent: Sendable, Hashable, Codable {
    public var at: Date
    public var kind: String
    public var detail: String
    public var ok: Bool

    public init(at: Date, kind: String, detail: String, ok: Bool = true) {
        self.at = at
        self.kind = kind
        self.detail = detail
        self.ok = ok
    }
}
