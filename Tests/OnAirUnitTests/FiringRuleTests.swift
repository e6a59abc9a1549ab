import Foundation
import Testing
import HeapModule
@testable import OnAirModel
@testable import OnAirDelivery
@testable import OnAirScheduler

/// The firing rule of SPEC 3.2 and 4 as a pure value: no clock, no journal, no transport.
@Suite("The firing rule, without I/O")
struct FiringRuleTests {
    let rule = FiringRule()
    let start = utc("2021-11-08T10:00:00Z")
    let end = utc("2021-11-08T11:00:00Z")

    func job(_ action: Action) -> PlannedJob {
        let id = JobID(event: "t", item: "show", action: action, target: "site")
        switch action {
        case .prepare: return PlannedJob(id: id, instant: start.addingTimeInterval(-600), deadline: start)
        case .start: return PlannedJob(id: id, instant: start, deadline: end)
        case .stop: return PlannedJob(id: id, instant: end, deadline: end.addingTimeInterval(Planner.stopGracePeriod))
        }
    }

    func fired(_ decision: FiringDecision) -> (record: JobRecord, job: PlannedJob, deadline: Date)? {
        if case .fire(let r, let j, let d) = decision { return (r, j, d) }
        return nil
    }

    @Test func onTimeEveryActionFiresWithItsOwnDeadlineAndIsNotLate() {
        for action in Action.allCases {
            let j = job(action)
            let f = fired(rule.decide(j, record: nil, now: j.instant))
            #expect(f?.record.state == .inflight)
            #expect(f?.deadline == j.deadline)
            #expect(f?.record.lateBy == nil)
            #expect(f?.record.send == 0)
        }
    }

    @Test func lateButBeforeItsDeadlineAJobFiresMarkedLate() {
        let f = fired(rule.decide(job(.start), record: nil, now: start.addingTimeInterval(1800)))
        #expect(f?.record.lateBy == 1800)
        #expect(f?.deadline == end)
        // Within the threshold it is not late.
        #expect(fired(rule.decide(job(.start), record: nil, now: start.addingTimeInterval(0.9)))?.record.lateBy == nil)
    }

    @Test func aPrepareOnceItsStartHasComeIsMissed() {
        guard case .missed(let r) = rule.decide(job(.prepare), record: nil, now: start) else { Issue.record("prepare fired at the start"); return }
        #expect(r.state == .missed)
        #expect(r.detail?.contains("deadline") == true)
    }

