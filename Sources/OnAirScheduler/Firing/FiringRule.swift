import Foundation
import OnAirModel

/// What becomes of one job at a moment: the firing rule of SPEC 3.2 and 4, one for every situation
/// (on time, after a crash, after a clock step, after `resume`, at an operator's command).
public enum FiringDecision: Sendable, Equatable {
    /// Its moment passed and sending it late would be wrong: this record says so.
    case missed(JobRecord)
    /// Sent: the record to journal first, and the deadline its retries get.
    case fire(JobRecord, PlannedJob, deadline: Date)
}

/// The firing rule as a pure value: what the journal says of a job, the plan's job and the time in;
/// a decision out. No I/O and no clock of its own, so every rule is tested without either.
public struct FiringRule: Sendable {
    /// A job counts as late when it is fired more than this after its instant.
    public static let latenessThreshold: TimeInterval = 1

    public init() {}

    /// The deadline rule, in one place: a job's own deadline (the planner's: a prepare until the
    /// start, a start until the end, a stop an hour past the end); a stop fired past its own deadline
    /// (after downtime, a hold, a full disk) gets an hour of retries from the moment it is fired,
    /// since a stream left live is the worse harm; a prepare or start past it is missed.
    public static func deadline(of job: PlannedJob, firedAt now: Date) -> Date? {
        if now < job.deadline { return job.deadline }
        return job.action == .stop ? now.addingTimeInterval(Planner.stopGracePeriod) : nil
    }

    /// The decision for `job` at `now`. `manualBy`: an operator's send, which is a new send (a new
    /// webhook-id when the job had one already) leaving now, with at least an hour of retries.
    public func decide(_ job: PlannedJob, record existing: JobRecord?, now: Date, manualBy: String? = nil) -> FiringDecision {
        var record = existing ?? JobRecord(id: job.id, state: .planned, instant: job.instant, deadline: job.deadline, updatedAt: now)
        var job = job
        if let by = manualBy {
            if existing != nil { record.send += 1 }
            record.attempts = 0
            record.lateBy = nil
            record.detail = "sent by hand by \(by)"
            job.instant = now
            job.deadline = max(job.deadline, now.addingTimeInterval(Planner.stopGracePeriod))
        }
        guard let deadline = Self.deadline(of: job, firedAt: now) else {
            record.state = .missed
            record.instant = job.instant
            record.deadline = job.deadline
            record.updatedAt = now
            record.detail = JobRecord.deadlinePassed    // `reason(in:)` words it with these times
            return .missed(record)
        }
        record.state = .inflight
        record.instant = job.instant
        record.deadline = deadline
        record.updatedAt = now
        let lateness = now.timeIntervalSince(job.instant)
        if lateness > Self.latenessThreshold { record.lateBy = lateness }
        return .fire(record, job, deadline: deadline)
    }

    /// The record that makes a job ready ahead of its instant (`now` < instant): journaled "armed",
    /// it says the call may leave from its instant on. Nil when the job is not ahead.
    public func arm(_ job: PlannedJob, record existing: JobRecord?, now: Date) -> FiringDecision? {
        guard job.instant > now, case .fire(var record, let job, let deadline) = decide(job, record: existing, now: now) else { return nil }
        record.state = .armed
        return .fire(record, job, deadline: deadline)
    }

    /// How a record found in the journal at start-up counts (SPEC 4): an armed call whose instant has
    /// passed may have left, so it is cut off like one in flight (sent again with the same webhook-id);
    /// one whose instant is still ahead never left and is simply pending.
    public static func recovered(_ record: JobRecord, now: Date) -> JobRecord {
        guard record.state == .armed else { return record }
        var r = record
        r.state = record.instant <= now ? .inflight : .planned
        return r
    }
}
