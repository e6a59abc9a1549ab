import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
import Logging

/// Reload, hold and resume, shutdown, and what `status` reads. Every change here is journaled
/// before it counts (SPEC 2): when the journal refuses it, the command fails and nothing changes.
extension Scheduler {
    /// Why an operator's command was not carried out.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable {
            /// No such item (the control API answers 404).
            case unknown
            /// Refused by a rule (409).
            case refused
            /// The journal could not take the change, so nothing changed (503).
            case journal
        }

        public var description: String
        public var kind: Kind

        public init(_ description: String, kind: Kind = .refused) {
            self.description = description
            self.kind = kind
        }
    }

    /// Writes one change to the journal or refuses the command that wanted it.
    func journalOrRefuse(_ what: String, _ write: () async throws -> Void) async throws(Refusal) {
        do {
            try await journaled(write)
        } catch {
            logger.error("journal write failed; command refused", metadata: ["command": "\(what)", "error": "\(error)"])
            throw Refusal("cannot journal the \(what), so nothing changed: \(error)", kind: .journal)
        }
    }

    /// Journals an event that accompanies a change already on disk; its loss is logged, not fatal.
    func note(_ event: JournalEvent) async {
        do {
            try await journaled { try await journal.append(event) }
        } catch {
            logger.error("journal write failed", metadata: ["event": "\(event.kind)", "error": "\(error)"])
        }
    }

    /// Puts a new, already validated schedule in force: delivered jobs stay delivered, pending
    /// jobs take the new times, jobs of removed items are dropped. A file that would leave a stream
    /// on air with no stop ahead (SPEC 2.1) — the item removed, made on-site, or its target taken
    /// away while it is live — is refused whole, like a file that fails validation.
    public func reload(_ newSchedule: Schedule, file: String = "schedule") async throws(ScheduleError) {
        await beginCommand()
        defer { endCommand() }
        settleReleasedCues()    // what left at its instant counts as live below; what changes is re-armed by the replan
        let stranded = strandedStreams(in: newSchedule, file: file)
        guard stranded.isEmpty else { throw ScheduleError(diagnostics: stranded) }
        let before = plannedCount
        fileSchedule = newSchedule
        // The new plan is in force before the first await, so the old one cannot fire in between.
        let dropped = overrides.keys.filter { newSchedule.item(id: $0) == nil }.sorted()
        for item in dropped { overrides[item] = nil }
        applyOverrides()
        replan()
        await flushWriteBacks()
        for item in dropped {
            do {
                try await journaled { try await journal.removeOverride(item: item) }
            } catch {
                // Harmless on disk until the item comes back in a later file; logged so it is known.
                logger.error("journal write failed", metadata: ["override": "\(item)", "error": "\(error)"])
            }
        }
        await note(JournalEvent(at: time.now(), kind: "reload",
                                detail: "schedule \(newSchedule.id): \(plannedCount) jobs (was \(before)), \(machine.queue.count) pending"))
        try? await journaled { try await journal.save(settings: Self.settings(of: newSchedule)) }
        logger.info("schedule reloaded", metadata: ["jobs": "\(plannedCount)", "pending": "\(machine.queue.count)"])
        wake.signal()
    }

    func strandedStreams(in newSchedule: Schedule, file: String) -> [Diagnostic] {
        ReloadRule.stranded(records: records, in: newSchedule, file: file)
    }

    /// Records a refused reload; the running schedule stays in force.
    public func reloadRefused(_ error: ScheduleError) async {
        await note(JournalEvent(at: time.now(), kind: "reload", detail: error.description, ok: false))
        logger.error("reload refused, running schedule stays in force", metadata: ["errors": "\(error.diagnostics.count)",
                                                                                    "first": "\(error.diagnostics.first?.description ?? "")"])
    }

    public func hold(by: String) async throws(Refusal) {
        await beginCommand()
        defer { endCommand() }
        try await journalOrRefuse("hold") { try await journal.append(JournalEvent(at: time.now(), kind: "hold", detail: "by \(by)")) }
        for action in machine.handle(.control(.hold)) { await carryOut(action) }
        logger.notice("hold: no job fires until resume", metadata: ["by": "\(by)"])
        wake.signal()
    }

    /// Goes on; jobs that became due while held follow the firing rule (as after downtime).
    public func resume(by: String) async throws(Refusal) {
        await beginCommand()
        defer { endCommand() }
        try await journalOrRefuse("resume") { try await journal.append(JournalEvent(at: time.now(), kind: "resume", detail: "by \(by)")) }
        for action in machine.handle(.control(.resume)) { await carryOut(action) }
        logger.notice("resume", metadata: ["by": "\(by)"])
        wake.signal()
    }

    public var isHeld: Bool { held }

    /// Stops firing new jobs. Deliveries waiting to retry stop at once; a call on the wire gets up to
    /// `grace` seconds to finish and be journaled. What is left stays in flight in the journal (cut
    /// off) and is sent again, with the same webhook-id, after restart.
    public func shutdown(grace: TimeInterval) async {
        let actions = machine.handle(.control(.shutdown))
        wake.signal()
        // Armed calls that have not left never will: armed on disk, they are pending after restart
        // (or cut off, once their instant has passed). Deliveries still waiting for room are left in
        // flight in the journal: cut off, sent after restart.
        for action in actions { await carryOut(action) }
        // The grace is elapsed time, not wall-clock time: a clock step must not cut it short or stretch it.
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: .milliseconds(Int(grace * 1000)))
        while !tasks.isEmpty && clock.now < end {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let cutOff = records.values.filter { $0.state == .inflight }.count
        await note(JournalEvent(at: time.now(), kind: "stop", detail: "\(cutOff) deliveries cut off"))
        logger.info("scheduler stopped", metadata: ["cut_off": "\(cutOff)"])
    }

    public var currentOverrides: [String: ItemOverride] { overrides }

    public func snapshot(nextCount: Int = 10) -> SchedulerSnapshot {
        let onAir = live.sorted { $0.key < $1.key }.compactMap { id, since in
            item(id).map { SchedulerSnapshot.OnAir(item: $0.id, title: $0.title, since: since, until: $0.end) }
        }
        let now = time.now()
        let overdue = machine.queue.unordered.count { $0.job.instant <= now }
        var inFlight = 0
        var retrying: [JobID: String] = [:]
        for (id, phase) in phases {
            switch phase {
            case .armed(_, let cue, _, _): if cue.current == .released { inFlight += 1 }
            case .delivering(_, let why?): inFlight += 1; retrying[id] = why
            case .delivering, .waitingForRoom: inFlight += 1
            case .journaling, .writingOutcome: break
            }
        }
        return SchedulerSnapshot(schedule: schedule, held: held, onAir: onAir, next: nextJobs(nextCount), records: records,
                                 inFlight: inFlight, retrying: retrying, overdue: overdue, journalTrouble: journalTrouble)
    }

    /// For tests: waits until no delivery is in flight.
    public func idle() async {
        // A delivery ends once its answer and its outcome are journaled (the inbox is busy until then).
        while tasks.contains(where: { !isWaitingForItsInstant($0.key) }) || !inbox.isIdle {
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
    }

}
