import Foundation
import Synchronization
import OnAirModel
import GRDB

/// The journal in an SQLite database (GRDB, WAL mode, synchronous=FULL on the writing connection):
/// a committed change survives a crash and a power loss, and the CLI can read while the daemon writes.
public final class SQLiteJournal: JournalStore {
    public static let fileName = "journal.sqlite"

    private let pool: DatabasePool
    private let committer: GroupCommitter

    /// Opens (and creates or migrates) the journal in `directory`, which is created with mode 0700
    /// when missing. `readOnly` is for the CLI reading a stopped daemon's state.
    public init(directory: String, readOnly: Bool = false) throws {
        if !readOnly {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.label = "onair-journal"
        configuration.busyMode = .timeout(5)
        // 512 KiB of page cache a connection, not SQLite's 2 MiB: the journal's pages are in the kernel's
        // cache anyway. heaptrack put the journal's writes at 1.4 MiB of a storm's heap peak with the
        // default and 0.6 MiB with 1 MiB; the step to 512 KiB moved the storm's RSS by no measurable amount.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -512") }
        pool = try DatabasePool(path: directory + "/" + Self.fileName, configuration: configuration)
        committer = GroupCommitter(pool: pool)
        if !readOnly {
            // After the pool is open, not in prepareDatabase: GRDB's WAL set-up runs after that hook
            // and sets synchronous=NORMAL, under which a commit is not synced and a power cut loses it.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Self.migrator.migrate(pool)
        }
    }

    /// The `synchronous` level in force on the connection that writes (2 = FULL: every commit synced).
    public func writerSynchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "job") { t in
                t.column("id", .text).primaryKey()
                t.column("item", .text).notNull().indexed()
                t.column("state", .text).notNull()
                t.column("send", .integer).notNull()
                t.column("attempts", .integer).notNull()
                t.column("instant", .double).notNull()
                t.column("deadline", .double).notNull()
                t.column("updated_at", .double).notNull()
                t.column("late_by", .double)
                t.column("detail", .text)
            }
            try db.create(table: "attempt") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("job", .text).notNull()
                t.column("item", .text).notNull().indexed()
                t.column("target", .text).notNull()
                t.column("webhook_id", .text).notNull()
                t.column("send", .integer).notNull()
                t.column("attempt", .integer).notNull()
                t.column("started_at", .double).notNull()
                t.column("status", .integer)
                t.column("error", .text)
                t.column("total_time", .double).notNull()
                t.column("outcome", .text).notNull()
                t.column("detail", .text)
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("at", .double).notNull()
                t.column("kind", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("ok", .boolean).notNull()
            }
        }
        migrator.registerMigration("v2-overrides") { db in
            try db.create(table: "override") { t in
                t.column("item", .text).primaryKey()
                t.column("shift", .integer).notNull()
                t.column("extension", .integer).notNull()
                t.column("by", .text).notNull()
                t.column("at", .double).notNull()
            }
        }
        migrator.registerMigration("v3-settings") { db in
            try db.create(table: "setting") { t in
                t.column("key", .text).primaryKey()
                t.column("value", .text).notNull()
            }
        }
        return migrator
    }

    public func settings() async throws -> [String: String] {
        try await pool.read { db in
            // A journal of an older daemon opened read-only may not have the table yet.
            guard try db.tableExists("setting") else { return [:] }
            var result: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM setting") { result[row["key"]] = row["value"] }
            return result
        }
    }

    public func save(settings: [String: String]) async throws {
        try await write { db in
            for (key, value) in settings {
                try db.execute(sql: "INSERT OR REPLACE INTO setting (key, value) VALUES (?, ?)", arguments: [key, value])
            }
        }
    }

    public func overrides() async throws -> [String: ItemOverride] {
        try await pool.read { db in
            var result: [String: ItemOverride] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM override") {
                let o = ItemOverride(item: row["item"], shift: row["shift"], extension_: row["extension"], by: row["by"],
                                     at: Date(timeIntervalSince1970: row["at"]))
                result[o.item] = o
            }
            return result
        }
    }

    public func save(_ override: ItemOverride) async throws {
        try await write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO override (item, shift, extension, by, at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [override.item, override.shift, override.extension_, override.by, override.at.timeIntervalSince1970])
        }
    }

    public func removeOverride(item: String) async throws {
        try await write { db in try db.execute(sql: "DELETE FROM override WHERE item = ?", arguments: [item]) }
    }

    public func jobRecords() async throws -> [JobID: JobRecord] {
        try await pool.read { db in
            var result: [JobID: JobRecord] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM job") {
                guard let record = Self.jobRecord(row) else { continue }
                result[record.id] = record
            }
            return result
        }
    }

    public func jobRecords(in state: JobState, item: String?) async throws -> [JobRecord] {
        try await pool.read { db in
            let rows: [Row]
            if let item {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM job WHERE item = ? AND state = ?", arguments: [item, state.rawValue])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM job WHERE state = ?", arguments: [state.rawValue])
            }
            return rows.compactMap(Self.jobRecord)
        }
    }

    static func jobRecord(_ row: Row) -> JobRecord? {
        guard let id = JobID(row["id"] as String), let state = JobState(rawValue: row["state"]) else { return nil }
        return JobRecord(id: id, state: state, send: row["send"], attempts: row["attempts"],
                         instant: Date(timeIntervalSince1970: row["instant"]), deadline: Date(timeIntervalSince1970: row["deadline"]),
                         updatedAt: Date(timeIntervalSince1970: row["updated_at"]), lateBy: row["late_by"], detail: row["detail"])
    }

    /// Writes through the group committer: on disk when it returns, in call order, and to the end
    /// even when the asking task has been cancelled (shutdown cancels deliveries, and a call answered
    /// during the grace period must still be journaled, or it is sent again).
    private func write(_ updates: @escaping @Sendable (Database) throws -> Void) async throws {
        try await committer.submit(updates)
    }

    /// Transactions committed so far (for tests: writes that arrive together share one).
    var transactionsCommitted: Int { committer.transactions }

    private static func write(_ record: JobRecord, _ db: Database) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO job (id, item, state, send, attempts, instant, deadline, updated_at, late_by, detail)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [record.id.description, record.id.item, record.state.rawValue, record.send, record.attempts,
                             record.instant.timeIntervalSince1970, record.deadline.timeIntervalSince1970,
                             record.updatedAt.timeIntervalSince1970, record.lateBy, record.detail])
    }

    public func save(_ record: JobRecord) async throws {
        try await save([record])
    }

    public func save(_ records: [JobRecord]) async throws {
        try await write { db in
            for record in records { try Self.write(record, db) }
        }
    }

    public func save(attempts: [AttemptWrite]) async throws {
        guard !attempts.isEmpty else { return }
        try await write { db in
            let insert = try db.cachedStatement(sql: """
                INSERT INTO attempt (job, item, target, webhook_id, send, attempt, started_at, status, error, total_time, outcome, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for write in attempts {
                let attempt = write.attempt
                let item = write.job?.id.item ?? JobID(attempt.job)?.item ?? ""
                try insert.execute(arguments: [attempt.job, item, attempt.target, attempt.webhookID, attempt.send, attempt.attempt,
                                               attempt.startedAt.timeIntervalSince1970, attempt.status, attempt.error,
                                               attempt.totalTime, attempt.outcome, attempt.detail])
                if let job = write.job { try Self.write(job, db) }
            }
        }
    }

    public func append(_ event: JournalEvent) async throws {
        try await write { db in
            try db.execute(sql: "INSERT INTO event (at, kind, detail, ok) VALUES (?, ?, ?, ?)",
                           arguments: [event.at.timeIntervalSince1970, event.kind, event.detail, event.ok])
        }
    }

    public func attempts(item: String?, limit: Int) async throws -> [AttemptRecord] {
        try await pool.read { db in
            let rows: [Row]
            if let item {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM attempt WHERE item = ? ORDER BY seq DESC LIMIT ?", arguments: [item, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM attempt ORDER BY seq DESC LIMIT ?", arguments: [limit])
            }
            return rows.map { row in
                AttemptRecord(job: row["job"], target: row["target"], webhookID: row["webhook_id"], send: row["send"],
                              attempt: row["attempt"], startedAt: Date(timeIntervalSince1970: row["started_at"]),
                              status: row["status"], error: row["error"], totalTime: row["total_time"],
                              outcome: row["outcome"], detail: row["detail"])
            }
        }
    }

    public func events(limit: Int) async throws -> [JournalEvent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM event ORDER BY seq DESC LIMIT ?", arguments: [limit]).map { row in
                JournalEvent(at: Date(timeIntervalSince1970: row["at"]), kind: row["kind"], detail: row["detail"], ok: row["ok"])
            }
        }
    }
}

/// Group commit: writes that arrive while one transaction is being written go together in the next,
/// so a burst of a thousand attempts costs a few syncs to disk instead of a thousand, and a job due
/// just after a burst does not queue behind them. Each write runs in a savepoint of its own (one
/// that fails leaves the others), and each caller resumes only once the transaction holding its
/// write is committed. Queued on GRDB's writer through its callback API: call order is kept and a
/// cancelled caller's write still completes.
final class GroupCommitter: Sendable {
    typealias Write = @Sendable (Database) throws -> Void
    private typealias Entry = (write: Write, continuation: CheckedContinuation<Void, Error>)
    private struct State {
        var pending: [Entry] = []
        var flushing = false
        var committed = 0
    }
    private let pool: DatabasePool
    private let state = Mutex(State())

    init(pool: DatabasePool) { self.pool = pool }

    var transactions: Int { state.withLock { $0.committed } }

    func submit(_ write: @escaping Write) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let start = state.withLock { s -> Bool in
                s.pending.append((write, continuation))
                guard !s.flushing else { return false }
                s.flushing = true
                return true
            }
            if start { pool.asyncWriteWithoutTransaction { db in self.drain(db) } }
        }
    }

    /// On GRDB's writer: commits what is pending, batch after batch, until nothing is.
    private func drain(_ db: Database) {
        while true {
            let batch = state.withLock { s -> [Entry] in
                if s.pending.isEmpty { s.flushing = false }
                defer { s.pending = [] }
                return s.pending
            }
            if batch.isEmpty { return }
            var results: [Result<Void, Error>] = []
            do {
                try db.inTransaction {
                    for entry in batch {
                        do {
                            try db.inSavepoint {
                                try entry.write(db)
                                return .commit
                            }
                            results.append(.success(()))
                        } catch {
                            results.append(.failure(error))
                        }
                    }
                    return .commit
                }
                state.withLock { $0.committed += 1 }
            } catch {
                results = batch.map { _ in .failure(error) }    // not committed: none of them counts
            }
            for (entry, result) in zip(batch, results) { entry.continuation.resume(with: result) }
        }
    }
}
