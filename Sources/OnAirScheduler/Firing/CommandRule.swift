import Foundation
import OnAirModel

/// An operator's command about one item (SPEC 2, 2.1), as an event for `CommandRule`.
public enum OperatorCommand: Sendable, Equatable {
    /// `onair start ITEM [--again]`.
    case start(item: String, again: Bool)
    /// `onair stop ITEM`: always allowed; supersedes every send of the item still under way.
    case stop(item: String)
    /// `onair extend ITEM DURATION`: moves the item's stop later.
    case extend(item: String, seconds: Int)
    /// `onair delay ITEM DURATION`: moves prepare, start and stop later; only before the start.
    case delay(item: String, seconds: Int)
    /// `onair skip ITEM`: cancels what is pending; not while on air or being sent.
    case skip(item: String)

    public var item: String {
        switch self {
        case .start(let item, _), .stop(let item), .extend(let item, _), .delay(let item, _), .skip(let item): item
        }
    }
}

/// What the scheduler knows when a command arrives: values only (the dictionaries are shared
/// with the scheduler's, copy-on-write), so the rule is tested by building one by hand.
struct CommandView {
    /// The schedule in force, overrides applied.
    var schedule: Schedule
    /// Where each item stands in `schedule.items`.
    var itemIndex: [String: Int]
    var records: RecordTable
    /// Jobs being journaled, armed, waiting for room or delivered right now (the scheduler's phases).
    var delivering: Set<JobID>
    /// Items on air, with when their start was delivered.
    var live: [String: Date]
    var overrides: [String: ItemOverride]
    var now: Date

    func item(_ id: String) -> Item? { itemIndex[id].map { schedule.items[$0] } }

    func jobs(of item: String, _ action: Action? = nil) -> [PlannedJob] {
        guard let item = self.item(item) else { return [] }
        let all = Planner.jobs(for: item, in: schedule)
        guard let action else { return all }
        return all.filter { $0.action == action }
    }

    func state(_ id: JobID) -> JobState { records[id]?.state ?? .planned }
}

/// What the scheduler is to do about a command: the actions of the state machine, carried out
/// by its shell (journal first, then memory, then the wire).
enum CommandDecision: Equatable {
    /// Nothing changes; the operator is told why.
    case refused(Scheduler.Refusal)
    /// Send `jobs` now as a new send (FiringRule's manual decision), writing `alsoWrite` in the same
    /// transaction; sends of `superseding` still under way give way to it (a stop).
    case send(jobs: [PlannedJob], alsoWrite: [JobRecord], superseding: [JobID])
    /// Journal this override, then put it in force and re-plan.
    case override(ItemOverride, answer: String)
    /// Journal these cancelled records in one transaction.
    case cancel([JobRecord], answer: String)
}

/// SPEC 2.1's rules for operators' commands as a pure function of a `CommandView`: no journal, no
/// clock, no actor. Every refusal and every record a command writes is decided here.
struct CommandRule {
    var view: CommandView
    /// Who gave the command, written into records and overrides.
    var by: String

    func decide(_ command: OperatorCommand) -> CommandDecision {
        do {
            return try decision(command)
        } catch {
            return .refused(error)
        }
    }

    private func decision(_ command: OperatorCommand) throws(Scheduler.Refusal) -> CommandDecision {
        let item = try onlineItem(command.item)
        switch command {
        case .start(_, let again): return try start(item, again: again)
        case .stop: return try stop(item)
        case .extend(_, let seconds): return try extend(item, by: seconds)
        case .delay(_, let seconds): return try delay(item, by: seconds)
        case .skip: return try skip(item)
        }
    }

    private var zone: TimeZone { view.schedule.timeZone }

    func onlineItem(_ id: String) throws(Scheduler.Refusal) -> Item {
        guard let item = view.item(id) else { throw Scheduler.Refusal("unknown item '\(id)'", kind: .unknown) }
        guard item.online else { throw Scheduler.Refusal("item '\(id)' is on-site only; nothing is streamed") }
        return item
    }

    private func states(_ item: String, _ action: Action) -> [JobState] {
        view.jobs(of: item, action).map { view.state($0.id) }
    }

    func hasStarted(_ item: String) -> Bool { states(item, .start).contains { $0 == .delivered || $0 == .inflight } }
    func hasStopped(_ item: String) -> Bool { states(item, .stop).contains { $0 == .delivered || $0 == .inflight } }
    private func isBeingSent(_ item: String) -> Bool { view.jobs(of: item).contains { view.delivering.contains($0.id) } }

    /// An item no longer in the way on `target`: its stream there ended, or will never start.
    func isOutOfTheWay(_ other: Item, on target: String) -> Bool {
        let event = view.schedule.id
        if view.state(JobID(event: event, item: other.id, action: .stop, target: target)) == .delivered { return true }
        switch view.records[JobID(event: event, item: other.id, action: .start, target: target)]?.state {
        case .cancelled?, .missed?, .failed?: return true
        default: return false
        }
    }

    private func refuseOverlap(_ verb: String, _ item: Item, from start: Date, to end: Date) throws(Scheduler.Refusal) {
        if let conflict = OverlapRule.conflict(of: item, from: start, to: end, among: view.schedule.items, isDone: isOutOfTheWay) {
            throw Scheduler.Refusal(OverlapRule.refusal(verb, item, conflict, zone: zone))
        }
    }

