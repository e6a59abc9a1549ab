import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
import Logging

/// A job about to go out, with everything decided before its record is written.
///
/// A class: a whole past week's stops fired at once pass through several arrays, a waiting line
/// and the retry queue; each holds a reference, not a copy. The item and the target are found by
/// their places in the schedule it was fired from (two integers, where copies of them took 288
/// bytes a job: 2.7 MiB for a past week's 10,000 stops).
final class Firing: Sendable {
    let job: PlannedJob
    /// Of the record it was fired with, what delivery needs: the send (part of the webhook-id),
    /// the attempts made before this firing, and how late it left. Not the whole record, which
    /// the scheduler's table holds: a copy here was 150 of a storm's 300 bytes a firing.
    let send: Int
    let attemptsBefore: Int
    let lateBy: Double?
    let deadline: Date
    /// For an armed job: the transport holds its call until the instant.
    let cue: Cue?
    /// The schedule in force when it was fired, which its templates render.
    let schedule: Schedule
    private let itemPosition: Int
    private let targetPosition: Int

    /// `item` and `target` are places in `schedule.items` and `schedule.targets`.
    init(job: PlannedJob, record: JobRecord, item: Int, target: Int, deadline: Date, cue: Cue? = nil, schedule: Schedule) {
        self.job = job
        self.send = record.send
        self.attemptsBefore = record.attempts
        self.lateBy = record.lateBy
        self.itemPosition = item
        self.targetPosition = target
        self.deadline = deadline
        self.cue = cue
        self.schedule = schedule
    }

    var item: Item { schedule.items[itemPosition] }
    var target: Target { schedule.targets[targetPosition] }

    /// What every attempt of this send renders and signs: its webhook-timestamp is the instant.
    var context: DeliveryContext {
        DeliveryContext(schedule: schedule, item: item, job: job, send: send, timestamp: job.instant)
    }
}

/// The scheduler's memory as the firing machine reads it (see `Scheduler.memory`).
struct SchedulerMemory: FiringMemory {
    let records: RecordTable
    let phases: [JobID: JobPhase]
    let schedule: Schedule
    let itemIndex: [String: Int]
    let targetIndex: [String: Int]
    let targetsByName: [String: Target]

    func record(_ id: JobID) -> JobRecord? { records[id] }
    func isOnItsWay(_ id: JobID) -> Bool { phases[id] != nil }

    func place(of job: PlannedJob) -> (item: Int, target: Int)? {
        guard let item = itemIndex[job.itemID], let target = targetIndex[job.target] else { return nil }
        return (item, target)
    }

    func isPlanned(_ job: PlannedJob) -> Bool {
        guard let item = itemIndex[job.itemID] else { return false }
        return Planner.jobs(for: schedule.items[item], in: schedule) { targetsByName[$0] }.contains(job)
    }
}

/// A fired job waiting for room on its target.
struct PendingLaunch {
    var firing: Firing
    var after: [Latch]
    var answered: Latch?
    var report: Scheduler.FirstAnswerReport?
}

/// Firing, arming and delivering: the journal write comes before the call, and for a job that
/// is armed it comes before the instant too.
extension Scheduler {
    /// How an operator's send hears of each target's first answer.
    typealias FirstAnswerReport = @Sendable (FirstAnswer) -> Void

    /// Handed to delivery, armed, or about to be.
    func isDelivering(_ id: JobID) -> Bool { phases[id] != nil }

    /// The scheduler's memory as the firing machine reads it. Made for one decision and let go
    /// before anything changes: it shares the tables, and a change while it lives would copy them.
    var memory: SchedulerMemory {
        SchedulerMemory(records: records, phases: phases, schedule: schedule, itemIndex: itemIndex, targetIndex: targetIndex,
                        targetsByName: targetsByName)
    }

    /// Fires jobs due together (in firing order): the machine decides each one's fate, all their
    /// records go in one transaction (one fsync for a whole burst, before any call leaves), then
    /// the calls go to delivery. `alsoWrite` joins that transaction (an operator's send cancels or
    /// restores other jobs of the item: all of it is on disk, or none). `superseding`: an
    /// operator's stop replaces a send of the same job still under way.
    /// Returns false when the records could not be written (nothing was sent, nothing changed).
    @discardableResult
    func fire(_ jobs: [PlannedJob], now: Date, manualBy: String? = nil, alsoWrite: [JobRecord] = [],
              superseding: Bool = false, report: FirstAnswerReport? = nil) async -> Bool {
        var batch = machine.decideFiring(jobs, now: now, memory: memory, manualBy: manualBy, superseding: superseding, alsoWrite: alsoWrite)
        let firings = batch.decided.map {
            Firing(job: $0.job, record: $0.record, item: $0.item, target: $0.target, deadline: $0.deadline, schedule: schedule)
        }
        // From here until each is handed to its lane, the batch is being delivered for everyone
        // else: the write lets reloads, overrides and operators in.
        let before = firings.map { ($0.job.id, phases[$0.job.id]) }
        for firing in firings { phases[firing.job.id] = .journaling }
        let written = await persist(batch.write)
        let settled = machine.settleFiring(batch, written: written, manual: manualBy != nil)
        batch.write = []    // a past week's records are let go before their calls are launched
        batch.decided = []
        guard written else {
            for (id, phase) in before where phases[id].map(Self.isJournaling) == true { phases[id] = phase }
            settled.requeueLater.forEach(requeueLater)
            return false
        }
        for job in batch.missed {
            guard let record = records[job.id] else { continue }
            logger.warning("job missed", metadata: Self.metadata(job, send: record.send, lateness: now.timeIntervalSince(job.instant)))
        }
        for firing in firings where phases[firing.job.id].map(Self.isJournaling) == true { phases[firing.job.id] = nil }
        if settled.send { launchInOrder(firings, report: report) }
        return true
    }

