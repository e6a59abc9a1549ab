import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler
import OnAirTestSupport
@testable import OnAirDaemon

@Suite("Scheduler on a manual clock", .serialized)
struct SchedulerTests {
    @Test func aWholeWeekFiresEveryJobAtItsInstantInOrder() async throws {
        let env = SecretResolver(environment: ["ONAIR_SITE_SECRET": "x"])
        let schedule = try ScheduleLoader(options: .init(secrets: env)).load(path: repositoryRoot.appendingPathComponent("config/rv-2021.yaml").path)
        let plan = Planner.plan(schedule)
        let rig = try await SchedulerRig(schedule: schedule, at: utc("2021-11-07T00:00:00Z"))
        var expected = 0
        for instant in Array(Set(plan.map(\.instant))).sorted() {
            rig.time.advance(to: instant.addingTimeInterval(-0.001))
            await rig.settle()
            #expect(rig.transport.calls.count == expected, "fired before \(instant)")
            rig.time.advance(to: instant)
            expected += plan.filter { $0.instant == instant }.count
            #expect(await rig.eventually { rig.transport.calls.count == expected })
        }
        let calls = rig.transport.calls
        #expect(calls.count == 30)
        #expect(calls.map { "\($0.item)/\($0.type)" } == plan.map { "\($0.itemID)/stream.\($0.action.rawValue)" })
        for (call, job) in zip(calls, plan) { #expect(call.at == job.instant) }
        await rig.settle()
        #expect(await rig.scheduler.snapshot().records.values.allSatisfy { $0.state == .delivered })
        await rig.stop()
    }

    @Test func clockJumpForwardFiresWhatBecameDueByTheRules() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:00:00Z"))
        rig.time.set(to: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        #expect(rig.transport.calls.map(\.type) == ["stream.start"])
        #expect(await rig.state("t/show/prepare/site") == .missed)
        let start = await rig.scheduler.snapshot().records[JobID("t/show/start/site")!]
        #expect(start?.lateBy == 1800)
        rig.time.set(to: utc("2021-11-08T12:30:00Z"))  // past the stop's instant
        #expect(await rig.eventually { rig.transport.calls.count == 2 })
        #expect(rig.transport.calls.last?.type == "stream.stop")
        await rig.stop()
    }

    @Test func clockGoingBackNeverFiresADeliveredJobAgain() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:00:00Z"))
        rig.time.advance(to: utc("2021-11-08T09:50:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        rig.time.advance(to: utc("2021-11-08T10:00:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 2 })  // prepare, start
        await rig.settle()
        rig.time.set(to: utc("2021-11-08T09:00:00Z"))
        await rig.settle()
        rig.time.advance(to: utc("2021-11-08T10:00:00Z"))
        await rig.settle()
        #expect(rig.transport.calls.count == 2)
        rig.time.advance(to: utc("2021-11-08T11:00:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 3 })
        #expect(rig.transport.calls.map(\.type) == ["stream.prepare", "stream.start", "stream.stop"])
        await rig.stop()
    }

    @Test func dstNightsFireAtTheRightUTCInstants() async throws {
        let schedule = try load("""
        id: dst
        title: DST
        timezone: Europe/Amsterdam
        targets:
          site: { url: "http://127.0.0.1:9/hook" }
        days:
          - date: 2026-10-25
            programme:
              - { id: before, title: Before, start: "01:30", duration: 30m }
              - { id: second-pass, title: Second 02:30, start: "02:30+01:00", duration: 20m }
          - date: 2026-10-26
            programme:
              - { id: after, title: After, start: "03:30", duration: 10m }
        """)
        let rig = try await SchedulerRig(schedule: schedule, at: utc("2026-10-24T22:00:00Z"))
        for (instant, count) in [("2026-10-24T23:30:00Z", 1), ("2026-10-25T00:00:00Z", 2), ("2026-10-25T01:30:00Z", 3),
                                 ("2026-10-25T01:50:00Z", 4), ("2026-10-26T02:30:00Z", 5), ("2026-10-26T02:40:00Z", 6)] {
            rig.time.advance(to: utc(instant))
            #expect(await rig.eventually { rig.transport.calls.count == count }, "\(instant)")
            #expect(rig.transport.calls.last?.at == utc(instant))
        }
        await rig.stop()
    }

    // MARK: Recovery (SPEC section 4)

    @Test func recoveryBeforeStartSendsTheLatePrepare() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:55:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        #expect(rig.transport.calls.first?.type == "stream.prepare")
        await rig.stop()
    }

    @Test func recoveryDuringTheItemSendsTheStartLateAndMissesThePrepare() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        #expect(rig.transport.calls.map(\.type) == ["stream.start"])
        #expect(await rig.state("t/show/prepare/site") == .missed)
        #expect(await rig.scheduler.snapshot().records[JobID("t/show/start/site")!]?.lateBy == 1800)
        await rig.stop()
    }

