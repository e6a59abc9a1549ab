import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler
@testable import OnAirDaemon

/// Two items back to back on `site`: plenary 10:00–11:00 and late 11:00–12:00 (UTC, 2021-11-08).
func backToBackSchedule() throws -> Schedule {
    try oneItemSchedule(start: "10:00", end: "11:00", extra: """
              - { id: late, title: Late Night Show, start: "11:00", end: "12:00" }
        """)
}

/// The refusal a command ended with, or nil when it was accepted.
private func refusal(_ body: () async throws -> Void) async -> Scheduler.Refusal? {
    do { try await body() } catch { return error as? Scheduler.Refusal }
    return nil
}

private func status(_ rig: SchedulerRig) async throws -> StatusReport {
    let snapshot = await rig.scheduler.snapshot()
    return StatusReport.make(.init(snapshot: snapshot, records: snapshot.records, events: try await rig.journal.events(limit: 50),
                                   overrides: await rig.scheduler.currentOverrides, now: rig.time.now(), pid: 1))
}

/// Issue 12, items 1, 2, 6–13: the journal's durability and operators in a hurry.
@Suite("Trust: the journal and operators in a hurry", .serialized)
struct OperatorSafetyTests {
    // Item 1: GRDB's WAL set-up switched the writer to NORMAL after the daemon's own PRAGMA.
    @Test func theWritingConnectionSyncsEveryCommit() throws {
        let journal = try SQLiteJournal(directory: temporaryDirectory())
        #expect(try journal.writerSynchronousLevel() == 2, "PRAGMA synchronous on the writer must be FULL (2)")
    }

    // Item 2: an override counts only once it is on disk.
    @Test func aJournalThatCannotBeWrittenRefusesEveryOverrideAndChangesNothing() async throws {
        let rig = try await SchedulerRig(schedule: try backToBackSchedule(), at: utc("2021-11-08T09:00:00Z"))
        await rig.settle()
        let before = await rig.scheduler.snapshot()
        rig.store.failWrites = true
        #expect(await refusal { try await rig.scheduler.hold(by: "ops") }?.kind == .journal)
        #expect(await rig.scheduler.isHeld == false)
        #expect(await refusal { _ = try await rig.scheduler.extend(item: "late", by: 60, who: "ops") }?.kind == .journal)
        #expect(await refusal { _ = try await rig.scheduler.delay(item: "late", by: 60, who: "ops") }?.kind == .journal)
        #expect(await rig.scheduler.currentOverrides.isEmpty)
        #expect(await refusal { _ = try await rig.scheduler.skip(item: "late", who: "ops") }?.kind == .journal)
        #expect(await refusal { _ = try await rig.scheduler.sendNow(item: "show", action: .start, again: false, by: "ops") }?.kind == .journal)
        let after = await rig.scheduler.snapshot()
        #expect(after.next.map(\.id) == before.next.map(\.id), "nothing was cancelled or moved")
        #expect(after.next.map(\.instant) == before.next.map(\.instant))
        #expect(rig.transport.calls.isEmpty, "nothing that is not on disk is sent")
        #expect(after.journalTrouble != nil)
        let report = try await status(rig)
        #expect(report.exitStatus == 1)
        #expect(report.problems.contains { $0.contains("journal cannot be written") }, "\(report.problems)")
        rig.store.failWrites = false
        try await rig.scheduler.hold(by: "ops")
        #expect(await rig.scheduler.isHeld)
        #expect(await rig.scheduler.snapshot().journalTrouble == nil, "a write that succeeds ends the trouble")
        await rig.stop()
    }

