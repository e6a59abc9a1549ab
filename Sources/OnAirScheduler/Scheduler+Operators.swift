import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
import Logging

/// The operator's commands (SPEC 2, 2.1, 3.2). They run one after the other, each is on disk
/// before it counts, and none can leave a stream live with no stop ahead.
extension Scheduler {
    func onlineItem(_ id: String) throws(Refusal) -> Item {
        guard let item = item(id) else { throw Refusal("unknown item '\(id)'", kind: .unknown) }
        guard item.online else { throw Refusal("item '\(id)' is on-site only; nothing is streamed") }
        return item
    }

    private func states(_ item: String, _ action: Action) -> [JobState] {
        jobs(of: item, action).map { records[$0.id]?.state ?? .planned }
    }

    func hasStarted(_ item: String) -> Bool { states(item, .start).contains { $0 == .delivered || $0 == .inflight } }
    func hasStopped(_ item: String) -> Bool { states(item, .stop).contains { $0 == .delivered || $0 == .inflight } }

    /// An item no longer in the way on `target`: its stream there ended, or will never start.
    func isOutOfTheWay(_ other: Item, on target: String) -> Bool {
        let stop = JobID(event: schedule.id, item: other.id, action: .stop, target: target)
        let start = JobID(event: schedule.id, item: other.id, action: .start, target: target)
        if records[stop]?.state == .delivered { return true }
        switch records[start]?.state {
        case .cancelled?, .missed?, .failed?: return true
        default: return false
        }
    }

    private func refuseOverlap(_ verb: String, _ item: Item, from start: Date, to end: Date) throws(Refusal) {
        if let conflict = OverlapRule.conflict(of: item, from: start, to: end, among: schedule.items, isDone: isOutOfTheWay) {
            throw Refusal(OverlapRule.refusal(verb, item, conflict, zone: schedule.timeZone))
        }
    }

    /// How long a manual start or stop waits for the platforms' first answers before it answers.
    static let longestFirstAnswerWait: TimeInterval = 45

    /// Another item still on air on a shared target — its stop being retried past its end, or
    /// started early by hand — is in the way of a manual start whatever the planned times say.
    private func refuseWhileAnotherIsLive(_ item: Item) throws(Refusal) {
        for other in live.keys.sorted() where other != item.id {
            guard let otherItem = self.item(other) else { continue }
            let shared = otherItem.targets.filter(item.targets.contains)
            guard !shared.isEmpty else { continue }
            throw Refusal("'\(other)' is still on air on \(shared.joined(separator: ", ")); stop it first (onair stop \(other))")
        }
    }

    /// A journal write of jobs taken for firing lasts milliseconds; a command about the same item
    /// waits for it rather than acting on a half-made decision.
    private func waitUntilUnclaimed(_ item: String) async {
        for _ in 0..<1000 where jobs(of: item).contains(where: { isBeingWritten($0.id) }) {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    private func isBeingWritten(_ id: JobID) -> Bool {
        switch phases[id] {
        case .journaling?, .writingOutcome?: true
        default: false
        }
    }

    /// Takes back the item's armed calls before a command looks at it: one that left at its
    /// instant counts as sent from then on; the rest are pending again.
    /// No await here: the loop must not arm the item again before the command has decided. The
    /// withdrawn rows are written back by the loop's next turn (`flushWriteBacks`).
    private func withdrawArmed(of item: String) {
        withdrawArmed { $0.item == item }
        wake.signal()
    }

    /// A command the journal refused changed nothing, but the loop may have passed over the item's
    /// jobs while they looked settled in memory: the queue is rebuilt so none is lost.
    private func requeueAfterRefusal() {
        replan()
        wake.signal()
    }

    /// The item's jobs of `action` that are not final, as cancelled records.
    private func cancelled(_ item: String, _ action: Action, now: Date, why: String) -> [JobRecord] {
        jobs(of: item, action).compactMap { job in
            let old = records[job.id]
            guard !(old?.state.isFinal ?? false) else { return nil }
            return JobRecord(id: job.id, state: .cancelled, send: old?.send ?? 0, attempts: old?.attempts ?? 0, instant: job.instant,
                             deadline: job.deadline, updatedAt: now, detail: why)
        }
    }

    /// A manual start brings the item's stops back (SPEC 2.1): every stop that is final (skipped,
    /// delivered by an earlier stop, failed) is pending again at the item's end, as a new send
    /// when the old one was sent.
    private func restoredStops(_ item: String, now: Date, by: String) -> [JobRecord] {
        jobs(of: item, .stop).compactMap { job in
            guard let old = records[job.id], old.state.isFinal else { return nil }
            let wasSent = old.attempts > 0 || old.state == .delivered
            return JobRecord(id: job.id, state: .planned, send: wasSent ? old.send + 1 : old.send, instant: job.instant,
                             deadline: job.deadline, updatedAt: now, detail: "pending again after a start by hand by \(by)")
        }
    }

    /// `onair start|stop ITEM`: sends now, as a new send, and waits for every target's first
    /// answer (at most about its timeout) to say truthfully whether the platforms took it.
    public func sendNow(item id: String, action: Action, again: Bool, by: String) async throws(Refusal) -> ManualSendOutcome {
        let (stream, continuation) = AsyncStream.makeStream(of: FirstAnswer.self)
        let sent = try await send(item: id, action: action, again: again, by: by) { continuation.yield($0) }
        // Waits outside the command order: another operator need not wait for this platform.
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(sent.wait * 1e9))
            continuation.finish()
        }
        var answers: [String: AttemptRecord?] = [:]
        for await answer in stream where answers[answer.target] == nil {
            answers[answer.target] = .some(answer.attempt)
            if answers.count == sent.targets.count { break }
        }
        timer.cancel()
        return Self.outcome(of: action, id, targets: sent.targets, answers: answers, waited: sent.wait)
    }

