import Foundation
import Synchronization
import HeapModule
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// A delivery between two attempts, held as data: its next attempt's due time, and its place
/// on its lane. A whole past week's stops retrying to a dead platform are ten thousand of these
/// (a few hundred bytes each), not ten thousand suspended tasks.
struct PendingRetry {
    var due: Date
    var firing: Firing
    var launch: Int
    /// The number the next attempt gets, and the failures so far (for the backoff).
    var number: Int
    var failures: Int
    var turn: DeliveryLanes.Turn
}

/// A delivery's handle, what shutdown and an operator's stop cancel: an attempt not yet handed
/// to the transport is not sent, and the answer of one on the wire counts as cancelled (it is
/// neither retried nor taken for the job's outcome). A flag, since nothing waits on the wire to
/// be cancelled: the call is a closure in the transport.
final class DeliveryHandle: Sendable {
    private let state = Mutex<(cancelled: Bool, waiting: Task<Void, Never>?)>((false, nil))

    /// The task that waits for the delivery's turn on its lane, cancelled with the delivery.
    func waits(in task: Task<Void, Never>) {
        let cancelled = state.withLock { s -> Bool in
            s.waiting = task
            return s.cancelled
        }
        if cancelled { task.cancel() }
    }

    func cancel() {
        let task = state.withLock { s -> Task<Void, Never>? in
            s.cancelled = true
            return s.waiting
        }
        task?.cancel()
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }
}

/// What a target's platform last showed: it answers (a delivered call, a warmed connection), or
/// its last call failed in a way worth retrying (refused, 5xx, timed out).
enum TargetHealth {
    case answering
    case failing
}

/// The retry queue's order: the earliest due first.
struct RetryDue: Comparable {
    var due: Date
    var id: JobID
    var launch: Int
    static func < (a: RetryDue, b: RetryDue) -> Bool { (a.due, a.launch) < (b.due, b.launch) }
    static func == (a: RetryDue, b: RetryDue) -> Bool { a.launch == b.launch && a.due == b.due }
}

/// Attempts: the first one on the delivery's lane, each later one when the loop finds it due.
extension Scheduler {
    /// At most this many retries per target are in the air at once (within the target's
    /// `deliveriesPerTarget`): a platform that is failing is not hammered with 64 parallel retries,
    /// and a first attempt to it never waits behind more than these.
    static let retriesPerTarget = 8

    /// Hands a fired job's first attempt to its lane; it waits for `after` first and opens
    /// `answered` after it. No suspension between handing over and recording the task.
    func start(_ firing: Firing, after: [Latch], answered: Latch?, report: FirstAnswerReport?) {
        underWay[firing.job.target, default: 0] += 1
        launches += 1
        let launch = launches
        let id = firing.job.id, send = firing.send
        let handle = DeliveryHandle()
        let task = lanes.enqueueHolding(.init(item: id.item, target: id.target)) { turn in
            for latch in after { await latch.wait() }
            await self.attempt(firing, launch: launch, number: firing.attemptsBefore + 1, failures: 0, turn: turn, handle: handle,
                               answered: answered, report: report)
        }
        handle.waits(in: task)
        tasks[id] = (launch, send, handle)
        if firing.cue == nil { phases[id] = .delivering(send: send, retrying: nil) }
    }

    /// One attempt, off the actor: built, signed and handed to the transport by the deliverer; its
    /// answer goes to the scheduler (`take`), which journals it with the others that came meanwhile
    /// and carries the delivery on. The task ends once the call is handed over: nothing is
    /// suspended while it is on the wire. `answered` and `report` are the first attempt's only.
    nonisolated func attempt(_ firing: Firing, launch: Int, number: Int, failures: Int, turn: DeliveryLanes.Turn,
                             handle: DeliveryHandle, answered: Latch?, report: FirstAnswerReport?) async {
        let answer: Deliverer.AttemptAnswer = { reply in
            self.take(Answer(firing: firing, launch: launch, number: number, failures: failures, reply: reply,
                             cancelled: handle.isCancelled, turn: turn, answered: answered, report: report))
        }
        if handle.isCancelled || Task.isCancelled {
            answer(.ended(Deliverer.Attempted(end: .notSent(withdrawn: false))))
        } else if firing.cue?.current == .withdrawn {
            answer(.ended(Deliverer.Attempted(end: .notSent(withdrawn: true))))
        } else {
            deliverer.attempt(firing.context, target: firing.target, number: number, failures: failures, deadline: firing.deadline,
                              cue: firing.cue, answer: answer)
        }
    }

    /// After its answer is journaled: a retry is parked as data while the delivery is still this
    /// launch's and the daemon runs; anything else ends the delivery. Returns the job record still
    /// to be written before its lane goes on, if any (the lane is let go here otherwise).
    func attemptEnded(_ answer: Answer) -> OutcomeWrite? {
        let firing = answer.firing, launch = answer.launch, turn = answer.turn
        let id = firing.job.id, send = firing.send
        let made = answer.number - firing.attemptsBefore
        if made > 1 { retriesUnderWay.takeOne(from: id.target) }    // a retry: its room among the target's retries is free again
        switch answer.attempted.end {
        case .delivered: targetHealth[id.target] = .answering
        case .retry: targetHealth[id.target] = .failing
        case .failed, .notSent: break
        }
        let facts = AnswerRule.Facts(end: answer.attempted.end, made: made, withdrawn: firing.cue?.current == .withdrawn,
                                     cancelled: answer.cancelled, stopping: stopping, latestLaunch: tasks[id]?.launch == launch,
                                     wanted: isStillWanted(firing) || phases[id].map(Self.isJournaling) == true)
        let result: DeliveryResult
        switch AnswerRule.next(after: facts) {
        case .retry(let due):
            tasks[id] = nil
            underWay.takeOne(from: id.target)
            launchWaiting(for: id.target)
            retries[id] = PendingRetry(due: due, firing: firing, launch: launch, number: answer.number + 1,
                                       failures: answer.failures + 1, turn: turn)
            retryQueue.insert(RetryDue(due: due, id: id, launch: launch))
            wake.signal()
            return nil
        case .end(let end):
            result = end
        }
        guard let record = finished(id, launch: launch, send: send, result) else {
            turn.release()
            return nil
        }
        return OutcomeWrite(record: record, turn: turn)
    }