    /// Another item still on air on a shared target — its stop being retried past its end, or
    /// started early by hand — is in the way of a manual start whatever the planned times say.
    private func refuseWhileAnotherIsLive(_ item: Item) throws(Scheduler.Refusal) {
        for other in view.live.keys.sorted() where other != item.id {
            guard let otherItem = view.item(other) else { continue }
            let shared = otherItem.targets.filter(item.targets.contains)
            guard !shared.isEmpty else { continue }
            throw Scheduler.Refusal("'\(other)' is still on air on \(shared.joined(separator: ", ")); stop it first (onair stop \(other))")
        }
    }

    /// The item's jobs of `action` that are not final, as cancelled records.
    private func cancelled(_ item: String, _ action: Action, why: String) -> [JobRecord] {
        view.jobs(of: item, action).compactMap { job in
            let old = view.records[job.id]
            guard !(old?.state.isFinal ?? false) else { return nil }
            return JobRecord(id: job.id, state: .cancelled, send: old?.send ?? 0, attempts: old?.attempts ?? 0, instant: job.instant,
                             deadline: job.deadline, updatedAt: view.now, detail: why)
        }
    }

    /// A manual start brings the item's stops back (SPEC 2.1): every stop that is final (skipped,
    /// delivered by an earlier stop, failed) is pending again at the item's end, as a new send
    /// when the old one was sent.
    private func restoredStops(_ item: String) -> [JobRecord] {
        view.jobs(of: item, .stop).compactMap { job in
            guard let old = view.records[job.id], old.state.isFinal else { return nil }
            let wasSent = old.attempts > 0 || old.state == .delivered
            return JobRecord(id: job.id, state: .planned, send: wasSent ? old.send + 1 : old.send, instant: job.instant,
                             deadline: job.deadline, updatedAt: view.now, detail: "pending again after a start by hand by \(by)")
        }
    }

    private func sendable(_ item: Item, _ action: Action) throws(Scheduler.Refusal) -> [PlannedJob] {
        let jobs = view.jobs(of: item.id, action).sorted { $0.target < $1.target }
        guard !jobs.isEmpty else { throw Scheduler.Refusal("no target of '\(item.id)' takes a \(action.rawValue) call") }
        return jobs
    }

    /// A stop always works: sends of the item still under way, a stop being retried among them,
    /// give way to it, and what had not started yet will not start.
    private func stop(_ item: Item) throws(Scheduler.Refusal) -> CommandDecision {
        let jobs = try sendable(item, .stop)
        let why = "item stopped by hand by \(by)"
        return .send(jobs: jobs, alsoWrite: cancelled(item.id, .prepare, why: why) + cancelled(item.id, .start, why: why),
                     superseding: view.jobs(of: item.id).map(\.id).filter(view.delivering.contains))
    }

    private func start(_ item: Item, again: Bool) throws(Scheduler.Refusal) -> CommandDecision {
        let jobs = try sendable(item, .start)
        if hasStarted(item.id), !again {
            throw Scheduler.Refusal("'\(item.id)' was already started; use --again to send the start once more")
        }
        if item.end <= view.now {
            throw Scheduler.Refusal("'\(item.id)' ended at \(WallClock.labelledText(item.end, in: zone)); a start now would have no stop ahead")
        }
        if isBeingSent(item.id) { throw Scheduler.Refusal("a call of '\(item.id)' is being delivered right now; see onair history \(item.id)") }
        try refuseOverlap("a start now", item, from: view.now, to: item.end)
        try refuseWhileAnotherIsLive(item)
        return .send(jobs: jobs, alsoWrite: cancelled(item.id, .prepare, why: "item started by hand by \(by)") + restoredStops(item.id),
                     superseding: [])
    }

    private func extend(_ item: Item, by seconds: Int) throws(Scheduler.Refusal) -> CommandDecision {
        if hasStopped(item.id) { throw Scheduler.Refusal("'\(item.id)' was already stopped, or its stop is being delivered; nothing to extend") }
        let end = item.end.addingTimeInterval(TimeInterval(seconds))
        try refuseOverlap("extend", item, from: min(item.start, view.live[item.id] ?? item.start), to: end)
        return .override(added(to: item.id, shift: 0, extension: seconds),
                         answer: "'\(item.id)' now ends at \(WallClock.labelledText(end, in: zone))")
    }

    private func delay(_ item: Item, by seconds: Int) throws(Scheduler.Refusal) -> CommandDecision {
        if hasStarted(item.id) { throw Scheduler.Refusal("'\(item.id)' has already started; use extend to move its end") }
        let shift = TimeInterval(seconds)
        try refuseOverlap("delay", item, from: item.start.addingTimeInterval(shift), to: item.end.addingTimeInterval(shift))
        return .override(added(to: item.id, shift: seconds, extension: 0),
                         answer: "'\(item.id)' now starts at \(WallClock.labelledText(item.start.addingTimeInterval(shift), in: zone))")
    }

    /// Delays and extensions add up in the item's one stored override.
    private func added(to id: String, shift: Int, extension seconds: Int) -> ItemOverride {
        var o = view.overrides[id] ?? ItemOverride(item: id, by: by, at: view.now)
        o.shift += shift
        o.extension_ += seconds
        o.by = by
        o.at = view.now
        return o
    }

    private func skip(_ item: Item) throws(Scheduler.Refusal) -> CommandDecision {
        if hasStarted(item.id) && !hasStopped(item.id) { throw Scheduler.Refusal("'\(item.id)' is on air; use stop") }
        if isBeingSent(item.id) { throw Scheduler.Refusal("a call of '\(item.id)' is being delivered right now; use stop") }
        let batch = Action.allCases.flatMap { cancelled(item.id, $0, why: "skipped by \(by)") }
        return .cancel(batch, answer: "'\(item.id)' skipped: \(batch.count) pending job\(batch.count == 1 ? "" : "s") cancelled")
    }
}
