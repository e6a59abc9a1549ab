import Foundation
import HeapModule
import OnAirModel

/// A pending job in the firing queue, ordered as jobs fire.
struct QueuedJob: Comparable {
    var job: PlannedJob
    static func < (a: QueuedJob, b: QueuedJob) -> Bool { PlannedJob.firingOrder(a.job, b.job) }
    static func == (a: QueuedJob, b: QueuedJob) -> Bool { a.job.id == b.job.id }
}

/// What one turn of the firing loop takes from the queue, and when the loop must turn next: a
/// pure value over the queue and the time, so "never early", the arming window and the wake-up
/// rule are tested without a clock or a journal.
struct LoopTurn: Equatable {
    /// Due now (instant ≤ now): decided and journaled, then sent.
    var due: [PlannedJob] = []
    /// Within the arming lead (now < instant ≤ now + lead): armed ahead.
    var upcoming: [PlannedJob] = []

    /// Takes what is due and, when `armLead` > 0, what is to be armed, out of `queue`. A held or
    /// stopping loop takes nothing.
    ///
    /// At most about `slice` due jobs a turn, in firing order and never part of an instant: a
    /// restart that finds a past week due fires it in transactions of a thousand jobs (the first
    /// stops leave after the first, and memory holds one slice's batch, not 30,000 records), while
    /// one instant's jobs are always decided and journaled together (its stops answered before its
    /// starts, SPEC 4). The loop turns again at once for the rest.
    static func take(from queue: inout Heap<QueuedJob>, now: Date, running: Bool, armLead: TimeInterval,
                     slice: Int = .max) -> LoopTurn {
        var turn = LoopTurn()
        guard running else { return turn }
        while let first = queue.min, first.job.instant <= now {
            if turn.due.count >= slice, let last = turn.due.last, first.job.instant != last.instant { break }
            turn.due.append(queue.removeMin().job)
        }
        // A backlog cut into slices: what is left of it is due, not upcoming, and waits for the next turn.
        if let first = queue.min, first.job.instant <= now { return turn }
        guard armLead > 0 else { return turn }
        let horizon = now.addingTimeInterval(armLead)
        while let first = queue.min, first.job.instant <= horizon { turn.upcoming.append(queue.removeMin().job) }
        return turn
    }

    /// When the loop must turn next: to arm (or, without arming, fire) the next instant, to warm
    /// its connections if that comes first and has not been done, for the next retry of a delivery
    /// under way (held or not: a hold stops firing, not deliveries), and at least every `tick`.
    static func wake(now: Date, next: Date?, running: Bool, armLead: TimeInterval, warmUpLead: TimeInterval,
                     warmedThrough: Date, tick: TimeInterval, retryDue: Date? = nil) -> Date {
        let ticking = min(now.addingTimeInterval(tick), retryDue ?? .distantFuture)
        guard running, let next else { return ticking }
        var at = armLead > 0 ? next.addingTimeInterval(-armLead) : next
        if warmUpLead > 0 && next > warmedThrough { at = min(at, next.addingTimeInterval(-warmUpLead)) }
        return min(at, ticking)
    }
}
