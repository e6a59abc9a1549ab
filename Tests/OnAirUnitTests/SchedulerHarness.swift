import Foundation
import Logging
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler
import OnAirTestSupport

/// A transport that answers 200 at once and remembers each call with the manual clock's time.
/// For scheduler logic only; delivery itself is tested against a real receiver.
final class RecordingTransport: HTTPTransport, @unchecked Sendable {
    struct Call {
        var method: String
        var url: String
        var at: Date
        var webhookID: String
        var type: String
        var item: String
    }

    private let lock = NSLock()
    private var log: [Call] = []
    private var status = 200
    private let gate = Gate()
    let time: TimeSource

    init(time: TimeSource) { self.time = time }

    /// The HTTP status every call is answered with from now on (200 at first).
    func answer(_ status: Int) { lock.withLock { self.status = status } }

    var calls: [Call] { lock.withLock { log } }

    /// From now on calls stay "on the wire" (unanswered, deaf to cancellation like a libcurl
    /// transfer) until `release()`.
    func holdCalls() { gate.close() }

    /// Calls currently held on the wire.
    var onTheWire: Int { gate.waiting }

    func release() { gate.open() }

    func perform(_ request: HTTPRequest) async -> TransferResult {
        // A cued call waits for its instant on the manual clock, as libcurl's engine does on the
        // real one, and is not sent at all when withdrawn first.
        if let cue = request.cue {
            while cue.current == .waiting && time.now() < cue.at { try? await Task.sleep(nanoseconds: 1_000_000) }
            guard cue.release() else { return TransferResult(kind: .notSent(reason: "withdrawn"), totalTime: 0) }
        }
        await gate.pass()
        let json = request.body.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        let data = json?["data"] as? [String: Any]
        let call = Call(method: request.method, url: request.url, at: time.now(),
                        webhookID: request.headers.first { $0.name == "webhook-id" }?.value ?? "",
                        type: json?["type"] as? String ?? "", item: data?["item"] as? String ?? "")
        let status = lock.withLock { () -> Int in
            log.append(call)
            return self.status
        }
        return TransferResult(kind: .response(HTTPResponse(status: status)), totalTime: 0)
    }
}

let quietLogger: Logger = {
    var l = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    l.logLevel = .critical
    return l
}()

func temporaryDirectory() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onair-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A scheduler on a manual clock with a recording transport and a real journal, its loop running.
struct SchedulerRig {
    let scheduler: Scheduler
    let time: ManualTime
    let transport: RecordingTransport
    let journal: SQLiteJournal
    /// The journal as the scheduler sees it: `store.failWrites = true` makes the disk "full".
    let store: InstrumentedJournal
    let loop: Task<Void, Never>

    init(schedule: Schedule, at start: Date, journalDirectory: String = temporaryDirectory(), warmUpLead: TimeInterval = 0,
         prepare: ((SQLiteJournal) async throws -> Void)? = nil) async throws {
        time = ManualTime(start)
        transport = RecordingTransport(time: time)
        journal = try SQLiteJournal(directory: journalDirectory)
        try await prepare?(journal)
        store = InstrumentedJournal(journal)
        let deliverer = Deliverer(transport: transport, builder: RequestBuilder(secrets: SecretResolver(environment: ["ONAIR_SITE_SECRET": "x"])),
                                  policy: RetryPolicy(initialBound: 0.01, maximumBound: 0.01), time: time)
        scheduler = Scheduler(schedule: schedule, journal: store, deliverer: deliverer, time: time, logger: quietLogger,
                              warmUpLead: warmUpLead)
        try await scheduler.recover()
        let s = scheduler
        loop = Task { await s.run() }
    }

    /// Waits (in real time, briefly) until `condition` holds.
    func eventually(_ what: String = "", timeout: TimeInterval = 20, _ condition: () async -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        return await condition()
    }

