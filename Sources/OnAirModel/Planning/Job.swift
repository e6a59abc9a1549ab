import Foundation

/// The identity of one intended delivery: one action of one item to one target.
///
/// It is stable across restarts and reloads (it names no time), so the journal can tell a job
/// it has already delivered from a new one, and a platform receives the same `webhook-id` on
/// every retry of it.
public struct JobID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var event: String
    public var item: String
    public var action: Action
    public var target: String

    public init(event: String, item: String, action: Action, target: String) {
        self.event = event
        self.item = item
        self.action = action
        self.target = target
    }

    /// `rv-2021/zorg-plenary/start/site`: slugs never contain '/', so the text is unambiguous.
    public var description: String { "\(event)/\(item)/\(action.rawValue)/\(target)" }

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, let action = Action(rawValue: parts[2]) else { return nil }
        self.init(event: parts[0], item: parts[1], action: action, target: parts[3])
    }

    public static func < (a: JobID, b: JobID) -> Bool { a.description < b.description }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = JobID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad job id \(text)"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A job the schedule yields: when it fires and until when delivering it still makes sense.
public struct PlannedJob: Sendable, Hashable {
    public var id: JobID
    /// The instant the call must go out — never before it.
    public var instant: Date
    /// After this the job gives up (SPEC section 3): a prepare is pointless once the item has
    /// started, a start once it has ended; a stop is worth an hour of retries.
    public var deadline: Date

    public init(id: JobID, instant: Date, deadline: Date) {
        self.id = id
        self.instant = instant
        self.deadline = deadline
    }

    public var action: Action { id.action }
    public var itemID: String { id.item }
    public var target: String { id.target }

    /// Firing order: by instant; at the same instant a stop goes before a prepare or start,
    /// so that one item is off the air before the next goes on.
    public static func firingOrder(_ a: PlannedJob, _ b: PlannedJob) -> Bool {
        if a.instant != b.instant { return a.instant < b.instant }
        let ra = a.action == .stop ? 0 : a.action.rank + 1
        let rb = b.action == .stop ? 0 : b.action.rank + 1
        if ra != rb { return ra < rb }
        if a.id.item != b.id.item { return a.id.item < b.id.item }
        return a.id.target < b.id.target
    }
}