    @Test func recoveryAfterTheItemMissesTheStartButSendsTheStop() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T11:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        #expect(rig.transport.calls.map(\.type) == ["stream.stop"])
        #expect(await rig.state("t/show/start/site") == .missed)
        #expect(await rig.state("t/show/prepare/site") == .missed)
        await rig.stop()
    }

    @Test func aStopPastItsDeadlineIsStillSentWithAnHourFromRecovery() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T15:00:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        #expect(rig.transport.calls.map(\.type) == ["stream.stop"])
        let stop = await rig.scheduler.snapshot().records[JobID("t/show/stop/site")!]
        #expect(stop?.state == .delivered)
        #expect(stop?.deadline == utc("2021-11-08T16:00:00Z"))
        await rig.stop()
    }

    @Test func aDeliveryCutOffByACrashIsSentAgainWithTheSameWebhookID() async throws {
        let id = JobID("t/show/start/site")!
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:05:00Z")) { journal in
            try await journal.save(JobRecord(id: id, state: .inflight, send: 0, attempts: 1, instant: utc("2021-11-08T10:00:00Z"),
                                             deadline: utc("2021-11-08T11:00:00Z"), updatedAt: utc("2021-11-08T10:00:00Z")))
            try await journal.save(JobRecord(id: JobID("t/show/prepare/site")!, state: .delivered, instant: utc("2021-11-08T09:50:00Z"),
                                             deadline: utc("2021-11-08T10:00:00Z"), updatedAt: utc("2021-11-08T09:50:00Z")))
        }
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        #expect(rig.transport.calls.first?.webhookID == WebhookSigner.webhookID(job: id, send: 0))
        let attempts = try await rig.journal.attempts(item: "show", limit: 10)
        #expect(attempts.first?.attempt == 2)
        #expect(await rig.state("t/show/start/site") == .delivered)
        await rig.stop()
    }

    @Test func connectionsAreWarmedOnceAheadOfTheInstantNeverInsteadOfIt() async throws {
        let extra = """
              - id: second
                title: Second
                start: "10:00"
                end: "10:30"
                targets: [other]
        """
        var yaml = """
        id: t
        title: T
        timezone: UTC
        lead_time: 10m
        targets:
          site:
            url: http://127.0.0.1:9/hook
          other:
            url: http://127.0.0.1:9/other
        days:
          - date: 2021-11-08
            programme:
              - id: show
                title: Show
                start: "10:00"
                end: "11:00"
                targets: [site]
        """
        yaml += "\n" + extra
        let rig = try await SchedulerRig(schedule: try load(yaml), at: utc("2021-11-08T09:49:00Z"), warmUpLead: 2)
        rig.time.advance(to: utc("2021-11-08T09:49:57Z"))
        await rig.settle()
        #expect(rig.transport.calls.isEmpty, "warmed too early")
        rig.time.advance(to: utc("2021-11-08T09:49:58Z"))
        // Two jobs at 09:50 to two paths on one host: a connection for each call the instant will
        // make at once (two HEADs), opened once for the host, not per path.
        #expect(await rig.eventually { rig.transport.calls.count == 2 })
        rig.time.advance(to: utc("2021-11-08T09:50:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 4 })
        await rig.settle()
        let calls = rig.transport.calls
        #expect(calls.prefix(2).map { "\($0.method) \($0.url)" } == ["HEAD http://127.0.0.1:9/", "HEAD http://127.0.0.1:9/"])
        #expect(Set(calls.dropFirst(2).map { "\($0.method) \($0.url)" }) == ["POST http://127.0.0.1:9/other", "POST http://127.0.0.1:9/hook"])
        #expect(calls.map(\.at) == [utc("2021-11-08T09:49:58Z"), utc("2021-11-08T09:49:58Z"), utc("2021-11-08T09:50:00Z"), utc("2021-11-08T09:50:00Z")])
        // Every job is a delivery as before: the warm-up is not one of them.
        #expect(await rig.state("t/show/prepare/site") == .delivered)
        #expect(try await rig.journal.attempts(item: nil, limit: 10).count == 2)
        await rig.stop()
    }

    @Test func jobsDueTogetherAreJournaledInOneWriteBeforeAnyCallLeaves() async throws {
        var yaml = "id: t\ntitle: T\ntimezone: UTC\ntargets:\n"
        for k in 0..<50 { yaml += "  t\(k): { url: \"http://127.0.0.1:9/hook/\(k)\" }\n" }
        yaml += "days:\n  - date: 2021-11-08\n    programme:\n"
        for k in 0..<50 { yaml += "      - { id: item-\(k), title: I, start: \"10:00\", end: \"11:00\", targets: [t\(k)] }\n" }
        let time = ManualTime(utc("2021-11-08T09:00:00Z"))
        let transport = RecordingTransport(time: time)
        let journal = InstrumentedJournal(try SQLiteJournal(directory: temporaryDirectory()))
        let deliverer = Deliverer(transport: transport, builder: RequestBuilder(secrets: SecretResolver(environment: [:])),
                                  policy: RetryPolicy(initialBound: 0.01, maximumBound: 0.01), time: time)
        let scheduler = Scheduler(schedule: try load(yaml), journal: journal, deliverer: deliverer, time: time, logger: quietLogger)
        try await scheduler.recover()
        let loop = Task { await scheduler.run() }
        time.advance(to: utc("2021-11-08T10:00:00Z"))
        let end = Date().addingTimeInterval(5)
        while transport.calls.count < 50 && Date() < end { try await Task.sleep(nanoseconds: 5_000_000) }
        #expect(transport.calls.count == 50)
        // One write for the 50 in-flight records, not fifty fsyncs one after the other.
        #expect(journal.recordWrites.first == 50, "\(journal.recordWrites.prefix(5))")
        await scheduler.shutdown(grace: 1)
        await loop.value
    }

    @Test func aReloadWhileAJobIsBeingJournaledDoesNotFireItTwice() async throws {
        let time = ManualTime(utc("2021-11-08T09:45:00Z"))
        let transport = RecordingTransport(time: time)
        let journal = InstrumentedJournal(try SQLiteJournal(directory: temporaryDirectory()))
        let deliverer = Deliverer(transport: transport, builder: RequestBuilder(secrets: SecretResolver(environment: [:])),
                                  policy: RetryPolicy(initialBound: 0.01, maximumBound: 0.01), time: time)
        let schedule = try oneItemSchedule()
        let scheduler = Scheduler(schedule: schedule, journal: journal, deliverer: deliverer, time: time, logger: quietLogger)
        try await scheduler.recover()
        let loop = Task { await scheduler.run() }
        journal.batches.close()
        time.advance(to: utc("2021-11-08T09:50:00Z"))
        let end = Date().addingTimeInterval(5)
        while journal.batches.waiting == 0 && Date() < end { try await Task.sleep(nanoseconds: 2_000_000) }
        #expect(journal.batches.waiting == 1)
        // The prepare is being written "in flight" and not yet handed over: a reload re-plans now.
        try await scheduler.reload(schedule)
        try await Task.sleep(nanoseconds: 50_000_000)
        journal.batches.open()
        while transport.calls.isEmpty && Date() < end { try await Task.sleep(nanoseconds: 2_000_000) }
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(transport.calls.map(\.type) == ["stream.prepare"])
        await scheduler.shutdown(grace: 1)
        await loop.value
    }

    @Test func atOneInstantTheStopIsAnsweredBeforeTheNextItemStartsOnTheSamePlatform() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(extra: """
                  - { id: next, title: Next, start: "11:00", end: "12:00" }
            """), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })    // show's start, late at start-up
        await rig.settle()
        rig.transport.holdCalls()
        rig.time.advance(to: utc("2021-11-08T11:00:00Z"))
        #expect(await rig.eventually { rig.transport.onTheWire == 1 })
        try await Task.sleep(nanoseconds: 200_000_000)
        // show's stop is on the wire, unanswered: next's start must not have gone out beside it.
        #expect(rig.transport.onTheWire == 1)
        rig.transport.release()
        #expect(await rig.eventually { rig.transport.calls.count == 3 })
        #expect(rig.transport.calls.map { "\($0.item) \($0.type)" } == ["show stream.start", "show stream.stop", "next stream.start"])
        await rig.stop()
    }

    @Test func aPastBacklogLargerThanASliceIsFiredInSlicesEachStopOnce() async throws {
        // 600 items of the day before (a start and a stop each): 1,200 jobs due at start-up, more
        // than one slice of the loop.
        let rig = try await SchedulerRig(schedule: try pastItemsOnOneTarget(600, minutes: 1), at: utc("2021-11-09T00:00:00Z"))
        #expect(Scheduler.firingSlice < 1200)
        #expect(await rig.eventually { rig.transport.calls.count == 600 })
        await rig.settle()
        let calls = rig.transport.calls
        #expect(calls.count == 600 && Set(calls.map(\.webhookID)).count == 600, "every stop once")
        #expect(calls.allSatisfy { $0.type == "stream.stop" })
        let records = try await rig.journal.jobRecords()
        #expect(records.values.filter { $0.state == .delivered }.count == 600)
        #expect(records.values.filter { $0.state == .missed }.count == 600, "the starts, past their deadlines")
        // In slices: more than one transaction of fired records, none much larger than a slice.
        let writes = rig.store.recordWrites.filter { $0 > 1 }
        #expect(writes.count >= 2 && writes.allSatisfy { $0 <= Scheduler.firingSlice + 2 }, "\(writes)")
        await rig.stop()
    }

    @Test func aTargetHasAtMostItsShareOfDeliveriesUnderWayTheRestWaitAsData() async throws {
        // Ten past items on one platform: at start-up all ten stops are due at once (SPEC 4).
        let schedule = try pastItemsOnOneTarget(10, minutes: 5)
        let time = ManualTime(utc("2021-11-08T12:00:00Z"))
        let transport = RecordingTransport(time: time)
        transport.holdCalls()
        let journal = try SQLiteJournal(directory: temporaryDirectory())
        let deliverer = Deliverer(transport: transport, builder: RequestBuilder(secrets: SecretResolver(environment: [:])),
                                  policy: RetryPolicy(initialBound: 0.01, maximumBound: 0.01), time: time)
        let scheduler = Scheduler(schedule: schedule, journal: journal, deliverer: deliverer, time: time,
                                  logger: quietLogger, deliveriesPerTarget: 4)
        try await scheduler.recover()
        let loop = Task { await scheduler.run() }
        let end = Date().addingTimeInterval(20)
        while transport.onTheWire < 4 && Date() < end { try await Task.sleep(nanoseconds: 5_000_000) }
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(transport.onTheWire == 4)
        #expect(await scheduler.snapshot().inFlight == 10)    // all ten journaled in flight, six waiting
        transport.release()
        while transport.calls.count < 10 && Date() < end { try await Task.sleep(nanoseconds: 5_000_000) }
        // The four under way first were the four earliest (their calls race each other onto the wire);
        // the six that waited went after them, and every one went once.
        let items = transport.calls.map(\.item)
        #expect(Set(items.prefix(4)) == Set((0..<4).map { "item-\($0)" }), "\(items)")
        #expect(items.sorted() == (0..<10).map { "item-\($0)" }.sorted(), "\(items)")
        await scheduler.idle()
        #expect(await scheduler.snapshot().records.values.filter { $0.state == .delivered }.count == 10)
        await scheduler.shutdown(grace: 1)
        await loop.value
    }

    @Test func journalWritesThatArriveTogetherShareATransactionAndAllReachTheDisk() async throws {
        let dir = temporaryDirectory()
        let journal = try SQLiteJournal(directory: dir)
        let before = journal.transactionsCommitted
        await withTaskGroup(of: Void.self) { group in
            for k in 0..<300 {
                group.addTask {
                    let id = JobID(event: "t", item: "item-\(k)", action: .start, target: "site")
                    try? await journal.save(JobRecord(id: id, state: .delivered, instant: utc("2021-11-08T10:00:00Z"),
                                                      deadline: utc("2021-11-08T11:00:00Z"), updatedAt: utc("2021-11-08T10:00:00Z")))
                }
            }
        }
        #expect(try await SQLiteJournal(directory: dir).jobRecords().count == 300)
        let transactions = journal.transactionsCommitted - before
        #expect(transactions >= 1 && transactions < 300, "\(transactions) transactions for 300 writes")
    }

    @Test func aCallThatFinishesDuringShutdownIsJournaledAsDelivered() async throws {
        let dir = temporaryDirectory()
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:45:00Z"), journalDirectory: dir)
        rig.transport.holdCalls()
        rig.time.advance(to: utc("2021-11-08T09:50:00Z"))
        #expect(await rig.eventually { rig.transport.onTheWire == 1 })
        let shutdown = Task { await rig.scheduler.shutdown(grace: 5) }
        try await Task.sleep(nanoseconds: 100_000_000)    // shutdown has cancelled the delivery's task by now
        rig.transport.release()
        await shutdown.value
        await rig.loop.value
        // What happened is on disk, though the task that saw it was cancelled: no resend after restart.
        let records = try await SQLiteJournal(directory: dir).jobRecords()
        #expect(records[JobID("t/show/prepare/site")!]?.state == .delivered)
        let attempts = try await SQLiteJournal(directory: dir).attempts(item: "show", limit: 10)
        #expect(attempts.map(\.outcome) == ["delivered"])
    }

    @Test func aRestartDoesNotRepeatDeliveredJobs() async throws {
        let dir = temporaryDirectory()
        let first = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:00:00Z"), journalDirectory: dir)
        first.time.advance(to: utc("2021-11-08T09:50:00Z"))
        #expect(await first.eventually { first.transport.calls.count == 1 })
        first.time.advance(to: utc("2021-11-08T10:00:00Z"))
        #expect(await first.eventually { first.transport.calls.count == 2 })
        await first.settle()
        await first.stop()
        let second = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:10:00Z"), journalDirectory: dir)
        await second.settle()
        #expect(second.transport.calls.isEmpty)
        second.time.advance(to: utc("2021-11-08T11:00:00Z"))
        #expect(await second.eventually { second.transport.calls.count == 1 })
        #expect(second.transport.calls.first?.type == "stream.stop")
        await second.stop()
    }
}

