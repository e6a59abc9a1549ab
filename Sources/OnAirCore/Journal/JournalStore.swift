import Foundation

/// Where a job stands. Only jobs that something happened to have a record; a job without one
/// is planned.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case planned
    /// Handed to delivery. Found at start-up, it was cut off by a crash: it is sent again with the
    /// same webhook-id.
    case inflight
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

/// An operator's change to an item, stored against the item's id and applied to whichever
/// schedule file is in force (SPEC 3.2).
public struct ItemOverride: Sendable, Hashable, Codable {
    public var item: String
    /// Seconds the whole item moves later (`delay`).
    public var shift: Int
    /// Seconds added to the item's end (`extend`).
    public var extension_: Int
    public var by: String
    public var at: Date

    public init(item: String, shift: Int = 0, extension_: Int = 0, by: String, at: Date) {
        self.item = item
        self.shift = shift
        self.extension_ = extension_
        self.by = by
        self.at = at
    }
}

/// The durable record of everything OnAir decided and did. Every call returns only once the
/// change is on disk, and a write runs to completion even if the calling task was cancelled
/// (what happened during a shutdown must still be recorded). Kept small so that a second store (PostgreSQL, for an active/standby pair)
/// can implement it.
public protocol JournalStore: Sendable {
    /// Every job record, keyed by job id.
    func jobRecords() async throws -> [JobID: JobRecord]
    /// The records of jobs in one state, optionally of one item (history's missed jobs), without
    /// reading the whole table.
    func jobRecords(in state: JobState, item: String?) async throws -> [JobRecord]
    /// Writes (inserts or replaces) a job's record.
    func save(_ record: JobRecord) async throws
    /// Writes several job records in one transaction: jobs fired together cost one sync to disk.
    func save(_ records: [JobRecord]) async throws
    /// Writes an attempt and the job's new record together.
    func save(_ attempt: AttemptRecord, job: JobRecord) async throws
    func append(_ event: JournalEvent) async throws
    /// Attempts, newest first, optionally of one item only.
    func attempts(item: String?, limit: Int) async throws -> [AttemptRecord]
    func events(limit: Int) async throws -> [JournalEvent]
    func overrides() async throws -> [String: ItemOverride]
    func save(_ override: ItemOverride) async throws
    func removeOverride(item: String) async throws
    /// Facts about the schedule in force (its event id, time zone, file), so that `status` and
    /// `history` speak the schedule's zone when the daemon is down.
    func settings() async throws -> [String: String]
    func save(settings: [String: String]) async throws
}

/// Keys of `JournalStore.settings()`.
public enum JournalSetting {
    public static let event = "event"
    public static let timeZone = "timezone"
    public static let scheduleFile = "schedule_file"
}
