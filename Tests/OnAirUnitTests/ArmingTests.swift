import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler
import OnAirTestSupport

/// The disk off the call's path (SPEC 4): a job is journaled "armed" before its instant, and at
/// the instant only the send is left. Operators, holds, reloads and crashes around that moment.
@Suite("Arming ahead of the instant", .serialized)
struct ArmingTests {
    let start = utc("2021-11-08T10:00:00Z")

    /// A rig two seconds before the show's start, its prepare (09:50) already delivered.
    func rigBeforeTheStart(_ seconds: TimeInterval = 5, journalDirectory: String = temporaryDirectory()) async throws -> SchedulerRig {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:50:00Z"),
                                         journalDirectory: journalDirectory)
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        rig.time.advance(to: start.addingTimeInterval(-seconds))
        await rig.settle()
        return rig
    }

    func onDisk(_ rig: SchedulerRig, _ id: String) async throws -> JobRecord? {
        try await rig.journal.jobRecords()[JobID(id)!]
    }

    @Test func theArmedRecordIsOnDiskBeforeTheInstantAndTheCallLeavesAtIt() async throws {
        let rig = try await rigBeforeTheStart()
        rig.time.advance(to: start.addingTimeInterval(-1.5))
        #expect(await rig.eventually { (try? await onDisk(rig, "t/show/start/site"))?.state == .armed })
        await rig.settle()
        #expect(rig.transport.calls.count == 1, "the start left before its instant")
        rig.time.advance(to: start.addingTimeInterval(-0.001))
        await rig.settle()
        #expect(rig.transport.calls.count == 1, "the start left before its instant")
        let writesBefore = rig.store.recordWrites.count
        rig.transport.holdCalls()    // on the wire and unanswered: nothing after the send is written yet
        rig.time.advance(to: start)
        #expect(await rig.eventually { rig.transport.onTheWire == 1 })
        #expect(rig.store.recordWrites.count == writesBefore, "records were written between the instant and the send")
        rig.transport.release()
        #expect(await rig.eventually { rig.transport.calls.count == 2 })
        #expect(rig.transport.calls.last?.at == start)
        #expect(await rig.eventually { await rig.state("t/show/start/site") == .delivered })
        #expect(try await onDisk(rig, "t/show/start/site")?.state == .delivered)
        await rig.settle()
        #expect(rig.store.recordWrites.count == writesBefore, "the outcome took a write of its own, apart from its attempt")
        // The log tells it in order, with the webhook-id: armed ahead, then delivered.
        let webhookID = WebhookSigner.webhookID(job: JobID("t/show/start/site")!, send: 0)
        let lines = rig.logs.entries.filter { $0.metadata["webhook_id"]?.description == webhookID }.map(\.message.description)
        #expect(lines == ["armed", "delivered"], "\(lines)")
        await rig.stop()
    }

    @Test func aCallDoesNotLeaveBeforeItsArmedRecordIsOnDisk() async throws {
        let rig = try await rigBeforeTheStart()
        rig.store.batches.close()    // a disk slower than the arming lead
        rig.time.advance(to: start.addingTimeInterval(-2))
        #expect(await rig.eventually { rig.store.batches.waiting == 1 })
        rig.time.advance(to: start.addingTimeInterval(1))
        await rig.settle()
        #expect(rig.transport.calls.count == 1, "the start left with its record not yet on disk")
        rig.store.batches.open()
        #expect(await rig.eventually { rig.transport.calls.count == 2 })
        await rig.stop()
    }

    @Test func aSkipOneSecondBeforeTheStartWithdrawsTheArmedCall() async throws {
        let rig = try await rigBeforeTheStart()
        rig.time.advance(to: start.addingTimeInterval(-1))
        #expect(await rig.eventually { (try? await onDisk(rig, "t/show/start/site"))?.state == .armed })
        _ = try await rig.scheduler.skip(item: "show", who: "ops")
        rig.time.advance(to: start.addingTimeInterval(5))
        await rig.settle()
        #expect(rig.transport.calls.map(\.type) == ["stream.prepare"])
        #expect(await rig.state("t/show/start/site") == .cancelled)
        #expect(try await onDisk(rig, "t/show/start/site")?.state == .cancelled)
        await rig.stop()
    }

    /// A cue withdrawn between the scheduler's look at it and the deliverer's (a hold landing just
    /// as the armed call reached its lane) once made the deliverer send at once, uncued: CI saw a
    /// held start leave a second before its instant.
    @Test func anAttemptWhoseCueWasWithdrawnSendsNothing() async throws {
        let schedule = try oneItemSchedule()
        let job = Planner.jobs(for: schedule.items[0], in: schedule).first { $0.action == .start }!
        let time = ManualTime(start.addingTimeInterval(-1))
        let transport = RecordingTransport(time: time)
        let deliverer = Deliverer(transport: transport, builder: RequestBuilder(secrets: SecretResolver(environment: [:])), time: time)
        let cue = Cue(at: start)
        cue.withdraw()
        let end = await deliverer.attempt(DeliveryContext(schedule: schedule, item: schedule.items[0], job: job),
                                          target: schedule.targets[0], number: 1, failures: 0,
                                          deadline: start.addingTimeInterval(60), cue: cue)
        #expect(end.end == .notSent(withdrawn: true) && end.record == nil)
        #expect(transport.calls.isEmpty, "a withdrawn call left at \(transport.calls.map(\.at))")
    }

    @Test func aHoldWithdrawsTheArmedCallAndResumeFiresItByTheRules() async throws {
        let rig = try await rigBeforeTheStart()
        rig.time.advance(to: start.addingTimeInterval(-1))
        #expect(await rig.eventually { await rig.scheduler.snapshot().next.first?.action == .start })
        try await rig.scheduler.hold(by: "ops")
        rig.time.advance(to: start.addingTimeInterval(30))
        await rig.settle()
        #expect(rig.transport.calls.count == 1, "a held job left")
        #expect(await rig.scheduler.snapshot().overdue == 1)
        try await rig.scheduler.resume(by: "ops")
        #expect(await rig.eventually { rig.transport.calls.count == 2 })
        #expect(rig.transport.calls.last?.at == start.addingTimeInterval(30))
        #expect(await rig.eventually { await rig.state("t/show/start/site") == .delivered })
        await rig.stop()
    }

    @Test func aDelayWhileArmedMovesTheCallToTheNewInstant() async throws {
        let rig = try await rigBeforeTheStart()
        rig.time.advance(to: start.addingTimeInterval(-1))
        #expect(await rig.eventually { (try? await onDisk(rig, "t/show/start/site"))?.state == .armed })
        _ = try await rig.scheduler.delay(item: "show", by: 60, who: "ops")
        rig.time.advance(to: start.addingTimeInterval(30))
        await rig.settle()
        #expect(rig.transport.calls.count == 1, "the start left at its old instant")
        rig.time.advance(to: start.addingTimeInterval(60))
        #expect(await rig.eventually { rig.transport.calls.count == 2 })
        #expect(rig.transport.calls.last?.at == start.addingTimeInterval(60))
        await rig.stop()
    }

    /// A journal as a crash leaves it a second before the start: the prepare delivered, the start armed.
    func crashedWhileArmed(_ journal: SQLiteJournal) async throws {
        try await journal.save(JobRecord(id: JobID("t/show/prepare/site")!, state: .delivered, instant: utc("2021-11-08T09:50:00Z"),
                                         deadline: start, updatedAt: utc("2021-11-08T09:50:00Z")))
        try await journal.save(JobRecord(id: JobID("t/show/start/site")!, state: .armed, instant: start,
                                         deadline: utc("2021-11-08T11:00:00Z"), updatedAt: start.addingTimeInterval(-2)))
    }

    @Test func aRestartFindingAnArmedCallAheadSendsItAtItsInstantWithItsWebhookID() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: start.addingTimeInterval(-0.5), prepare: crashedWhileArmed)
        await rig.settle()
        #expect(rig.transport.calls.isEmpty, "sent before its instant after a restart")
        let events = try await rig.journal.events(limit: 5)
        #expect(events.contains { $0.kind == "start" && $0.detail.contains("0 cut off") }, "\(events.map(\.detail))")
        rig.time.advance(to: start)
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        #expect(rig.transport.calls.first?.webhookID == WebhookSigner.webhookID(job: JobID("t/show/start/site")!, send: 0))
        #expect(rig.transport.calls.first?.at == start)
        await rig.stop()
    }

    @Test func aRestartFindingAnArmedCallPastItsInstantSendsItAtOnceAsCutOff() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: start.addingTimeInterval(20), prepare: crashedWhileArmed)
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        #expect(rig.transport.calls.first?.webhookID == WebhookSigner.webhookID(job: JobID("t/show/start/site")!, send: 0))
        let events = try await rig.journal.events(limit: 5)
        #expect(events.contains { $0.kind == "start" && $0.detail.contains("1 cut off") }, "\(events.map(\.detail))")
        #expect(await rig.eventually { await rig.state("t/show/start/site") == .delivered })
        await rig.stop()
    }

    @Test func shutdownWithdrawsArmedCallsThatHaveNotLeft() async throws {
        let rig = try await rigBeforeTheStart()
        rig.time.advance(to: start.addingTimeInterval(-1))
        #expect(await rig.eventually { (try? await onDisk(rig, "t/show/start/site"))?.state == .armed })
        await rig.stop()
        rig.time.advance(to: start.addingTimeInterval(1))
        try await Task.sleep(nanoseconds: 50_000_000)
        #expect(rig.transport.calls.count == 1, "an armed call left after shutdown")
    }

    // Review of issue 13: a secret that cannot be read when the call is armed must not turn the
    // first attempt into a retry that leaves before the instant.
    @Test func aSecretUnreadableAtArmingIsNeverSentBeforeTheInstant() async throws {
        let dir = temporaryDirectory()
        let secret = dir + "/token"
        FileManager.default.createFile(atPath: secret, contents: Data("s3cret".utf8), attributes: [.posixPermissions: 0o600])
        let schedule = try oneItemSchedule(start: "10:00", end: "11:00").withSecret("file:" + secret)
        let rig = try await SchedulerRig(schedule: schedule, at: utc("2021-11-08T09:50:00Z"))    // the prepare goes out
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        try FileManager.default.removeItem(atPath: secret)    // being rewritten by the tool that keeps it fresh
        rig.time.advance(to: start.addingTimeInterval(-2))
        #expect(await rig.eventually { try! await rig.journal.attempts(item: "show", limit: 10).contains { $0.job.contains("/start/") && $0.outcome == "retry" } })
        FileManager.default.createFile(atPath: secret, contents: Data("s3cret".utf8), attributes: [.posixPermissions: 0o600])
        rig.time.advance(to: start.addingTimeInterval(-1))    // past the retry's backoff
        await rig.settle()
        #expect(!rig.transport.calls.contains { $0.type == "stream.start" }, "the start left before its instant")
        rig.time.advance(to: start)
        #expect(await rig.eventually { rig.transport.calls.contains { $0.type == "stream.start" } })
        #expect(rig.transport.calls.first { $0.type == "stream.start" }?.at == start)
        await rig.stop()
    }

    // Second review: an armed call whose first attempt failed before its instant (an unreadable
    // secret) is still armed: a hold takes it back, and it does not leave while held.
    @Test func anArmedCallWhoseFirstAttemptFailedEarlyIsStillTakenBackByAHold() async throws {
        let dir = temporaryDirectory()
        let secret = dir + "/token"
        FileManager.default.createFile(atPath: secret, contents: Data("s3cret".utf8), attributes: [.posixPermissions: 0o600])
        let schedule = try oneItemSchedule(start: "10:00", end: "11:00").withSecret("file:" + secret)
        let rig = try await SchedulerRig(schedule: schedule, at: utc("2021-11-08T09:50:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        try FileManager.default.removeItem(atPath: secret)
        rig.time.advance(to: start.addingTimeInterval(-2))
        #expect(await rig.eventually { try! await rig.journal.attempts(item: "show", limit: 10).contains { $0.job.contains("/start/") } })
        FileManager.default.createFile(atPath: secret, contents: Data("s3cret".utf8), attributes: [.posixPermissions: 0o600])
        try await rig.scheduler.hold(by: "ops")
        rig.time.advance(to: start.addingTimeInterval(10))
        await rig.settle()
        #expect(!rig.transport.calls.contains { $0.type == "stream.start" }, "the start left while held")
        try await rig.scheduler.resume(by: "ops")
        #expect(await rig.eventually { rig.transport.calls.contains { $0.type == "stream.start" } })
        await rig.stop()
    }

    // Review of issue 13: a stop by hand while the start's arming write is slow (longer than a
    // command waits for it) must not let the start, cancelled by that stop, go out afterwards.
    @Test func aStopByHandDuringASlowArmingWriteKeepsTheStartFromLeaving() async throws {
        let rig = try await rigBeforeTheStart()
        rig.store.batches.close()
        rig.time.advance(to: start.addingTimeInterval(-2))
        #expect(await rig.eventually { rig.store.batches.waiting == 1 })
        let stop = Task { try await rig.scheduler.sendNow(item: "show", action: .stop, again: false, by: "ops") }
        #expect(await rig.eventually(timeout: 30) { rig.store.batches.waiting == 2 })    // after its 5 s wait
        rig.store.batches.open()
        _ = try await stop.value
        rig.time.advance(to: start.addingTimeInterval(1))
        await rig.settle()
        #expect(!rig.transport.calls.contains { $0.type == "stream.start" }, "\(rig.transport.calls.map(\.type))")
        #expect(await rig.state("t/show/start/site") == .cancelled)
        await rig.stop()
    }

    @Test func aWithdrawalIsWrittenBackSoARestartDoesNotTakeItForACallThatLeft() async throws {
        let rig = try await rigBeforeTheStart()
        rig.time.advance(to: start.addingTimeInterval(-1))
        #expect(await rig.eventually { (try? await onDisk(rig, "t/show/start/site"))?.state == .armed })
        try await rig.scheduler.hold(by: "ops")
        #expect(await rig.eventually { (try? await onDisk(rig, "t/show/start/site"))?.state != .armed })
        await rig.stop()
    }

    @Test func aReloadThatChangesNothingLeavesArmedCallsArmed() async throws {
        let rig = try await rigBeforeTheStart()
        rig.time.advance(to: start.addingTimeInterval(-1))
        #expect(await rig.eventually { (try? await onDisk(rig, "t/show/start/site"))?.state == .armed })
        await rig.settle()
        let writes = rig.store.recordWrites.count
        try await rig.scheduler.reload(try oneItemSchedule())
        #expect(rig.store.recordWrites.count == writes, "the reload armed the call again: the disk back on its path")
        #expect(await rig.state("t/show/start/site") == .armed)
        rig.time.advance(to: start)
        #expect(await rig.eventually { rig.transport.calls.contains { $0.type == "stream.start" } })
        await rig.stop()
    }

    // The watchdog pings from the loop's tick: a loop wedged on a journal write stops ticking.
    @Test func aLoopThatCannotTurnStopsTicking() async throws {
        let rig = try await rigBeforeTheStart()
        let ticks = Counter()
        await rig.scheduler.setTick(every: 1) { _ in ticks.add() }
        #expect(await rig.eventually { ticks.value >= 1 })
        rig.store.batches.close()
        rig.time.advance(to: start.addingTimeInterval(-2))    // the arming write now hangs
        #expect(await rig.eventually { rig.store.batches.waiting == 1 })
        let wedged = ticks.value
        for step in 1...3 {
            rig.time.advance(to: start.addingTimeInterval(-2 + Double(step)))
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        #expect(ticks.value == wedged, "the loop ticked while wedged")
        rig.store.batches.open()
        #expect(await rig.eventually { ticks.value > wedged })
        await rig.stop()
    }
}

extension Schedule {
    /// The same schedule with every standard target signed with `secret`.
    func withSecret(_ secret: String) -> Schedule {
        var copy = self
        copy.targets = targets.map { target in
            var t = target
            if case .standard(let url, _) = target.kind { t.kind = .standard(url: url, secret: SecretReference(secret)) }
            return t
        }
        return copy
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
