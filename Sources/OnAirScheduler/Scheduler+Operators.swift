import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
import Logging

/// The operator's commands (SPEC 2, 2.1, 3.2), as the shell around `CommandRule`: they run one
/// after the other, take the item's armed calls back, let the rule decide, and carry out its
/// decision — on disk before it counts, and never leaving a stream live with no stop ahead.
extension Scheduler {
    /// How long a manual start or stop waits for the platforms' first answers before it answers.
    static let longestFirstAnswerWait: TimeInterval = 45

    /// What the rule sees: the scheduler's own values, shared copy-on-write.
    func commandView() -> CommandView {
        CommandView(schedule: schedule, itemIndex: itemIndex, records: records, delivering: Set(phases.keys), live: live,
                    overrides: overrides, now: time.now())
    }

    /// Waits its turn, lets nothing of the item be half-written, takes the item's armed calls
    /// back, and asks the rule. No await between the withdrawal and the decision: the loop must
    /// not arm the item again before the command has decided. The withdrawn rows are written back
    /// by the loop's next turn (`flushWriteBacks`).
    private func decide(_ command: OperatorCommand, by: String) async -> CommandDecision {
        await waitUntilUnclaimed(command.item)
        withdrawArmed { $0.item == command.item }
        wake.signal()
        return CommandRule(view: commandView(), by: by).decide(command)
    }

    /// A journal write of jobs taken for firing lasts milliseconds; a command about the same item
    /// waits for it rather than acting on a half-made decision.
    private func waitUntilUnclaimed(_ item: String) async {
        guard self.item(item) != nil else { return }
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

    /// A command the journal refused changed nothing, but the loop may have passed over the item's
    /// jobs while they looked settled in memory: the queue is rebuilt so none is lost.
    private func requeueAfterRefusal() {
        replan()
        wake.signal()
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
        guard action != .prepare else { throw Refusal("a prepare is not sent by hand") }
        let command: OperatorCommand = action == .stop ? .stop(item: id) : .start(item: id, again: again)
        let jobs: [PlannedJob], alsoWrite: [JobRecord], superseding: [JobID]
        switch await decide(command, by: by) {
        case .send(let j, let a, let s): (jobs, alsoWrite, superseding) = (j, a, s)
        case .refused(let refusal): throw refusal
        case .override, .cancel: throw Refusal("'\(id)' cannot be sent")
        }
        let now = time.now()
        // Captured before the new send replaces their records: which send of each gives way.
        let superseded = superseding.map { (id: $0, send: records[$0]?.send ?? 0, handle: tasks[$0]?.handle) }
        guard await fire(jobs, now: now, manualBy: by, alsoWrite: alsoWrite, superseding: action == .stop, report: report) else {
            requeueAfterRefusal()
            throw Refusal("cannot journal the \(action.rawValue), so it was not sent and nothing changed; see the daemon's log", kind: .journal)
        }
        // Their calls on the wire finish (the lane keeps the new stop behind them); retries end.
        // A retry of theirs started while the stop was being journaled is cancelled too.
        for old in superseded {
            old.handle?.cancel()
            if let now = tasks[old.id], now.send == old.send { now.handle.cancel() }
            removeWaiting(old.id, send: old.send)
            dropRetry(old.id, send: old.send)
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
        try await changeOverride(.extend(item: id, seconds: seconds), who: who)
    }

    /// `onair delay ITEM DURATION`: shifts prepare, start and stop later; refused once started.
    public func delay(item id: String, by seconds: Int, who: String) async throws(Refusal) -> String {
        try await changeOverride(.delay(item: id, seconds: seconds), who: who)
    }

    private func changeOverride(_ command: OperatorCommand, who: String) async throws(Refusal) -> String {
        await beginCommand()
        defer { endCommand() }
        switch await decide(command, by: who) {
        case .override(let o, let answer):
            try await putInForce(o)
            return answer
        case .refused(let refusal): throw refusal
        case .send, .cancel: throw Refusal("'\(command.item)' cannot be changed")
        }
    }

    /// Journals the item's new override and puts it in force once it is on disk.
    private func putInForce(_ o: ItemOverride) async throws(Refusal) {
        // While the override is written, the item's jobs must not fire at their old times (an
        // extend at the end instant would answer "now ends at …" after the stop went out): they
        // are claimed, so the loop passes them over, and re-queued by the replan below.
        let held = jobs(of: o.item).map(\.id).filter { !isDelivering($0) }
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
        let batch: [JobRecord], answer: String
        switch await decide(.skip(item: id), by: who) {
        case .cancel(let records, let text): (batch, answer) = (records, text)
        case .refused(let refusal): throw refusal
        case .send, .override: throw Refusal("'\(id)' cannot be skipped")
        }
        guard await persist(batch) else {
            requeueAfterRefusal()
            throw Refusal("cannot journal the skip, so nothing changed; see the daemon's log", kind: .journal)
        }
        await note(JournalEvent(at: time.now(), kind: "skip", detail: "\(id) by \(who): \(batch.count) jobs cancelled"))
        replan()
        wake.signal()
        return answer
    }
}