    /// Moves the retries whose time has come into their targets' lines and starts what has room
    /// (the loop calls this on every turn, held or not: a hold stops jobs firing, not deliveries
    /// under way). A retry waits for room like a first attempt: 10,000 retries due at once are
    /// not 10,000 calls and journal writes in the air at once.
    func relaunchDueRetries(now: Date) {
        var targets: Set<String> = []
        while let first = retryQueue.min, first.due <= now {
            retryQueue.removeMin()
            guard let pending = retries[first.id], pending.launch == first.launch, pending.due == first.due else { continue }
            dueRetries[first.id.target, default: []].append(first)
            targets.insert(first.id.target)
        }
        for target in targets.sorted() { launchWaiting(for: target) }
    }

    /// Whether `send` is still the job's and not yet settled in memory: an operator's stop that
    /// superseded it, or cancelled the item's start, wrote the record (in memory first, before its
    /// journal write), and the old send is neither attempted again nor given an outcome on disk.
    func isOpen(_ id: JobID, send: Int) -> Bool {
        guard let record = records[id] else { return false }
        return record.send == send && !record.state.isFinal
    }

    func isStillWanted(_ firing: Firing) -> Bool { isOpen(firing.job.id, send: firing.send) }

    /// Starts the next due retry of `target`, if one is still wanted (a dropped or superseded one
    /// is let go). A retry holds its lane already and needs no room among first attempts, only
    /// among the target's retries: a first attempt waiting on the retry's lane cannot keep it from
    /// going (with `deliveriesPerTarget` slots all taken by such waiters, it would never go).
    func relaunchNextDueRetry(of target: String) -> Bool {
        while let due = dueRetries[target]?.popFirst() {
            if dueRetries[target]?.isEmpty == true { dueRetries[target] = nil }
            guard var pending = retries[due.id], pending.launch == due.launch else { continue }
            // A command is deciding about this job right now (an operator's stop superseding it):
            // its answer comes first, and if its write fails this retry is still the job's.
            if phases[due.id].map(Self.isJournaling) == true {
                pending.due = time.now().addingTimeInterval(0.05)
                retries[due.id] = pending
                retryQueue.insert(RetryDue(due: pending.due, id: due.id, launch: pending.launch))
                wake.signal()
                continue
            }
            guard isStillWanted(pending.firing) else {
                dropRetry(due.id)
                continue
            }
            retries[due.id] = nil
            underWay[target, default: 0] += 1
            retriesUnderWay[target, default: 0] += 1
            let handle = DeliveryHandle()
            handle.waits(in: Task {
                await self.attempt(pending.firing, launch: pending.launch, number: pending.number, failures: pending.failures,
                                   turn: pending.turn, handle: handle, answered: nil, report: nil)
            })
            tasks[due.id] = (pending.launch, pending.firing.send, handle)
            return true
        }
        return false
    }

    /// A step of the wall clock (NTP, an operator) moves every retry's due time with it, so the
    /// wait between two attempts stays elapsed time: a clock set back an hour does not hold a stop's
    /// retry for an hour, and one set forward does not send it early. Seen on the loop's turns as a
    /// change of more than half a second in wall time minus elapsed time.
    func followClockStep(now: Date) {
        let offset = now.timeIntervalSince1970 - time.elapsed()
        defer { wallMinusElapsed = offset }
        guard let last = wallMinusElapsed, abs(offset - last) > 0.5, !retries.isEmpty else { return }
        let step = offset - last
        for (id, pending) in retries { retries[id]?.due = pending.due.addingTimeInterval(step) }
        retryQueue = Heap(retries.map { RetryDue(due: $0.value.due, id: $0.key, launch: $0.value.launch) })
        logger.notice("the clock was stepped; retries keep their waits",
                      metadata: ["step": "\(String(format: "%+.1f", step))s", "retries": "\(retries.count)"])
    }

    /// When the next retry is due, for the loop's wake-up.
    var nextRetryDue: Date? { retryQueue.min?.due }

    /// Takes a job's parked retry away (an operator's stop supersedes it, its cue is withdrawn, or
    /// shutdown): its lane goes on, and it stays in flight in the journal (cut off, sent again
    /// after restart with the same webhook-id) unless the caller records otherwise.
    func dropRetry(_ id: JobID, send: Int? = nil) {
        guard let pending = retries[id], send == nil || pending.firing.send == send else { return }
        retries[id] = nil
        if phases[id]?.send == pending.firing.send { phases[id] = nil }
        pending.turn.release()
    }

    func dropRetries() {
        for id in Array(retries.keys) { dropRetry(id) }
        retryQueue = Heap()
        dueRetries = [:]
    }
}

extension Dictionary where Value == Int {
    /// One fewer under way for `key`; the entry goes when it reaches zero.
    mutating func takeOne(from key: Key) {
        guard let count = self[key] else { return }
        self[key] = count > 1 ? count - 1 : nil
    }
}
