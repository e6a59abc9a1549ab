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
    static func take(from queue: inout Heap<QueuedJob>, now: Date, running: Bool, armLead: TimeInterval) -> LoopTurn {
        var turn = LoopTurn()
        guard running else { return turn }
        while let first = queue.min, first.job.instant <= now { turn.due.append(queue.removeMin().job) }
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