    @Test func aMissedRecordKeepsItsTimesAndIsWordedWithThemWhereItIsRead() throws {
        // An earlier send's record (other times) is missed now: the record takes the job's times.
        var earlier = JobRecord(id: job(.start).id, state: .planned, instant: start.addingTimeInterval(-7200),
                                deadline: start.addingTimeInterval(-3600), updatedAt: start)
        earlier.detail = "anything"
        guard case .missed(let r) = rule.decide(job(.start), record: earlier, now: end) else { Issue.record("start fired after the end"); return }
        #expect(r.instant == start && r.deadline == end)
        let zone = try #require(TimeZone(identifier: "Europe/Amsterdam"))
        #expect(r.reason(in: zone) == "start was due at \(WallClock.labelledText(start, in: zone)); "
                + "its deadline \(WallClock.labelledText(end, in: zone)) had passed")
        // A text written by an older version is shown as it was written.
        var old = r
        old.detail = "start was due at Mon 8 Nov 11:00 CET; its deadline had passed"
        #expect(old.reason(in: zone) == old.detail)
    }

    @Test func aStartOnceItsItemHasEndedIsMissed() {
        guard case .missed = rule.decide(job(.start), record: nil, now: end) else { Issue.record("start fired after the end"); return }
    }

    @Test func aStopPastItsDeadlineIsStillSentWithAnHourFromNow() {
        let now = end.addingTimeInterval(5 * 3600)
        let f = fired(rule.decide(job(.stop), record: nil, now: now))
        #expect(f?.record.state == .inflight)
        #expect(f?.deadline == now.addingTimeInterval(3600))
        #expect(FiringRule.deadline(of: job(.stop), firedAt: now) == now.addingTimeInterval(3600))
        #expect(FiringRule.deadline(of: job(.start), firedAt: end) == nil)
    }

    @Test func aCutOffDeliveryKeepsItsSendAndSoItsWebhookID() {
        let cut = JobRecord(id: job(.start).id, state: .inflight, send: 0, attempts: 1, instant: start, deadline: end, updatedAt: start)
        let f = fired(rule.decide(job(.start), record: cut, now: start.addingTimeInterval(30)))
        #expect(f?.record.send == 0)
        #expect(f?.record.attempts == 1, "attempts go on counting")
    }

    @Test func aManualSendIsANewSendLeavingNowWithAtLeastAnHourOfRetries() {
        let now = start.addingTimeInterval(-3600)
        let delivered = JobRecord(id: job(.start).id, state: .delivered, send: 0, attempts: 1, instant: start, deadline: end, updatedAt: start)
        let f = fired(rule.decide(job(.start), record: delivered, now: now, manualBy: "ops"))
        #expect(f?.record.send == 1)
        #expect(f?.record.attempts == 0)
        #expect(f?.job.instant == now, "its body timestamp is the moment it was accepted")
        #expect(f?.deadline == max(end, now.addingTimeInterval(3600)))
        #expect(f?.record.detail == "sent by hand by ops")
        // The first manual send of a job without a record keeps send 0.
        #expect(fired(rule.decide(job(.stop), record: nil, now: now, manualBy: "ops"))?.record.send == 0)
    }

    @Test func armingIsOnlyForAnInstantStillAhead() {
        let armed = rule.arm(job(.start), record: nil, now: start.addingTimeInterval(-2)).flatMap(fired)
        #expect(armed?.record.state == .armed)
        #expect(armed?.record.instant == start)
        #expect(armed?.record.lateBy == nil)
        #expect(rule.arm(job(.start), record: nil, now: start) == nil)
    }

    @Test func recoveryCountsAnArmedCallByWhetherItsInstantHasPassed() {
        let armed = JobRecord(id: job(.start).id, state: .armed, instant: start, deadline: end, updatedAt: start.addingTimeInterval(-2))
        #expect(FiringRule.recovered(armed, now: start.addingTimeInterval(-1)).state == .planned)
        #expect(FiringRule.recovered(armed, now: start).state == .inflight)
        #expect(FiringRule.recovered(armed, now: start.addingTimeInterval(1)).send == 0)
        for state in JobState.allCases where state != .armed {
            var other = armed
            other.state = state
            #expect(FiringRule.recovered(other, now: end) == other)
        }
    }
}

@Suite("Cues: a call held for its instant")
struct CueTests {
    @Test func aWithdrawnCueIsNeverReleased() {
        let cue = Cue(at: Date())
        let seen = Counter()
        cue.onWithdraw { seen.add() }
        #expect(cue.withdraw())
        #expect(seen.value == 1)
        #expect(!cue.release())
        #expect(cue.current == .withdrawn)
        cue.onWithdraw { seen.add() }    // late observers run at once
        #expect(seen.value == 2)
    }

    @Test func aReleasedCueCannotBeWithdrawn() {
        let cue = Cue(at: Date())
        let seen = Counter()
        cue.onWithdraw { seen.add() }
        #expect(cue.release())
        #expect(!cue.withdraw())
        #expect(cue.current == .released)
        #expect(seen.value == 0)
    }
}

/// The loop's turn as a pure value: what it takes from the queue and when it turns next.
@Suite("The loop's turn, without I/O")
struct LoopTurnTests {
    let t0 = utc("2021-11-08T10:00:00Z")

    func queue(_ offsets: [TimeInterval]) -> Heap<QueuedJob> {
        var heap = Heap<QueuedJob>()
        for (n, offset) in offsets.enumerated() {
            let id = JobID(event: "t", item: "i\(n)", action: .start, target: "site")
            heap.insert(QueuedJob(job: PlannedJob(id: id, instant: t0.addingTimeInterval(offset), deadline: t0.addingTimeInterval(3600))))
        }
        return heap
    }

    @Test func neverTakesAJobBeforeItsInstantAndArmsOnlyWithinTheLead() {
        var q = queue([-5, 0, 0.001, 1.5, 2, 2.001, 60])
        let turn = LoopTurn.take(from: &q, now: t0, running: true, armLead: 2)
        #expect(turn.due.map(\.instant) == [t0.addingTimeInterval(-5), t0])
        #expect(turn.upcoming.map(\.instant) == [0.001, 1.5, 2].map { t0.addingTimeInterval($0) })
        #expect(q.count == 2, "2.001 s and 60 s ahead stay queued")
    }

