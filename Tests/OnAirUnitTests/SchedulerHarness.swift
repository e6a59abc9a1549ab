import Foundation
import Logging
import InMemoryLogging
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler
import OnAirTestSupport

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
    /// Everything the scheduler logged, with its metadata (swift-log's in-memory handler).
    let logs: InMemoryLogHandler
    let loop: Task<Void, Never>

    init(schedule: Schedule, at start: Date, journalDirectory: String = temporaryDirectory(), warmUpLead: TimeInterval = 0,
         deliveriesPerTarget: Int = 64, prepare: ((SQLiteJournal) async throws -> Void)? = nil) async throws {
        time = ManualTime(start)
        transport = RecordingTransport(time: time)
        journal = try SQLiteJournal(directory: journalDirectory)
        try await prepare?(journal)
        store = InstrumentedJournal(journal)
        let deliverer = Deliverer(transport: transport, builder: RequestBuilder(secrets: SecretResolver(environment: ["ONAIR_SITE_SECRET": "x"])),
                                  policy: RetryPolicy(initialBound: 0.01, maximumBound: 0.01), time: time)
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "scheduler") { _ in logs }
        logger.logLevel = .info
        self.logs = logs
        scheduler = Scheduler(schedule: schedule, journal: store, deliverer: deliverer, time: time, logger: logger,
                              warmUpLead: warmUpLead, deliveriesPerTarget: deliveriesPerTarget)
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

/// `count` consecutive items of `minutes` each from 10:00 on 2021-11-08, all on one target `site`:
/// a daemon started at noon finds every stop due at once (SPEC 4).
func pastItemsOnOneTarget(_ count: Int, minutes: Int) throws -> Schedule {
    var yaml = "id: t\ntitle: T\ntimezone: UTC\ntargets:\n  site: { url: \"http://127.0.0.1:9/hook\" }\n"
    yaml += "days:\n  - date: 2021-11-08\n    programme:\n"
    for k in 0..<count {
        let start = 600 + minutes * k
        yaml += "      - { id: item-\(k), title: I, start: \"\(start / 60):\(String(format: "%02d", start % 60))\", duration: \(minutes)m }\n"
    }
    return try load(yaml)
}

/// One item on air since 10:30 (its start delivered) whose scheduled stop at 11:00 the platform
/// refuses with 500: the stop is being retried when this returns.
func rigWithItsStopBeingRetried() async throws -> SchedulerRig {
    let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:30:00Z"))
    _ = await rig.eventually { rig.transport.calls.count == 1 }
    await rig.settle()
    rig.transport.answer(500)
    rig.time.advance(to: utc("2021-11-08T11:00:00Z"))
    _ = await rig.eventually { await !rig.scheduler.snapshot().retrying.isEmpty }
    return rig
}
