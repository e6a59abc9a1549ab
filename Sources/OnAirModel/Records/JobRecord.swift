import Foundation

/// Where a job stands. Only jobs that something happened to have a record; a job without one
/// is planned.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case planned
    /// Handed to delivery. Found at start-up, it was cut off by a crash: it is sent again with the
    /// same webhook-id.
    case inflight
    /// Ready ahead of its instant: rendered, signed and held by the transport, its call may leave
    /// from `instant` on. Written before the instant, so that at the instant no write remains
    /// (SPEC 4). Found at start-up with its instant passed, it counts as cut off; still ahead, as pending.
    case armed
    case delivered
    /// Failed for good: a permanent error or its deadline passed.
    case failed
    /// Its moment passed while the daemon was down or held, and sending it late would be wrong.
    case missed
    /// Cancelled by an operator (`skip`), or done by hand (`start`/`stop` before its time).
    case cancelled

    /// Never fired again, whatever happens to the schedule or the clock.
    public var isFinal: Bool { self == .delivered || self == .failed || self == .missed || self == .cancelled }
}

/// The journal's record of one job.
public struct JobRecord: Sendable, Hashable, Codable {
    public var id: JobID
    public var state: JobState
    /// Which send of the job (0 = scheduled; manual re-sends count up); part of the webhook-id.
    public var send: Int
    /// Attempts made so far for this send.
    public var attempts: Int
    public var instant: Date
    public var deadline: Date
    public var updatedAt: Date
    /// Seconds after its instant that the job was handed to delivery, when it was late.
    public var lateBy: Double?
    public var detail: String?

    public init(id: JobID, state: JobState, send: Int = 0, attempts: Int = 0, instant: Date, deadline: Date,
                updatedAt: Date, lateBy: Double? = nil, detail: String? = nil) {
        self.id = id
        self.state = state
        self.send = send
        self.attempts = attempts
        self.instant = instant
        self.deadline = deadline
        self.updatedAt = updatedAt
        self.lateBy = lateBy
        self.detail = detail
    }
}

extension JobRecord {
    /// The detail a record gets when it is missed because its deadline passed. One shared text, not
    /// one made per job: a restart after a past week records 20,000 missed jobs at once, and texts
    /// with each job's times in them took 2.5 MiB of a storm's peak. The times are in the record
    /// (`instant`, `deadline`); `reason(in:)` puts them back into words where a person reads it.
    public static let deadlinePassed = "its deadline had passed"

    /// The record's detail as a person reads it: a missed job's due time and deadline in `zone`.
    public func reason(in zone: TimeZone) -> String? {
        guard state == .missed, detail == Self.deadlinePassed else { return detail }
        return "\(id.action.rawValue) was due at \(WallClock.labelledText(instant, in: zone)); "
            + "its deadline \(WallClock.labelledText(deadline, in: zone)) had passed"
    }
}