    /// Arms jobs whose instant comes within `armLead`: decided by the machine, journaled "armed" in
    /// one transaction, rendered and cued in the transport, so that at the instant only the send is
    /// left. A job the write or a command overtook goes back to the queue and fires the ordinary way.
    func arm(_ upcoming: [PlannedJob], now: Date) async {
        let batch = machine.decideArming(upcoming, now: now, memory: memory)
        for job in batch.notArmed { requeueIfPlanned(job.id) }    // moved by a reload, or no longer ahead
        let firings = batch.decided.map {
            Firing(job: $0.job, record: $0.record, item: $0.item, target: $0.target, deadline: $0.deadline, cue: Cue(at: $0.job.instant),
                   schedule: schedule)
        }
        for firing in firings { phases[firing.job.id] = .journaling }
        let written = await persist(batch.write)
        var armed: [Firing] = []
        for (decided, firing) in zip(batch.decided, firings) {
            let id = firing.job.id
            // A command that took the job during the write (a stop by hand, a skip) owns it now.
            guard phases[id].map(Self.isJournaling) == true else { continue }
            phases[id] = nil
            let unchanged = isPlanned(firing.job) && item(id.item) == firing.item && targetsByName[id.target] == firing.target
            switch machine.settleArming(decided, written: written, current: records[id], unchanged: unchanged, now: now) {
            case .cue:
                phases[id] = .armed(send: firing.send, cue: firing.cue!, previous: decided.previous,
                                    rendered: Rendering(item: firing.item, target: firing.target))
                armed.append(firing)
            case .leave:
                continue
            case .back(let writeBack, let requeue):
                if let writeBack {
                    restore(id, decided.previous)
                    writeBacks[id] = writeBack
                }
                switch requeue {
                case .now: requeueIfPlanned(id)
                case .later: requeueLater(firing.job)
                case .never: break
                }
            }
        }
        launchInOrder(armed, report: nil)
    }

    /// At one instant a stop goes to a platform before another item's prepare or start, and is
    /// answered first (its first attempt, not its retries): a start that overtook the stop of
    /// the item before could be ended by it.
    private func launchInOrder(_ firings: [Firing], report: FirstAnswerReport?) {
        var stops: [String: [Latch]] = [:]
        for firing in firings {
            let key = "\(firing.job.target) \(firing.job.instant.timeIntervalSince1970)"
            if firing.job.action == .stop {
                let answered = Latch()
                stops[key, default: []].append(answered)
                launch(firing, answered: answered, report: report)
            } else {
                launch(firing, after: stops[key] ?? [], report: report)
            }
        }
    }

    static func isJournaling(_ phase: JobPhase) -> Bool {
        if case .journaling = phase { return true }
        return false
    }

    /// Takes back armed calls that have not left (`which` chooses them): they are pending again,
    /// their records as before arming. One that had already left at its instant is being
    /// delivered from now on. Returns how many were taken back.
    @discardableResult
    func withdrawArmed(_ which: (JobID) -> Bool) -> Int {
        var withdrawn = 0
        for (id, phase) in phases {
            guard case .armed(let send, let cue, let previous, _) = phase, which(id) else { continue }
            if cue.withdraw() {
                if let armed = records[id] { writeBacks[id] = FiringMachine.beforeArming(previous, armed: armed, now: time.now()) }
                removeWaiting(id)
                dropRetry(id)
                tasks[id] = nil
                phases[id] = nil
                restore(id, previous)
                requeueIfPlanned(id)
                withdrawn += 1
            } else {
                markLeft(id, send: send)
            }
        }
        return withdrawn
    }

    /// An armed call the transport has let go: it is being delivered from now on.
    private func markLeft(_ id: JobID, send: Int) {
        phases[id] = .delivering(send: send, retrying: nil)
        if records[id]?.state == .armed { records[id]?.state = .inflight }
    }

    /// Armed calls that have left by now count as being delivered (a reload's stranded check, status).
    func settleReleasedCues() {
        for (id, phase) in phases {
            if case .armed(let send, let cue, _, _) = phase, cue.current == .released { markLeft(id, send: send) }
        }
    }