    private struct Sent {
        var targets: [String]
        var wait: TimeInterval
    }

    private func send(item id: String, action: Action, again: Bool, by: String,
                      report: @escaping FirstAnswerReport) async throws(Refusal) -> Sent {
        await beginCommand()
        defer { endCommand() }
        let item = try onlineItem(id)
        let jobs = self.jobs(of: id, action).sorted { $0.target < $1.target }
        guard !jobs.isEmpty else { throw Refusal("no target of '\(id)' takes a \(action.rawValue) call") }
        await waitUntilUnclaimed(id)
        withdrawArmed(of: id)
        let now = time.now()
        var alsoWrite: [JobRecord] = []
        var superseded: [(id: JobID, send: Int, task: Task<Void, Never>?)] = []
        if action == .stop {
            // A stop always works (SPEC 2.1): sends of the item still under way, a stop being retried
            // among them, give way to it, and what had not started yet will not start.
            for job in self.jobs(of: id) where isDelivering(job.id) {
                superseded.append((job.id, records[job.id]?.send ?? 0, tasks[job.id]?.task))
            }
            alsoWrite += cancelled(id, .prepare, now: now, why: "item stopped by hand by \(by)")
            alsoWrite += cancelled(id, .start, now: now, why: "item stopped by hand by \(by)")
        } else {
            if hasStarted(id), !again { throw Refusal("'\(id)' was already started; use --again to send the start once more") }
            if item.end <= now {
                throw Refusal("'\(id)' ended at \(WallClock.labelledText(item.end, in: schedule.timeZone)); a start now would have no stop ahead")
            }
            if self.jobs(of: id).contains(where: { isDelivering($0.id) }) {
                throw Refusal("a call of '\(id)' is being delivered right now; see onair history \(id)")
            }
            try refuseOverlap("a start now", item, from: now, to: item.end)
            try refuseWhileAnotherIsLive(item)
            alsoWrite += cancelled(id, .prepare, now: now, why: "item started by hand by \(by)")
            alsoWrite += restoredStops(id, now: now, by: by)
        }
        guard await fire(jobs, now: now, manualBy: by, alsoWrite: alsoWrite, superseding: action == .stop, report: report) else {
            requeueAfterRefusal()
            throw Refusal("cannot journal the \(action.rawValue), so it was not sent and nothing changed; see the daemon's log", kind: .journal)
        }
        // Their calls on the wire finish (the lane keeps the new stop behind them); retries end.
        for old in superseded {
            old.task?.cancel()
            removeWaiting(old.id, send: old.send)
        }
        await note(JournalEvent(at: now, kind: action.rawValue, detail: "\(id) sent by hand by \(by)"))
        replan()
        wake.signal()
        let wait = jobs.compactMap { schedule.target(named: $0.target).map { Double($0.timeout) } }.max() ?? 10
        // At most 45 s, inside the CLI's 60 s: past it the answer is "no answer yet", never a
        // client that gives up and says the daemon is not running.
        return Sent(targets: jobs.map(\.target), wait: min(2 * wait + 2, Self.longestFirstAnswerWait))
    }

    /// "stop of 'x' delivered to site, radio", or each target that did not take it and why.
    static func outcome(of action: Action, _ id: String, targets: [String], answers: [String: AttemptRecord?],
                        waited: TimeInterval) -> ManualSendOutcome {
        var problems: [String] = []
        for target in targets {
            switch answers[target] {
            case nil:
                problems.append("\(target): no answer within \(Int(waited)) s; still trying (see onair history \(id))")
            case .some(nil):
                problems.append("\(target): not sent, the daemon is shutting down (it is sent after restart)")
            case .some(let attempt?) where attempt.outcome == "delivered":
                continue
            case .some(let attempt?):
                let result = attempt.status.map { "HTTP \($0)" } ?? attempt.error ?? "failed"
                let why = attempt.detail.map { $0 == result ? "" : " (\($0))" } ?? ""
                problems.append("\(target): \(result)\(why), " + (attempt.outcome == "retry" ? "a retry is scheduled" : "failed for good"))
            }
        }
        if problems.isEmpty {
            return ManualSendOutcome(message: "\(action.rawValue) of '\(id)' delivered to \(targets.joined(separator: ", "))", delivered: true)
        }
        return ManualSendOutcome(message: "\(action.rawValue) of '\(id)' not taken: " + problems.joined(separator: "; "), delivered: false)
    }

