import Foundation
import HeapModule
import OnAirModel

/// What the firing machine reads of the scheduler's memory to decide about a job: its record,
/// whether it is already on its way, where its item and target stand in the in-force schedule,
/// and whether the in-force plan still has it. A protocol, so the machine's tests give it a few
/// dictionaries and no journal.
protocol FiringMemory {
    func record(_ id: JobID) -> JobRecord?
    /// Handed to delivery, armed, or being journaled (see `JobPhase`).
    func isOnItsWay(_ id: JobID) -> Bool
    /// The places of the job's item and target in the in-force schedule; nil when either is gone.
    func place(of job: PlannedJob) -> (item: Int, target: Int)?
    func isPlanned(_ job: PlannedJob) -> Bool
}

/// The firing state machine of SPEC 3.2 and 4, as a pure value: it owns the queue of pending jobs
/// and whether the daemon fires (`RunState`); events go in (`handle`), actions come out, and every
/// decision about a job — fired, missed, armed, left alone, taken back — is made here from the
/// scheduler's memory (`FiringMemory`) and the time, without I/O and without a clock.
///
/// The scheduler is its shell: it carries out the actions (journal writes, hand-overs to
/// delivery, cues), and tells the machine how a write went (`settleFiring`, `settleArming`).
/// A write is an `await`, during which operators, reloads and shutdown can come in; that is why a
/// decision is made in two steps, before the write and after it.
struct FiringMachine {
    /// Pending jobs, in firing order.
    var queue = Heap<QueuedJob>()
    /// Running, held or stopping; only `handle` changes it.
    private(set) var state = RunState.running
    let rule = FiringRule()
    /// How long before an instant its jobs are armed (0: never).
    let armLead: TimeInterval
    /// How long before an instant its connections are warmed (0: never).
    let warmUpLead: TimeInterval
    /// Due jobs fired per turn, whole instants at a time (see `LoopTurn.take`).
    let slice: Int

    init(armLead: TimeInterval, warmUpLead: TimeInterval, slice: Int) {
        self.armLead = max(0, armLead)
        self.warmUpLead = warmUpLead
        self.slice = slice
    }

    enum Event: Equatable {
        /// The loop turns: its time (an instant, an arming lead, a retry, a tick) has come.
        case timeReached(Date)
        /// An operator's hold or resume (journaled already), or shutdown.
        case control(RunState.Event)
    }

    enum Action: Equatable {
        /// Decide these due jobs (`decideFiring`), journal them in one transaction, then send them.
        case fire([PlannedJob])
        /// Decide these jobs whose instant comes within the lead (`decideArming`), journal them
        /// armed, cue them in the transport — once the fire before it is done, if the machine still runs.
        case arm([PlannedJob])
        /// Take back every armed call that has not left, its row written back as before arming.
        case withdrawArmed
        /// Shutdown: let go of deliveries waiting for room or a retry, cancel those on the wire.
        case endDeliveries
    }

