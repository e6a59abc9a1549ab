import Foundation
import OnAirModel

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
    /// Writes attempts, each with its job's new record, in one transaction: a burst's answers cost
    /// one sync to disk, and on disk an attempt and its job's state never disagree.
    func save(attempts: [AttemptWrite]) async throws
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

/// An attempt and the job's record it changes, written together. `job` nil: the attempt of a send
/// an operator's stop superseded; the job's row belongs to the newer send and is left alone.
public struct AttemptWrite: Sendable {
    public var attempt: AttemptRecord
    public var job: JobRecord?
    public init(_ attempt: AttemptRecord, job: JobRecord?) {
        self.attempt = attempt
        self.job = job
    }
}

extension JournalStore {
    /// One attempt and its job's record (see `AttemptWrite`).
    public func save(_ attempt: AttemptRecord, job: JobRecord?) async throws {
        try await save(attempts: [AttemptWrite(attempt, job: job)])
    }
}

/// Keys of `JournalStore.settings()`.
public enum JournalSetting {
    public static let event = "event"
    public static let timeZone = "timezone"
    public static let scheduleFile = "schedule_file"
}