    /// `onair extend ITEM DURATION`: moves the item's stop later.
    public func extend(item id: String, by seconds: Int, who: String) async throws(Refusal) -> String {
        await beginCommand()
        defer { endCommand() }
        let item = try onlineItem(id)
        await waitUntilUnclaimed(id)
        withdrawArmed(of: id)
        if hasStopped(id) { throw Refusal("'\(id)' was already stopped, or its stop is being delivered; nothing to extend") }
        let end = item.end.addingTimeInterval(TimeInterval(seconds))
        try refuseOverlap("extend", item, from: min(item.start, live[id] ?? item.start), to: end)
        try await addOverride(id, shift: 0, extension: seconds, who: who)
        return "'\(id)' now ends at \(WallClock.labelledText(end, in: schedule.timeZone))"
    }

    /// `onair delay ITEM DURATION`: shifts prepare, start and stop later; refused once started.
    public func delay(item id: String, by seconds: Int, who: String) async throws(Refusal) -> String {
        await beginCommand()
        defer { endCommand() }
        let item = try onlineItem(id)
        await waitUntilUnclaimed(id)
        withdrawArmed(of: id)
        if hasStarted(id) { throw Refusal("'\(id)' has already started; use extend to move its end") }
        let shift = TimeInterval(seconds)
        try refuseOverlap("delay", item, from: item.start.addingTimeInterval(shift), to: item.end.addingTimeInterval(shift))
        try await addOverride(id, shift: seconds, extension: 0, who: who)
        return "'\(id)' now starts at \(WallClock.labelledText(item.start.addingTimeInterval(shift), in: schedule.timeZone))"
    }

    /// Adds to the item's stored override (delays and extensions add up) and puts it in force once
    /// it is on disk.
    private func addOverride(_ id: String, shift: Int, extension seconds: Int, who: String) async throws(Refusal) {
        var o = overrides[id] ?? ItemOverride(item: id, by: who, at: time.now())
        o.shift += shift
        o.extension_ += seconds
        o.by = who
        o.at = time.now()
        // While the override is written, the item's jobs must not fire at their old times (an
        // extend at the end instant would answer "now ends at …" after the stop went out): they
        // are claimed, so the loop passes them over, and re-queued by the replan below.
        let held = jobs(of: id).map(\.id).filter { !isDelivering($0) }
        for job in held { phases[job] = .journaling }
        var refusal: Refusal?
        do { try await journalOrRefuse("change") { [o] in try await journal.save(o) } } catch { refusal = error }
        for job in held where phases[job].map(Self.isJournaling) == true { phases[job] = nil }    // before the replan, which passes over them
        if let refusal {
            replan()              // the held jobs back in the queue at their unchanged times
            wake.signal()
            throw refusal
        }
        overrides[o.item] = o
        await note(JournalEvent(at: time.now(), kind: "override",
                                detail: "\(o.item): shift \(DurationText.format(o.shift)), extension \(DurationText.format(o.extension_)) by \(o.by)"))
        applyOverrides()
        replan()
        wake.signal()
    }

    /// `onair skip ITEM`: cancels the item's pending jobs; refused while it is on air or being sent.
    public func skip(item id: String, who: String) async throws(Refusal) -> String {
        await beginCommand()
        defer { endCommand() }
        _ = try onlineItem(id)
        await waitUntilUnclaimed(id)
        withdrawArmed(of: id)
        if hasStarted(id) && !hasStopped(id) { throw Refusal("'\(id)' is on air; use stop") }
        if jobs(of: id).contains(where: { isDelivering($0.id) }) {
            throw Refusal("a call of '\(id)' is being delivered right now; use stop")
        }
        let now = time.now()
        let batch = Action.allCases.flatMap { cancelled(id, $0, now: now, why: "skipped by \(who)") }
        guard await persist(batch) else {
            requeueAfterRefusal()
            throw Refusal("cannot journal the skip, so nothing changed; see the daemon's log", kind: .journal)
        }
        await note(JournalEvent(at: now, kind: "skip", detail: "\(id) by \(who): \(batch.count) jobs cancelled"))
        replan()
        wake.signal()
        return "'\(id)' skipped: \(batch.count) pending job\(batch.count == 1 ? "" : "s") cancelled"
    }
}