    /// Writes withdrawn jobs back as they were before arming, so a restart does not find them
    /// "armed" past their instant and take them for calls that may have left. Only jobs whose
    /// record is still what the withdrawal left (nothing newer, nothing being written) are written;
    /// a failure is logged, since the "armed" row is read safely at start-up anyway.
    func flushWriteBacks() async {
        guard !writeBacks.isEmpty else { return }
        let batch = writeBacks.filter { id, record in
            phases[id] == nil && (records[id] == record || (records[id] == nil && record.state == .planned))
        }.map(\.value)
        // One being written right now (a command's records) is looked at again on a later turn.
        writeBacks = writeBacks.filter { id, _ in phases[id].map(Self.isJournaling) == true }
        guard !batch.isEmpty else { return }
        do {
            try await journaled { try await journal.save(batch) }
        } catch {
            logger.error("journal write failed", metadata: ["withdrawn": "\(batch.count)", "error": "\(error)"])
        }
    }

    private func restore(_ id: JobID, _ previous: JobRecord?) {
        records[id] = previous
    }

    /// Log metadata for a job, made only when a line is written: a burst of thousands of jobs
    /// must not carry a dictionary each while it waits.
    static func metadata(_ job: PlannedJob, send: Int, lateness: TimeInterval?) -> Logger.Metadata {
        var meta: Logger.Metadata = ["item": "\(job.itemID)", "action": "\(job.action.rawValue)", "target": "\(job.target)",
                                     "webhook_id": "\(WebhookSigner.webhookID(job: job.id, send: send))"]
        if let lateness { meta["lateness"] = lateness >= 10 ? "\(Int(lateness))s" : "\(String(format: "%.1f", lateness))s" }
        return meta
    }

    /// Hands a fired (or armed) job, already journaled, to its delivery lane, or to the target's
    /// waiting line when it has enough deliveries under way. It waits for `after` before its first
    /// attempt, and opens `answered` after it.
    private func launch(_ firing: Firing, after: [Latch] = [], answered: Latch? = nil, report: FirstAnswerReport? = nil) {
        logger.info(firing.cue == nil ? "firing" : "armed", metadata: Self.metadata(firing.job, send: firing.send, lateness: firing.lateBy))
        let target = firing.job.target
        // Behind the ones already waiting, always: a job that overtook the line onto its lane (room
        // opened since they queued) would go before an earlier job of its item, a stop before its start.
        waitingToLaunch[target, default: []].append(PendingLaunch(firing: firing, after: after, answered: answered, report: report))
        if firing.cue == nil { phases[firing.job.id] = .waitingForRoom(send: firing.send) }
        launchWaiting(for: target)
    }

    /// How many first attempts `target` may have under way: all its connections once it has
    /// answered, a few before that and while it fails (slow start, as TCP does). A platform that
    /// is down is not sent 64 calls at a time that all fail, and a past week's stops to it (a
    /// storm, SPEC 4) stay data rather than calls in the air. A warmed connection or a delivered
    /// call opens the window. Retries are not counted here: they have `retriesPerTarget` of their own.
    func room(on target: String) -> Int {
        targetHealth[target] == .answering ? deliveriesPerTarget : min(deliveriesPerTarget, Self.retriesPerTarget)
    }

    /// First attempts of `target` in the air (every delivery under way minus its retries).
    private func firstAttemptsUnderWay(_ target: String) -> Int {
        underWay[target, default: 0] - retriesUnderWay[target, default: 0]
    }

    /// Starts the next waiting attempts of `target`: due retries while fewer than `retriesPerTarget`
    /// are in the air (see `relaunchNextDueRetry`), then first attempts, in firing order, while it
    /// has room.
    func launchWaiting(for target: String) {
        while !stopping, retriesUnderWay[target, default: 0] < Self.retriesPerTarget, relaunchNextDueRetry(of: target) {}
        while !stopping, firstAttemptsUnderWay(target) < room(on: target) {
            guard let next = waitingToLaunch[target]?.popFirst() else { return }
            if waitingToLaunch[target]?.isEmpty == true { waitingToLaunch[target] = nil }
            start(next.firing, after: next.after, answered: next.answered, report: next.report)
        }
    }

    /// Takes a job's send out of the target's waiting line (an operator's stop supersedes it, or
    /// a withdrawal); `send` nil takes every send of it.
    func removeWaiting(_ id: JobID, send: Int? = nil) {
        guard waitingToLaunch[id.target] != nil else { return }
        waitingToLaunch[id.target]?.removeAll { $0.firing.job.id == id && (send == nil || $0.firing.send == send) }
        if waitingToLaunch[id.target]?.isEmpty == true { waitingToLaunch[id.target] = nil }
    }

    /// Shutdown: what waits for room stays in flight in the journal (cut off, sent after restart).
    func dropWaiting() {
        for line in waitingToLaunch.values {
            for pending in line where phases[pending.firing.job.id]?.isArmed != true { phases[pending.firing.job.id] = nil }
        }
        waitingToLaunch.removeAll()
    }
}
