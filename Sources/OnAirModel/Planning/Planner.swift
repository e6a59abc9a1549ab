import Foundation

/// Turns a validated schedule into the jobs it yields.
public enum Planner {
    /// How long a stop keeps being retried after the item's end.
    public static let stopGracePeriod: TimeInterval = 3600

    /// The jobs of one item, per target that handles each action, in execution order.
    public static func jobs(for item: Item, in schedule: Schedule) -> [PlannedJob] {
        jobs(for: item, in: schedule, target: schedule.target(named:))
    }

    /// The same, with the item's targets found by `target` (the scheduler's index by name: the
    /// schedule's own lookup is a scan of every target, and the scheduler plans items often).
    public static func jobs(for item: Item, in schedule: Schedule, target: (String) -> Target?) -> [PlannedJob] {
        guard item.online else { return [] }
        var jobs: [PlannedJob] = []
        jobs.reserveCapacity(item.targets.count * (schedule.leadTime > 0 ? 3 : 2))
        for name in item.targets {
            guard let target = target(name) else { continue }
            if schedule.leadTime > 0, target.handles(.prepare) {
                jobs.append(PlannedJob(id: JobID(event: schedule.id, item: item.id, action: .prepare, target: name),
                                       instant: item.start.addingTimeInterval(-TimeInterval(schedule.leadTime)),
                                       deadline: item.start))
            }
            if target.handles(.start) {
                jobs.append(PlannedJob(id: JobID(event: schedule.id, item: item.id, action: .start, target: name),
                                       instant: item.start, deadline: item.end))
            }
            if target.handles(.stop) {
                jobs.append(PlannedJob(id: JobID(event: schedule.id, item: item.id, action: .stop, target: name),
                                       instant: item.end, deadline: item.end.addingTimeInterval(stopGracePeriod)))
            }
        }
        return jobs
    }

    /// Every job of the schedule in firing order, optionally only those with
    /// `from <= instant < to`.
    public static func plan(_ schedule: Schedule, from: Date? = nil, to: Date? = nil) -> [PlannedJob] {
        var all: [PlannedJob] = []
        all.reserveCapacity(schedule.items.count * 3)
        for item in schedule.items {
            for job in jobs(for: item, in: schedule) {
                if let from, job.instant < from { continue }
                if let to, job.instant >= to { continue }
                all.append(job)
            }
        }
        all.sort(by: PlannedJob.firingOrder)
        return all
    }
}