    @Test func withoutArmingOnlyDueJobsAreTakenAndAHeldLoopTakesNothing() {
        var held = queue([-10, 0])
        #expect(LoopTurn.take(from: &held, now: t0, running: false, armLead: 2) == LoopTurn())
        #expect(held.count == 2)
        var plain = queue([0, 1])
        let turn = LoopTurn.take(from: &plain, now: t0, running: true, armLead: 0)
        #expect(turn.due.count == 1 && turn.upcoming.isEmpty && plain.count == 1)
    }

    @Test func aBacklogIsTakenInSlicesOfWholeInstantsAndTheLoopTurnsAgainAtOnce() {
        // Five past instants of three jobs each: slices of four take two whole instants (six jobs).
        var q = queue([-50, -50, -50, -40, -40, -40, -30, -30, -30, -20, -20, -20, -10, -10, -10, 5])
        let first = LoopTurn.take(from: &q, now: t0, running: true, armLead: 0, slice: 4)
        #expect(first.due.map(\.instant) == [-50, -50, -50, -40, -40, -40].map { t0.addingTimeInterval($0) })
        #expect(LoopTurn.wake(now: t0, next: q.min?.job.instant, running: true, armLead: 0, warmUpLead: 0,
                              warmedThrough: .distantPast, tick: 3600) <= t0, "the rest of the backlog is due: no sleep")
        var taken = first.due.count
        while case let turn = LoopTurn.take(from: &q, now: t0, running: true, armLead: 0, slice: 4), !turn.due.isEmpty {
            #expect(Set(turn.due.map(\.instant)).count == 2 || q.min.map { $0.job.instant > t0 } == true)
            taken += turn.due.count
        }
        #expect(taken == 15 && q.count == 1, "every due job once, the future one left")
        // With arming on, the rest of a cut backlog is not taken to be armed: it is due, not ahead
        // (the first daemon with slices spun on a past week "armed" 29,000 jobs at a time).
        var armed = queue([-50, -50, -40, -30, 1])
        let cut = LoopTurn.take(from: &armed, now: t0, running: true, armLead: 2, slice: 2)
        #expect(cut.due.count == 2 && cut.upcoming.isEmpty && armed.count == 3)
        // One instant larger than a slice is never cut.
        var big = queue(Array(repeating: 0, count: 9))
        #expect(LoopTurn.take(from: &big, now: t0, running: true, armLead: 0, slice: 4).due.count == 9)
    }

    @Test func theLoopWakesToArmWarmOrTickWhicheverComesFirst() {
        let next = t0.addingTimeInterval(10)
        #expect(LoopTurn.wake(now: t0, next: next, running: true, armLead: 2, warmUpLead: 0, warmedThrough: .distantPast, tick: 3600)
                == t0.addingTimeInterval(8))
        #expect(LoopTurn.wake(now: t0, next: next, running: true, armLead: 2, warmUpLead: 5, warmedThrough: .distantPast, tick: 3600)
                == t0.addingTimeInterval(5))
        #expect(LoopTurn.wake(now: t0, next: next, running: true, armLead: 2, warmUpLead: 5, warmedThrough: next, tick: 3600)
                == t0.addingTimeInterval(8), "an instant already warmed is not warmed again")
        #expect(LoopTurn.wake(now: t0, next: next, running: true, armLead: 0, warmUpLead: 0, warmedThrough: .distantPast, tick: 3600) == next)
        #expect(LoopTurn.wake(now: t0, next: next, running: true, armLead: 2, warmUpLead: 0, warmedThrough: .distantPast, tick: 1)
                == t0.addingTimeInterval(1))
        #expect(LoopTurn.wake(now: t0, next: next, running: false, armLead: 2, warmUpLead: 0, warmedThrough: .distantPast, tick: 30)
                == t0.addingTimeInterval(30), "held: only the tick")
        #expect(LoopTurn.wake(now: t0, next: nil, running: true, armLead: 2, warmUpLead: 0, warmedThrough: .distantPast, tick: 30)
                == t0.addingTimeInterval(30))
    }

    /// The storm (a past week's 10,000 stops due at once) keeps a phase per job under way: the
    /// dictionary is sized by the largest case, which held a record and an item inline (~450 bytes)
    /// until the armed case was made indirect (heaptrack: 8 MiB of phases at the storm's peak).
    @Test func aJobPhaseIsAFewBytesWhateverItsCase() {
        #expect(MemoryLayout<JobPhase>.size <= 32, "a send number and a short reason at most")
    }
}