@Suite("Reload", .serialized)
struct ReloadTests {
    let base = """
    id: r
    title: R
    timezone: UTC
    targets:
      site: { url: "http://127.0.0.1:9/hook" }
    days:
      - date: 2021-11-08
        programme:
    """

    func file(_ items: String) -> String { base + "\n" + items }

    @Test func reloadChangesAddsAndRemovesItemsKeepingDeliveredOnes() async throws {
        let dir = temporaryDirectory()
        let path = dir + "/schedule.yaml"
        try file("""
              - { id: a, title: A, start: "10:00", end: "11:00" }
              - { id: b, title: B, start: "12:00", end: "13:00" }
              - { id: c, title: C, start: "14:00", end: "15:00" }
        """).write(toFile: path, atomically: true, encoding: .utf8)
        let time = ManualTime(utc("2021-11-08T09:00:00Z"))
        let transport = RecordingTransport(time: time)
        let daemon = try await Daemon.start(options: .init(configPath: path, stateDirectory: dir + "/state"), logger: quietLogger,
                                            time: time, transport: transport)
        let loop = Task { await daemon.scheduler.run() }
        func wait(_ n: Int) async -> Bool {
            for _ in 0..<2500 where transport.calls.count < n { try? await Task.sleep(nanoseconds: 2_000_000) }
            try? await Task.sleep(nanoseconds: 50_000_000)
            return transport.calls.count == n
        }
        time.advance(to: utc("2021-11-08T10:00:00Z"))
        #expect(await wait(1))
        // a runs over, b is dropped, c starts later, d is new
        try file("""
              - { id: a, title: A, start: "10:00", end: "11:30" }
              - { id: c, title: C, start: "14:15", end: "15:00" }
              - { id: d, title: D, start: "12:30", end: "13:00" }
        """).write(toFile: path, atomically: true, encoding: .utf8)
        guard case .success = await daemon.reload() else { Issue.record("reload refused"); return }
        time.advance(to: utc("2021-11-08T11:00:00Z"))
        #expect(await wait(1))
        time.advance(to: utc("2021-11-08T11:30:00Z"))
        #expect(await wait(2))
        time.advance(to: utc("2021-11-08T12:00:00Z"))
        #expect(await wait(2))
        time.advance(to: utc("2021-11-08T12:30:00Z"))
        #expect(await wait(3))
        time.advance(to: utc("2021-11-08T13:00:00Z"))
        #expect(await wait(4))
        time.advance(to: utc("2021-11-08T14:00:00Z"))
        #expect(await wait(4))
        time.advance(to: utc("2021-11-08T14:15:00Z"))
        #expect(await wait(5))
        #expect(transport.calls.map { "\($0.item) \($0.type)" } == ["a stream.start", "a stream.stop", "d stream.start", "d stream.stop", "c stream.start"])
        #expect(transport.calls.map(\.at) == ["10:00", "11:30", "12:30", "13:00", "14:15"].map { utc("2021-11-08T\($0):00Z") })

        // An invalid file is refused whole; the running schedule stays in force.
        try file("      - { id: c, title: C, start: \"25:00\", end: \"15:00\" }").write(toFile: path, atomically: true, encoding: .utf8)
        guard case .failure(let error) = await daemon.reload() else { Issue.record("invalid reload accepted"); return }
        #expect(error.diagnostics.first?.message.contains("not a time") == true)
        time.advance(to: utc("2021-11-08T15:00:00Z"))
        #expect(await wait(6))
        #expect(transport.calls.last?.item == "c")
        let events = try await daemon.journal.events(limit: 10)
        #expect(events.first?.kind == "reload" && events.first?.ok == false)
        await daemon.scheduler.shutdown(grace: 1)
        await loop.value
    }
}
