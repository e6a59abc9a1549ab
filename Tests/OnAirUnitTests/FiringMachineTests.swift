import Foundation
import Testing
import HeapModule
@testable import OnAirModel
@testable import OnAirScheduler

/// The scheduler's memory for the machine, as a few dictionaries: no journal, no transport.
private struct Memory: FiringMemory {
    var records: [JobID: JobRecord] = [:]
    var onItsWay: Set<JobID> = []
    var gone: Set<String> = []    // items the in-force schedule no longer has
    var unplanned: Set<JobID> = []    // jobs the in-force plan no longer has as they are

    func record(_ id: JobID) -> JobRecord? { records[id] }
    func isOnItsWay(_ id: JobID) -> Bool { onItsWay.contains(id) }
    func place(of job: PlannedJob) -> (item: Int, target: Int)? { gone.contains(job.itemID) ? nil : (0, 0) }
    func isPlanned(_ job: PlannedJob) -> Bool { !gone.contains(job.itemID) && !unplanned.contains(job.id) }
}

/// The firing state machine of SPEC 3.2 and 4: events in, actions out, every decision about a job
/// taken from its memory and the time — tested without I/O and without sleeping, the way
/// hummingbird tests its connection state machines.
@Suite("The firing state machine, without I/O")
struct FiringMachineTests {
    let t0 = utc("2021-11-08T20:30:00Z")

    func machine(armLead: TimeInterval = 2, slice: Int = 1024) -> FiringMachine {
        FiringMachine(armLead: armLead, warmUpLead: 0, slice: slice)
    }

    func job(_ item: String, _ action: Action, at offset: TimeInterval, deadline: TimeInterval = 3600) -> PlannedJob {
        PlannedJob(id: JobID(event: "t", item: item, action: action, target: "site"), instant: t0.addingTimeInterval(offset),
                   deadline: t0.addingTimeInterval(deadline))
    }

    func queued(_ jobs: [PlannedJob], in machine: inout FiringMachine) {
        for job in jobs { machine.queue.insert(QueuedJob(job: job)) }
    }

    // MARK: Events in, actions out

    @Test func timeReachedFiresWhatIsDueAndArmsWhatComesWithinTheLeadNeverEarly() {
        var m = machine()
        let due = job("a", .start, at: 0), soon = job("b", .start, at: 1.5), later = job("c", .start, at: 60)
        queued([later, soon, due], in: &m)
        #expect(m.handle(.timeReached(t0.addingTimeInterval(-0.001))) == [.arm([due, soon])], "a millisecond early: armed, not fired")
        queued([due, soon], in: &m)
        #expect(m.handle(.timeReached(t0)) == [.fire([due]), .arm([soon])])
        #expect(m.queue.count == 1)
        // The loop wakes to arm the next instant at its lead.
        #expect(m.wake(now: t0, warmedThrough: .distantPast, tick: 3600, retryDue: nil) == t0.addingTimeInterval(58))
    }

    @Test func aDrainedQueueLetsItsStorageGoAndAPartlyDrainedOneKeepsIt() {
        var m = machine(armLead: 0, slice: 100)
        m.queue.reserveCapacity(1000)
        queued((0..<300).map { job("i\($0)", .stop, at: Double($0) - 1000) }, in: &m)
        #expect(m.handle(.timeReached(t0)).count == 1)
        #expect(m.queue.count == 200 && m.queue.unordered.capacity >= 1000, "a backlog still draining keeps its room")
        _ = m.handle(.timeReached(t0))
        _ = m.handle(.timeReached(t0))
        #expect(m.queue.isEmpty)
        #expect(m.queue.unordered.capacity == 0, "a past week's queue is not kept through its storm of retries")
    }

    @Test func aHoldStopsFiringAndTakesBackArmedCallsAndResumeFiresWhatFellDueByTheRule() {
        var m = machine()
        queued([job("a", .start, at: 0)], in: &m)
        #expect(m.handle(.control(.hold)) == [.withdrawArmed])
        #expect(m.handle(.timeReached(t0.addingTimeInterval(30))) == [], "held: nothing fires")
        #expect(m.wake(now: t0, warmedThrough: .distantPast, tick: 10, retryDue: nil) == t0.addingTimeInterval(10), "held: only the tick")
        #expect(m.handle(.control(.resume)) == [])
        let late = t0.addingTimeInterval(30)
        #expect(m.handle(.timeReached(late)) == [.fire([job("a", .start, at: 0)])])
        // And the rule marks it late (SPEC 3.2: fired more than a second after its instant).
        let batch = m.decideFiring([job("a", .start, at: 0)], now: late, memory: Memory())
        #expect(batch.decided.first?.record.lateBy == 30)
    }

    @Test func shutdownIsForGoodAndEndsDeliveriesOnce() {
        var m = machine()
        queued([job("a", .start, at: 0)], in: &m)
        #expect(m.handle(.control(.shutdown)) == [.withdrawArmed, .endDeliveries])
        #expect(m.handle(.control(.shutdown)) == [])
        #expect(m.handle(.control(.resume)) == [])
        #expect(m.state == .stopping, "a resume does not undo shutdown")
        #expect(m.handle(.timeReached(t0)) == [])
        #expect(!m.mayArm)
    }

    // MARK: Before the write

