import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler
import OnAirTestSupport

/// Retries held as data: between two attempts a delivery is a due time in the scheduler's retry
/// queue and a turn on its lane, not a suspended task; the loop starts the next attempt.
@Suite("Retries as data", .serialized)
struct RetryTests {
    let showStart = JobID(event: "t", item: "show", action: .start, target: "site")

    /// One item whose start at 10:00 the platform refuses with 503: parked for its retry on return.
    func rigWithItsStartBeingRetried() async throws -> SchedulerRig {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:00:00Z"))
        rig.transport.answer(503)
        #expect(await rig.eventually { await rig.scheduler.retries[showStart] != nil })
        return rig
    }

    @Test func aDeliveryBetweenRetriesHoldsNoTaskAndTheLoopSendsItsNextAttempt() async throws {
        let rig = try await rigWithItsStartBeingRetried()
        #expect(await rig.scheduler.tasks[showStart] == nil, "no task waits out the backoff")
        #expect(await rig.scheduler.snapshot().retrying[showStart] == "HTTP 503")
        let first = rig.transport.calls.count
        rig.time.advance(by: 1)
        #expect(await rig.eventually { rig.transport.calls.count > first }, "the loop starts the retry when it falls due")
        #expect(Set(rig.transport.calls.map(\.webhookID)).count == 1, "a retry is the same send")
        rig.transport.answer(200)
        rig.time.advance(by: 1)
        #expect(await rig.eventually { await rig.state("t/show/start/site") == .delivered })
        #expect(await rig.scheduler.retries.isEmpty)
        await rig.stop()
    }

    /// Sixty past stops due at once (a restart, SPEC 4) to one platform allowed twenty calls at once.
    /// Until it has answered, and while it fails, it gets a few first attempts at a time: a platform
    /// that is down is not sent twenty calls that all fail. Its retries have room of their own and
    /// never take the first attempts' (they did in the first version). A delivered call opens the window.
    @Test func aTargetGetsAFewFirstAttemptsAtOnceUntilItAnswersAndWhileItFails() async throws {
        let rig = try await SchedulerRig(schedule: try pastItemsOnOneTarget(60, minutes: 2), at: utc("2021-11-08T12:00:00Z"),
                                         deliveriesPerTarget: 20)
        let few = Scheduler.retriesPerTarget
        rig.transport.holdCalls()
        #expect(await rig.eventually { rig.transport.onTheWire == few })
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(rig.transport.onTheWire == few, "a platform not heard from got \(rig.transport.onTheWire) calls at once")
        rig.transport.answerHeldCalls()
        #expect(await rig.eventually { rig.transport.onTheWire == 20 }, "delivered: the window opens")
        rig.transport.answer(503)
        rig.transport.answerHeldCalls()
        #expect(await rig.eventually { rig.transport.calls.count == few + 20 && rig.transport.onTheWire == few })
        // The answers are journaled by now (the first attempts after them are on the wire): no more
        // leave while those are out.
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(rig.transport.onTheWire == few, "a failing platform got \(rig.transport.onTheWire) calls at once")
        // The twenty retries fall due: a few of them go, beside the first attempts, not instead of them.
        rig.time.advance(by: 1)
        #expect(await rig.eventually { rig.transport.onTheWire == 2 * few }, "\(rig.transport.onTheWire) on the wire")
        rig.transport.answer(200)
        rig.transport.answerHeldCalls()
        // Delivered again: twenty of the 24 first attempts left go at once, and the next retries.
        #expect(await rig.eventually { rig.transport.onTheWire == 20 + few }, "\(rig.transport.onTheWire) on the wire")
        rig.transport.release()
        await rig.stop()
    }