    /// Lets the loop settle: no new call for a short real-time while.
    func settle() async {
        var count = -1
        while count != transport.calls.count {
            count = transport.calls.count
            try? await Task.sleep(nanoseconds: 30_000_000)
        }
        await scheduler.idle()
    }

    func state(_ id: String) async -> JobState? {
        await scheduler.snapshot().records[JobID(id)!]?.state
    }

    func stop() async {
        await scheduler.shutdown(grace: 1)
        await loop.value
    }
}

/// One online item 10:00–11:00 UTC on 2021-11-08 with a 10-minute lead time, to target `site`.
func oneItemSchedule(start: String = "10:00", end: String = "11:00", extra: String = "") throws -> Schedule {
    try load("""
    id: t
    title: T
    timezone: UTC
    lead_time: 10m
    targets:
      site:
        url: http://127.0.0.1:9/hook
    days:
      - date: 2021-11-08
        programme:
          - id: show
            title: Show
            start: "\(start)"
            end: "\(end)"
    \(extra)
    """)
}

/// Lets callers through while open; while closed they wait (deaf to cancellation) until it opens.
final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var closed = false
    private var held: [CheckedContinuation<Void, Never>] = []

    func close() { lock.withLock { closed = true } }

    var waiting: Int { lock.withLock { held.count } }

    func open() {
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            closed = false
            defer { held = [] }
            return held
        }
        waiters.forEach { $0.resume() }
    }

    func pass() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if closed { held.append(continuation) }
                return !closed
            }
            if now { continuation.resume() }
        }
    }
}

/// A real SQLite journal that counts how job records reach the disk, can hold writes of
/// batches of them (to widen the moment between "records being written" and "calls handed over"),
/// and can refuse every write, as a full or failing disk does.
final class InstrumentedJournal: JournalStore, @unchecked Sendable {
    struct DiskFull: Error, CustomStringConvertible { var description: String { "database or disk is full" } }

    let inner: SQLiteJournal
    let batches = Gate()
    /// Holds writes of overrides (extend, delay) while closed.
    let overrideWrites = Gate()
    private let lock = NSLock()
    private var writes: [Int] = []
    private var failing = false

    init(_ inner: SQLiteJournal) { self.inner = inner }

    /// The number of job records in each write of job records, in order.
    var recordWrites: [Int] { lock.withLock { writes } }
    private func count(_ n: Int) { lock.withLock { writes.append(n) } }

    /// While true, every write throws and nothing reaches the disk.
    var failWrites: Bool {
        get { lock.withLock { failing } }
        set { lock.withLock { failing = newValue } }
    }
    private func check() throws { if failWrites { throw DiskFull() } }

    func jobRecords() async throws -> [JobID: JobRecord] { try await inner.jobRecords() }
    func jobRecords(in state: JobState, item: String?) async throws -> [JobRecord] { try await inner.jobRecords(in: state, item: item) }
    func save(_ record: JobRecord) async throws { try check(); count(1); try await inner.save(record) }
    func save(_ records: [JobRecord]) async throws {
        await batches.pass()
        try check()
        count(records.count)
        try await inner.save(records)
    }
    func save(_ attempt: AttemptRecord, job: JobRecord) async throws { try check(); try await inner.save(attempt, job: job) }
    func append(_ event: JournalEvent) async throws { try check(); try await inner.append(event) }
    func attempts(item: String?, limit: Int) async throws -> [AttemptRecord] { try await inner.attempts(item: item, limit: limit) }
    func events(limit: Int) async throws -> [JournalEvent] { try await inner.events(limit: limit) }
    func overrides() async throws -> [String: ItemOverride] { try await inner.overrides() }
    func save(_ override: ItemOverride) async throws { await overrideWrites.pass(); try check(); try await inner.save(override) }
    func removeOverride(item: String) async throws { try check(); try await inner.removeOverride(item: item) }
    func settings() async throws -> [String: String] { try await inner.settings() }
    func save(settings: [String: String]) async throws { try check(); try await inner.save(settings: settings) }
}