    // Item 13: what fell due while the disk was full is handled as after downtime, and recorded.
    @Test func jobsThatFellDueWhileTheDiskWasFullAreRecordedOnceItTakesWrites() async throws {
        let dir = temporaryDirectory()
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:45:00Z"), journalDirectory: dir)
        rig.store.failWrites = true
        rig.time.advance(to: utc("2021-11-08T10:00:00Z"))
        #expect(await rig.eventually { await rig.scheduler.snapshot().journalTrouble != nil })
        #expect(rig.transport.calls.isEmpty)
        #expect(try await status(rig).degraded)
        rig.time.advance(to: utc("2021-11-08T11:10:00Z"))   // the item ended meanwhile
        await rig.settle()
        #expect(rig.transport.calls.isEmpty)
        rig.store.failWrites = false
        rig.time.advance(to: utc("2021-11-08T11:10:02Z"))
        #expect(await rig.eventually { await rig.state("t/show/start/site") == .missed })
        #expect(await rig.state("t/show/prepare/site") == .missed)
        // Memory holds a record while it is being written; wait for the commit, read from the file.
        #expect(await rig.eventually {
            (try? await SQLiteJournal(directory: dir, readOnly: true).jobRecords())?[JobID("t/show/start/site")!]?.state == .missed
        }, "the missed start is on disk")
        // As after downtime (SPEC 4): the start of an item that ended is missed, its stop is sent.
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.stop"] })
        #expect(await rig.scheduler.snapshot().journalTrouble == nil)
        let report = try await status(rig)
        #expect(report.failures.contains { $0.job == "t/show/start/site" }, "the missed start is a failure in status")
        await rig.stop()
    }

    // Item 6: concurrent commands one after the other.
    @Test func fortyConcurrentExtendsExtendByFortyMinutes() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:00:00Z"))
        let scheduler = rig.scheduler
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<40 { group.addTask { _ = try? await scheduler.extend(item: "show", by: 60, who: "ops") } }
            for _ in 0..<40 { group.addTask { _ = try? await scheduler.delay(item: "show", by: 30, who: "ops") } }
        }
        let o = await scheduler.currentOverrides["show"]
        #expect(o?.extension_ == 2400)
        #expect(o?.shift == 1200)
        let stop = await scheduler.snapshot().next.first { $0.action == .stop }
        #expect(stop?.instant == utc("2021-11-08T11:00:00Z").addingTimeInterval(1200 + 2400))
        let stored = try await rig.journal.overrides()["show"]
        #expect(stored?.extension_ == 2400 && stored?.shift == 1200, "what is in force is what is on disk")
        await rig.stop()
    }

    // Item 7: skip, then start by hand, then extend: the stop is back and goes out at the new end.
    @Test func aStartOfASkippedItemBringsItsStopBack() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:00:00Z"))
        _ = try await rig.scheduler.skip(item: "show", who: "ops")
        #expect(await rig.scheduler.snapshot().next.isEmpty)
        rig.time.advance(to: utc("2021-11-08T10:05:00Z"))
        let outcome = try await rig.scheduler.sendNow(item: "show", action: .start, again: false, by: "ops")
        #expect(outcome.delivered, "\(outcome.message)")
        _ = try await rig.scheduler.extend(item: "show", by: 60, who: "ops")
        let stop = await rig.scheduler.snapshot().next.first { $0.action == .stop }
        #expect(stop?.instant == utc("2021-11-08T11:01:00Z"), "an item on air always has a pending stop")
        rig.time.advance(to: utc("2021-11-08T11:01:00Z"))
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.start", "stream.stop"] })
        await rig.stop()
    }

    // Item 8: extend, delay and an early start that would overlap another item on the same target.
    @Test func overridesThatWouldOverlapAnotherItemAreRefusedNamingIt() async throws {
        let rig = try await SchedulerRig(schedule: try backToBackSchedule(), at: utc("2021-11-08T09:00:00Z"))
        let extend = await refusal { _ = try await rig.scheduler.extend(item: "show", by: 60, who: "ops") }
        #expect(extend?.kind == .refused)
        #expect(extend?.description.contains("'late'") == true, "\(extend?.description ?? "")")
        #expect(extend?.description.contains("11:00:00 UTC") == true, "\(extend?.description ?? "")")
        #expect(await refusal { _ = try await rig.scheduler.delay(item: "show", by: 60, who: "ops") }?.kind == .refused)
        // A start of 'late' by hand now would run into 'show' at 10:00.
        let early = await refusal { _ = try await rig.scheduler.sendNow(item: "late", action: .start, again: false, by: "ops") }
        #expect(early?.description.contains("'show'") == true, "\(early?.description ?? "")")
        #expect(await rig.scheduler.currentOverrides.isEmpty)
        #expect(rig.transport.calls.isEmpty)
        // Once 'late' is out of the way (skipped), 'show' may run over.
        _ = try await rig.scheduler.skip(item: "late", who: "ops")
        #expect(try await rig.scheduler.extend(item: "show", by: 60, who: "ops").contains("11:01:00 UTC"))
        await rig.stop()
    }

    // Item 9: a stop being retried never blocks a stop by hand.
    @Test func aStopByHandWorksWhileTheScheduledStopIsBeingRetried() async throws {
        let rig = try await rigWithItsStopBeingRetried()
        #expect(await !rig.scheduler.snapshot().retrying.isEmpty)
        #expect(try await status(rig).problems.contains { $0.contains("being retried") }, "item 12: a retried stop is degraded")
        rig.transport.answer(200)
        let outcome = try await rig.scheduler.sendNow(item: "show", action: .stop, again: false, by: "ops")
        #expect(outcome.delivered, "\(outcome.message)")
        await rig.settle()
        #expect(await rig.state("t/show/stop/site") == .delivered)
        let ids = rig.transport.calls.filter { $0.type == "stream.stop" }.map(\.webhookID)
        #expect(Set(ids).count == 2, "the manual stop is a new send")
        // The superseded send's retries end: time moving on sends nothing more.
        let count = rig.transport.calls.count
        rig.time.advance(to: utc("2021-11-08T11:05:00Z"))
        await rig.settle()
        #expect(rig.transport.calls.count == count)
        #expect(await rig.scheduler.snapshot().retrying.isEmpty)
        await rig.stop()
    }

    // Item 10: start/stop tell the truth about the platform's answer.
    @Test func aStopThePlatformRefusesIsReportedAsNotTaken() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        rig.transport.answer(410)
        let outcome = try await rig.scheduler.sendNow(item: "show", action: .stop, again: false, by: "ops")
        #expect(!outcome.delivered)
        #expect(outcome.message.contains("site: HTTP 410"), "\(outcome.message)")
        #expect(outcome.message.contains("failed for good"), "\(outcome.message)")
        rig.transport.answer(503)
        let retried = try await rig.scheduler.sendNow(item: "show", action: .stop, again: false, by: "ops")
        #expect(!retried.delivered)
        #expect(retried.message.contains("a retry is scheduled"), "\(retried.message)")
        await rig.stop()
    }

    // Item 11: 'since' is when the start was delivered.
    @Test func anItemStartedEarlyByHandIsOnAirSinceItsDelivery() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:50:00Z"))
        await rig.settle()
        _ = try await rig.scheduler.sendNow(item: "show", action: .start, again: false, by: "ops")
        // The answer reaches the command a moment before its delivered record is written.
        #expect(await rig.eventually { await rig.scheduler.snapshot().onAir.map(\.since) == [utc("2021-11-08T09:50:00Z")] })
        #expect(try await status(rig).on_air.first?.since == "2021-11-08T09:50:00Z")
        await rig.stop()
    }

    // Item 12: held with a job overdue is degraded and says "overdue", not "in 0s".
    @Test func heldWithAStopOverdueIsDegraded() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        try await rig.scheduler.hold(by: "ops")
        rig.time.advance(to: utc("2021-11-08T11:00:30Z"))
        await rig.settle()
        let report = try await status(rig)
        #expect(report.exitStatus == 1)
        #expect(report.problems.contains { $0.contains("held while 1 job fell due") }, "\(report.problems)")
        #expect(report.text().contains("overdue 30s"), "\(report.text())")
        #expect(!report.text().contains("(in 0s)"))
        await rig.stop()
    }

    // SPEC 2.1 against 3.2: a reload may drop an item's pending jobs, but never the stop of one on air.
    @Test func aReloadThatWouldLeaveAStreamWithoutAStopIsRefusedWhole() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.start"] })
        await rig.settle()
        var other = try oneItemSchedule()
        other.items.removeAll { $0.id == "show" }
        let onSite = try oneItemSchedule().withItem("show") { $0.online = false }
        let untargeted = try oneItemSchedule().withItem("show") { $0.targets = [] }
        for (file, expected) in [(other, "has no item 'show'"), (onSite, "makes 'show' on-site only"),
                                 (untargeted, "takes target 'site' from 'show'")] {
            do {
                try await rig.scheduler.reload(file, file: "week.yaml")
                Issue.record("a reload that strands 'show' was accepted")
            } catch {
                #expect(error.description.hasPrefix("week.yaml:"), "\(error)")
                #expect(error.description.contains(expected) && error.description.contains("onair stop show"), "\(error)")
            }
        }
        #expect(await rig.scheduler.snapshot().next.contains { $0.itemID == "show" && $0.action == .stop }, "the stop is still ahead")
        // Moving the live item's end is fine: its stop goes out at the new end.
        try await rig.scheduler.reload(try oneItemSchedule(end: "11:30"), file: "week.yaml")
        rig.time.advance(to: utc("2021-11-08T11:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.start", "stream.stop"] })
        await rig.stop()
    }
}

extension Schedule {
    /// The same schedule with one item changed (tests only).
    func withItem(_ id: String, _ change: (inout Item) -> Void) -> Schedule {
        var copy = self
        if let index = copy.items.firstIndex(where: { $0.id == id }) { change(&copy.items[index]) }
        return copy
    }
}