    /// The scheduled stop's retry answers 500 while an operator's stop is being journaled, and
    /// that write is then refused: the stop by hand never happened, so the scheduled stop must go
    /// on retrying. The first batched version dropped the retry (the send looked superseded) and
    /// left the job "delivering" with nothing to deliver it: the stream stayed live.
    @Test func aRetryAnsweredWhileAStopByHandIsRefusedByTheJournalGoesOn() async throws {
        let rig = try await rigWithItsStopBeingRetried()
        rig.transport.holdCalls()
        rig.time.advance(by: 1)
        #expect(await rig.eventually { rig.transport.onTheWire == 1 }, "the retry is on the wire")
        rig.store.batches.close()
        let byHand = Task { try? await rig.scheduler.sendNow(item: "show", action: .stop, again: false, by: "ops") }
        #expect(await rig.eventually { rig.store.batches.waiting == 1 }, "the stop by hand is being journaled")
        rig.store.failWrites = true
        rig.transport.answerHeldCalls()
        #expect(await rig.eventually { rig.logs.entries.contains { $0.metadata["attempts"] != nil } },
                "the retry's answer was taken (its write refused too)")
        rig.store.batches.open()
        #expect(await byHand.value == nil, "the stop by hand was refused")
        rig.store.failWrites = false
        rig.transport.answer(200)
        rig.transport.release()
        rig.time.advance(by: 60)
        #expect(await rig.eventually { await rig.state("t/show/stop/site") == .delivered }, "the scheduled stop went on")
        await rig.stop()
    }

    @Test func theStopWaitsOnItsLaneForTheStartStillBeingRetried() async throws {
        let rig = try await rigWithItsStartBeingRetried()
        // At the end instant the start's last retry and the stop fall due together: the start's
        // attempt is held on the wire, and the stop must not overtake it.
        rig.transport.holdCalls()
        rig.time.advance(to: utc("2021-11-08T11:00:00Z"))
        #expect(await rig.eventually { rig.transport.onTheWire == 1 })
        #expect(await rig.eventually { await rig.state("t/show/stop/site") == .inflight }, "the stop is fired and journaled")
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(rig.transport.onTheWire == 1, "the stop waits behind the start's attempt")
        rig.transport.answer(200)
        rig.transport.release()
        #expect(await rig.eventually { await rig.state("t/show/stop/site") == .delivered })
        let types = rig.transport.calls.map(\.type)
        #expect(types.last == "stream.stop" && types.dropLast().allSatisfy { $0 == "stream.start" }, "\(types)")
        await rig.stop()
    }

    @Test func aFailingPlatformGetsAtMostEightRetriesInTheAirAtOnce() async throws {
        // Twenty past items on one platform: at start-up all twenty stops are due at once (SPEC 4).
        let rig = try await SchedulerRig(schedule: try pastItemsOnOneTarget(20, minutes: 2), at: utc("2021-11-08T12:00:00Z"))
        rig.transport.answer(503)
        #expect(await rig.eventually { await rig.scheduler.retries.count == 20 }, "every first attempt went, none waits behind a retry")
        rig.transport.holdCalls()
        rig.time.advance(by: 1)
        #expect(await rig.eventually { rig.transport.onTheWire == Scheduler.retriesPerTarget })
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(rig.transport.onTheWire == Scheduler.retriesPerTarget)
        rig.transport.release()
        #expect(await rig.eventually { rig.transport.calls.count == 40 }, "the other twelve get their turn")
        await rig.stop()
        #expect(await rig.scheduler.retries.isEmpty, "shutdown drops what waits; the journal keeps it in flight")
        #expect(try await rig.journal.jobRecords().values.filter { $0.id.action == .stop && $0.state == .inflight }.count == 20)
    }

    @Test func aHeldLoopStillWakesForARetry() {
        let now = utc("2021-11-08T10:00:00Z")
        #expect(LoopTurn.wake(now: now, next: nil, running: false, armLead: 2, warmUpLead: 0, warmedThrough: .distantPast, tick: 30,
                              retryDue: now.addingTimeInterval(5)) == now.addingTimeInterval(5))
        #expect(LoopTurn.wake(now: now, next: now.addingTimeInterval(10), running: true, armLead: 2, warmUpLead: 0,
                              warmedThrough: .distantPast, tick: 30, retryDue: now.addingTimeInterval(60)) == now.addingTimeInterval(8))
    }

    /// Found reading `recordAttempt`: the answer of a send an operator's stop superseded was
    /// written together with the job's row, which by then was the newer send's.
    @Test func theAnswerOfASupersededSendWritesNoJobRow() async throws {
        let rig = try await rigWithItsStopBeingRetried()
        let stop = JobID(event: "t", item: "show", action: .stop, target: "site")
        #expect(await rig.eventually { await rig.scheduler.retries[stop] != nil })
        rig.transport.holdCalls()
        rig.time.advance(by: 1)
        #expect(await rig.eventually { rig.transport.onTheWire == 1 }, "send 0's retry is on the wire")
        let manual = Task { try await rig.scheduler.sendNow(item: "show", action: .stop, again: false, by: "ops") }
        #expect(await rig.eventually { await rig.scheduler.snapshot().records[stop]?.send == 1 })
        rig.transport.answer(200)
        rig.transport.release()
        let outcome = try await manual.value
        #expect(outcome.delivered, "\(outcome.message)")
        #expect(await rig.eventually { await rig.state("t/show/stop/site") == .delivered })
        let writes = rig.store.attemptWrites
        #expect(writes.contains { $0.attempt == 0 && $0.job == nil }, "\(writes)")
        #expect(writes.allSatisfy { $0.job == nil || $0.job == $0.attempt }, "\(writes)")
        await rig.stop()
    }

    /// Found in review: a parked retry gave up its room on the target but kept its lane, so a first
    /// attempt of the same lane could take the room and wait for the retry, which then waited for
    /// room: with one delivery per target, the prepare's retry and the start waited for each other.
    @Test func aRetryNeverWaitsForRoomTakenByAnAttemptWaitingOnItsLane() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:59:58Z"), deliveriesPerTarget: 1)
        rig.transport.answer(503)
        // The late prepare fails and parks; the start, armed in the same turn, takes the room.
        #expect(await rig.eventually { await rig.scheduler.retries[JobID(event: "t", item: "show", action: .prepare, target: "site")] != nil })
        #expect(await rig.eventually { await rig.scheduler.underWay["site"] == 1 })
        rig.transport.answer(200)
        rig.time.advance(to: utc("2021-11-08T10:00:00Z"))
        #expect(await rig.eventually(timeout: 5) { await rig.state("t/show/start/site") == .delivered })
        #expect(rig.transport.calls.map(\.type).suffix(2) == ["stream.prepare", "stream.start"])
        await rig.stop()
    }

    /// Found in review: a retry of the item's start relaunched while an operator's stop was being
    /// journaled escaped the stop (its task was captured as none) and kept retrying.
    @Test func aStoppedItemsStartIsNotRetriedAgain() async throws {
        let rig = try await rigWithItsStartBeingRetried()
        rig.transport.answer(200)
        // The stop's records are written while the start's retry is due: the write is held open.
        rig.store.batches.close()
        let manual = Task { try await rig.scheduler.sendNow(item: "show", action: .stop, again: false, by: "ops") }
        #expect(await rig.eventually { await rig.scheduler.snapshot().records[showStart]?.state == .cancelled })
        rig.time.advance(by: 1)
        try await Task.sleep(nanoseconds: 100_000_000)
        rig.store.batches.open()
        #expect(try await manual.value.delivered)
        let starts = rig.transport.calls.filter { $0.type == "stream.start" }.count
        rig.time.advance(by: 60)
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(rig.transport.calls.filter { $0.type == "stream.start" }.count == starts, "no start after the stop")
        #expect(rig.transport.calls.last?.type == "stream.stop")
        #expect(await rig.state("t/show/start/site") == .cancelled)
        await rig.stop()
    }

    /// Found in review: with retries held as due times on the wall clock, a clock stepped back an
    /// hour held a retry for an hour (before, the backoff was an elapsed-time sleep).
    @Test func aClockSteppedBackDoesNotHoldARetry() async throws {
        let rig = try await rigWithItsStartBeingRetried()
        rig.transport.answer(200)
        rig.time.set(to: utc("2021-11-08T09:00:00Z"))
        try await Task.sleep(nanoseconds: 50_000_000)
        rig.time.advance(by: 1)
        #expect(await rig.eventually(timeout: 5) { await rig.state("t/show/start/site") == .delivered })
        #expect(rig.logs.entries.contains { $0.message.description == "the clock was stepped; retries keep their waits" })
        await rig.stop()
    }
}
