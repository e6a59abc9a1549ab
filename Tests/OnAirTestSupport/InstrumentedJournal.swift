import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// A real SQLite journal that counts how job records reach the disk, can hold writes of
/// batches of them (to widen the moment between "records being written" and "calls handed over"),
/// and can refuse every write, as a full or failing disk does.
public final class InstrumentedJournal: JournalStore, @unchecked Sendable {
    public struct DiskFull: Error, CustomStringConvertible { public var description: String { "database or disk is full" } }

    public let inner: SQLiteJournal
    public let batches = Gate()
    /// Holds writes of overrides (extend, delay) while closed.
    public let overrideWrites = Gate()
    private let lock = NSLock()
    private var writes: [Int] = []
    private var failing = false

    public init(_ inner: SQLiteJournal) { self.inner = inner }

    /// The number of job records in each write of job records, in order.
    public var recordWrites: [Int] { lock.withLock { writes } }
    private func count(_ n: Int) { lock.withLock { writes.append(n) } }

    /// While true, every write throws and nothing reaches the disk.
    public var failWrites: Bool {
        get { lock.withLock { failing } }
        set { lock.withLock { failing = newValue } }
    }
    private func check() throws { if failWrites { throw DiskFull() } }

    public func jobRecords() async throws -> [JobID: JobRecord] { try await inner.jobRecords() }
    public func jobRecords(in state: JobState, item: String?) async throws -> [JobRecord] { try await inner.jobRecords(in: state, item: item) }
    public func save(_ record: JobRecord) async throws { try check(); count(1); try await inner.save(record) }
    public func save(_ records: [JobRecord]) async throws {
        await batches.pass()
        try check()
        count(records.count)
        try await inner.save(records)
    }
    public func save(attempts: [AttemptWrite]) async throws {
        try check()
        lock.withLock { attemptRows.append(contentsOf: attempts.map { ($0.attempt.send, $0.job?.send) }) }
        try await inner.save(attempts: attempts)
    }

    /// Each attempt written, as (its send, the send of the job row written with it, nil for none).
    public var attemptWrites: [(attempt: Int, job: Int?)] { lock.withLock { attemptRows } }
    private var attemptRows: [(attempt: Int, job: Int?)] = []
    public func append(_ event: JournalEvent) async throws { try check(); try await inner.append(event) }
    public func attempts(item: String?, limit: Int) async throws -> [AttemptRecord] { try await inner.attempts(item: item, limit: limit) }
    public func events(limit: Int) async throws -> [JournalEvent] { try await inner.events(limit: limit) }
    public func overrides() async throws -> [String: ItemOverride] { try await inner.overrides() }
    public func save(_ override: ItemOverride) async throws { await overrideWrites.pass(); try check(); try await inner.save(override) }
    public func removeOverride(item: String) async throws { try check(); try await inner.removeOverride(item: item) }
    public func settings() async throws -> [String: String] { try await inner.settings() }
    public func save(settings: [String: String]) async throws { try check(); try await inner.save(settings: settings) }
}