    @Test func dueJobsAreFiredOrMissedInOneTransactionWithTheCommandsOwnRecordsFirst() {
        let m = machine()
        let prepare = job("a", .prepare, at: -600, deadline: 0), start = job("a", .start, at: 0)
        let cancelled = JobRecord(id: job("b", .start, at: 0).id, state: .cancelled, instant: t0, deadline: t0, updatedAt: t0)
        let batch = m.decideFiring([prepare, start], now: t0, memory: Memory(), alsoWrite: [cancelled])
        #expect(batch.missed == [prepare], "a prepare once its start has come is missed")
        #expect(batch.decided.map(\.job) == [start])
        #expect(batch.write.map(\.id) == [cancelled.id, prepare.id, start.id])
        #expect(batch.write.map(\.state) == [.cancelled, .missed, .inflight])
    }

    @Test func aJobOnItsWaySettledOrGoneIsNotFiredAgainButAnOperatorsStopSupersedesItsSend() {
        let m = machine()
        let a = job("a", .stop, at: 0), b = job("b", .start, at: 0), c = job("c", .start, at: 0)
        var memory = Memory(onItsWay: [a.id], gone: ["c"])
        memory.records[b.id] = JobRecord(id: b.id, state: .cancelled, instant: t0, deadline: t0, updatedAt: t0)
        #expect(m.decideFiring([a, b, c], now: t0, memory: memory).write.isEmpty,
                "on its way, skipped while it waited in the queue, its item gone")
        let byHand = m.decideFiring([a], now: t0, memory: memory, manualBy: "ops", superseding: true)
        #expect(byHand.decided.map(\.job.id) == [a.id])
        // A settled job sent by hand is a new send (a new webhook-id), leaving now.
        let again = m.decideFiring([b], now: t0.addingTimeInterval(5), memory: memory, manualBy: "ops")
        #expect(again.decided.first?.record.send == 1)
        #expect(again.decided.first?.job.instant == t0.addingTimeInterval(5))
    }

    @Test func armingWritesArmedRecordsAndKeepsWhatTheyWereBefore() {
        let m = machine()
        let ahead = job("a", .start, at: 1), passed = job("b", .start, at: -1), moved = job("c", .start, at: 1)
        let cutOff = JobRecord(id: ahead.id, state: .planned, send: 2, instant: ahead.instant, deadline: ahead.deadline, updatedAt: t0)
        let memory = Memory(records: [ahead.id: cutOff], unplanned: [moved.id])
        let batch = m.decideArming([ahead, passed, moved], now: t0, memory: memory)
        #expect(batch.decided.map(\.job) == [ahead])
        #expect(batch.write.map(\.state) == [.armed])
        #expect(batch.write.first?.send == 2, "an armed job keeps its send, so its webhook-id")
        #expect(batch.decided.first?.previous == cutOff)
        #expect(batch.notArmed == [passed, moved], "no longer ahead, or moved by a reload: they fire the ordinary way")
    }

    // MARK: After the write

    @Test func aFireTheJournalRefusedIsTriedAgainShortlyUnlessAnOperatorSentIt() {
        var m = machine()
        let start = job("a", .start, at: 0), prepare = job("a", .prepare, at: -600, deadline: 0)
        let batch = m.decideFiring([prepare, start], now: t0, memory: Memory())
        #expect(m.settleFiring(batch, written: false, manual: false) == .init(requeueLater: [start, prepare], send: false))
        #expect(m.settleFiring(batch, written: false, manual: true) == .init(requeueLater: [], send: false))
        #expect(m.settleFiring(batch, written: true, manual: false) == .init(requeueLater: [], send: true))
        _ = m.handle(.control(.shutdown))
        #expect(m.settleFiring(batch, written: true, manual: false).send == false,
                "shut down during the write: journaled in flight, cut off, sent after restart")
    }

    @Test func anArmedJobIsCuedOnlyIfNothingOvertookItsWrite() throws {
        var m = machine()
        let ahead = job("a", .start, at: 1)
        let decided = try #require(m.decideArming([ahead], now: t0, memory: Memory()).decided.first)
        #expect(m.settleArming(decided, written: true, current: decided.record, unchanged: true, now: t0) == .cue)
        // A command wrote the job meanwhile (a stop by hand, a skip): it owns it.
        var skipped = decided.record
        skipped.state = .cancelled
        #expect(m.settleArming(decided, written: true, current: skipped, unchanged: true, now: t0) == .leave)
        // A reload changed it: back to pending, its row written back, armed again at once.
        let pending = JobRecord(id: ahead.id, state: .planned, instant: ahead.instant, deadline: ahead.deadline, updatedAt: t0)
        #expect(m.settleArming(decided, written: true, current: decided.record, unchanged: false, now: t0)
                == .back(writeBack: pending, requeue: .now))
        // The journal refused it: nothing to write back, and not asked again at once.
        #expect(m.settleArming(decided, written: false, current: nil, unchanged: true, now: t0) == .back(writeBack: nil, requeue: .later))
        // A hold came in: back, queued for resume.
        _ = m.handle(.control(.hold))
        #expect(m.settleArming(decided, written: true, current: decided.record, unchanged: true, now: t0)
                == .back(writeBack: pending, requeue: .now))
        // Shutdown: back and not queued (pending on disk after restart).
        _ = m.handle(.control(.shutdown))
        #expect(m.settleArming(decided, written: true, current: decided.record, unchanged: true, now: t0)
                == .back(writeBack: pending, requeue: .never))
    }
}