    /// The one entry for what happens to the machine; the actions are the shell's to carry out, in order.
    mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .timeReached(let now):
            let turn = LoopTurn.take(from: &queue, now: now, running: state == .running, armLead: armLead, slice: slice)
            // A drained queue lets its storage go: sized for a whole week (2 MiB for 30,000 jobs),
            // it would stay through a past week's storm of retries after its last job had left.
            if queue.isEmpty && queue.unordered.capacity > 0 { queue = Heap() }
            return (turn.due.isEmpty ? [] : [.fire(turn.due)]) + (turn.upcoming.isEmpty ? [] : [.arm(turn.upcoming)])
        case .control(let event):
            let before = state
            state = state.after(event)
            switch (event, before) {
            case (.shutdown, .stopping): return []
            case (.shutdown, _): return [.withdrawArmed, .endDeliveries]
            case (.hold, _): return [.withdrawArmed]    // also when held already: nothing is armed then
            case (.resume, _): return []    // what fell due meanwhile fires at the next turn, by the rule
            }
        }
    }

    /// Whether jobs taken to be armed may still be: a hold, a reload or shutdown may have come in
    /// during the fire before them. When not, they go back to the queue.
    var mayArm: Bool { state == .running }

    /// When the loop must turn next (see `LoopTurn.wake`).
    func wake(now: Date, warmedThrough: Date, tick: TimeInterval, retryDue: Date?) -> Date {
        LoopTurn.wake(now: now, next: queue.min?.job.instant, running: state == .running, armLead: armLead, warmUpLead: warmUpLead,
                      warmedThrough: warmedThrough, tick: tick, retryDue: retryDue)
    }

    // MARK: Before the write

    /// A job decided to be sent (or armed), before its record is written.
    struct Decided: Equatable {
        var job: PlannedJob
        var record: JobRecord
        var deadline: Date
        /// Places of its item and target in the in-force schedule.
        var item: Int
        var target: Int
        /// Its record before arming (an armed job only): what counts again if it is taken back.
        var previous: JobRecord?
    }

    /// One fire's or arming's decisions: `write` is its one transaction.
    struct Batch: Equatable {
        var write: [JobRecord] = []
        var decided: [Decided] = []
        var missed: [PlannedJob] = []
        /// Jobs that are not armed after all (moved by a reload, no longer ahead): queued again, to fire the ordinary way.
        var notArmed: [PlannedJob] = []
    }

    /// Decides jobs due together: each one fired or missed by the rule. Skipped: a job already on
    /// its way (unless `superseding`: an operator's stop replaces a send still under way), a
    /// scheduled job an operator settled while it waited in the queue (a start that got past a skip
    /// would go on air with its stops cancelled), one whose item or target is gone. `alsoWrite`
    /// joins the transaction first (an operator's send cancels or restores other jobs of the item).
    func decideFiring(_ jobs: [PlannedJob], now: Date, memory: some FiringMemory, manualBy: String? = nil,
                      superseding: Bool = false, alsoWrite: [JobRecord] = []) -> Batch {
        var batch = Batch()
        // Sized once: a restart that finds a past week due writes a slice of a thousand records here.
        batch.write.reserveCapacity(alsoWrite.count + jobs.count)
        batch.write.append(contentsOf: alsoWrite)
        for job in jobs where superseding || !memory.isOnItsWay(job.id) {
            if manualBy == nil, memory.record(job.id)?.state.isFinal == true { continue }
            guard let place = memory.place(of: job) else { continue }
            switch rule.decide(job, record: memory.record(job.id), now: now, manualBy: manualBy) {
            case .missed(let record):
                batch.missed.append(job)
                batch.write.append(record)
            case .fire(let record, let job, let deadline):
                batch.decided.append(Decided(job: job, record: record, deadline: deadline, item: place.item, target: place.target))
                batch.write.append(record)
            }
        }
        return batch
    }

    /// Decides jobs whose instant comes within the lead: each journaled "armed" (the call may leave
    /// from its instant on). One on its way or final is left alone; one the plan no longer has as it
    /// is, or whose instant is no longer ahead, is not armed and fires the ordinary way.
    func decideArming(_ jobs: [PlannedJob], now: Date, memory: some FiringMemory) -> Batch {
        var batch = Batch()
        for job in jobs where !memory.isOnItsWay(job.id) && memory.record(job.id)?.state.isFinal != true {
            let previous = memory.record(job.id)
            guard memory.isPlanned(job), let place = memory.place(of: job),
                  case .fire(let record, let job, let deadline)? = rule.arm(job, record: previous, now: now) else {
                batch.notArmed.append(job)
                continue
            }
            batch.decided.append(Decided(job: job, record: record, deadline: deadline, item: place.item, target: place.target,
                                         previous: previous))
            batch.write.append(record)
        }
        return batch
    }

    // MARK: After the write

    /// How a fire's write went, for the shell: what to queue again in a second, and whether to send.
    struct FiringSettled: Equatable {
        /// Not on disk, so it does not count: a scheduled job is tried again shortly rather than
        /// sent unrecorded (an operator's send is refused instead, and can be repeated).
        var requeueLater: [PlannedJob]
        /// On disk: the calls go to delivery — unless the daemon began stopping during the write
        /// (they are journaled in flight: cut off, sent after restart with the same webhook-id).
        var send: Bool
    }

    func settleFiring(_ batch: Batch, written: Bool, manual: Bool) -> FiringSettled {
        guard written else {
            return FiringSettled(requeueLater: manual ? [] : batch.decided.map(\.job) + batch.missed, send: false)
        }
        return FiringSettled(requeueLater: [], send: state != .stopping)
    }

    /// What becomes of an armed job once its write came back.
    enum ArmingSettled: Equatable {
        /// Cued: its call leaves at the instant.
        case cue
        /// Someone else owns it now (a command wrote it during the write): left as they left it.
        case leave
        /// Taken back and queued again (`requeue`). With `writeBack` the write went through: memory
        /// goes back to its record before arming (`Decided.previous`), and its row is written back
        /// as `writeBack` so a restart does not find it armed; without, the journal refused it and
        /// memory is what it was already.
        case back(writeBack: JobRecord?, requeue: Requeue)
    }

    /// At once; in a second (a journal that refused the write is not asked again at once, or the
    /// loop would spin on it); or not at all (stopping: it is pending on disk after restart).
    enum Requeue: Equatable { case now, later, never }

    /// `current`: the job's record in memory now. `unchanged`: the in-force plan still has the job
    /// as it was rendered (a reload during the write may have changed it, its item or its target).
    /// Overtaken — the disk refused the write, a hold, a reload or an override came in — the job
    /// goes back; the "armed" on disk is harmless until written back (see `FiringRule.recovered`).
    func settleArming(_ decided: Decided, written: Bool, current: JobRecord?, unchanged: Bool, now: Date) -> ArmingSettled {
        if written && current != decided.record { return .leave }
        guard written, state == .running, unchanged else {
            let requeue: Requeue = state == .stopping ? .never : (written ? .now : .later)
            return .back(writeBack: written ? Self.beforeArming(decided.previous, armed: decided.record, now: now) : nil, requeue: requeue)
        }
        return .cue
    }

    /// What a taken-back job's row goes back to: its record before arming, or pending with its send.
    static func beforeArming(_ previous: JobRecord?, armed: JobRecord, now: Date) -> JobRecord {
        previous ?? JobRecord(id: armed.id, state: .planned, send: armed.send, instant: armed.instant, deadline: armed.deadline, updatedAt: now)
    }
}
