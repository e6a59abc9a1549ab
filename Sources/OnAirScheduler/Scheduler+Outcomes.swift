import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
import Logging

/// What comes back from delivery, and every journal write: each change counts only once it is on disk.
extension Scheduler {
    /// What an attempt's answer writes (its record, and the job's record with it) and what it
    /// changes in memory before the write; nil when it has no say (a withdrawn delivery whose job
    /// was armed again since, with the same send) or its job is gone.
    func attemptWrite(_ attempt: AttemptRecord, for id: JobID, launch: Int) -> AttemptWrite? {
        guard tasks[id]?.launch == launch || records[id]?.send != attempt.send else { return nil }
        log(attempt, of: id)
        guard var record = records[id] else { return nil }
        // A send that an operator's stop superseded: its attempt is history, the job is the new send's.
        let current = record.send == attempt.send
        // An attempt that failed before the transport let its cue go (a secret unreadable ahead)
        // leaves the job armed: it can still be withdrawn, and its retry still waits for the instant.
        let stillCued = isWaitingForItsInstant(id)
        if current {
            record.attempts = attempt.attempt
            if record.state == .armed && !stillCued { record.state = .inflight }    // it left at its instant
            record.updatedAt = time.now()
            records[id] = record
            if phases[id]?.send == attempt.send && !stillCued {
                phases[id] = .delivering(send: attempt.send,
                                         retrying: attempt.outcome == "retry" ? reasons.shared(attempt.detail ?? attempt.error ?? "failed") : nil)
            }
        }
        // A delivered attempt and the job's "delivered" go in one transaction: half the journal work
        // per call in a burst, and no moment on disk where the answer is there and the job is not done.
        if current && attempt.outcome == "delivered" && !record.state.isFinal {
            record.state = .delivered
            record.detail = nil
        }
        return AttemptWrite(attempt, job: current ? record : nil)
    }

    /// A job's record written with its attempt counts once the write is on disk: a delivered job
    /// is done from now on, unless a newer send or an operator's record took its place meanwhile.
    func attemptJournaled(_ written: JobRecord) {
        let id = written.id
        guard written.state == .delivered, records[id]?.send == written.send, records[id]?.state.isFinal == false else { return }
        records[id] = written
        updateLive(written)
    }

    private func log(_ attempt: AttemptRecord, of id: JobID) {
        var meta: Logger.Metadata = ["job": "\(id)", "webhook_id": "\(attempt.webhookID)", "attempt": "\(attempt.attempt)",
                                     "outcome": "\(attempt.outcome)"]
        if let status = attempt.status { meta["status"] = "\(status)" }
        if let error = attempt.error { meta["error"] = "\(error)" }
        if let detail = attempt.detail, detail != attempt.error { meta["detail"] = "\(detail)" }
        if attempt.outcome == "delivered" {
            logger.info("delivered", metadata: meta)
        } else {
            logger.warning(attempt.outcome == "retry" ? "attempt failed, will retry" : "delivery failed", metadata: meta)
        }
    }

    /// A delivery's end in memory. Returns the job's record when the end must still be written
    /// (the job is then `.writingOutcome` until it is, see `writeOutcomes`).
    func finished(_ id: JobID, launch: Int, send: Int, _ result: DeliveryResult) -> JobRecord? {
        if tasks[id]?.launch == launch { tasks[id] = nil }
        underWay.takeOne(from: id.target)
        launchWaiting(for: id.target)
        let ours = phases[id]?.send == send
        switch AnswerRule.outcome(of: result, send: send, record: records[id], now: time.now()) {
        case .none:
            return nil
        case .settled:
            if ours { phases[id] = nil }
            return nil
        case .write(let record):
            if ours { phases[id] = .writingOutcome(send: send) }
            return record
        }
    }

    /// An outcome the journal refused (a full disk) is written again until it is taken: dropping
    /// it would leave the job in flight on disk and out of the queue, and a replan would send a
    /// call that was answered. Meanwhile the job stays `.writingOutcome`, so nothing re-queues it; at
    /// shutdown it is left in flight (cut off), as SPEC 4 recovers it. Tried once a second, as a
    /// job that could not be fired is (`requeueLater`).
    func persistOutcome(_ record: JobRecord) async {
        while !(await persist(record)) && !stopping {
            try? await time.sleep(for: 1)
            guard isOpen(record.id, send: record.send) else { return }
        }
    }

    /// Several records in one transaction; each counts only once the whole write is on disk.
    @discardableResult
    func persist(_ batch: [JobRecord]) async -> Bool {
        guard !batch.isEmpty else { return true }
        let before = batch.map { records[$0.id] }
        for record in batch {
            records[record.id] = record
            updateLive(record)
        }
        do {
            try await journaled { try await journal.save(batch) }
            return true
        } catch {
            // Not on disk, so it does not count: memory goes back to what the journal says.
            for (record, old) in zip(batch, before) where records[record.id] == record { records[record.id] = old }
            rebuildLive()
            logger.critical("journal write failed", metadata: ["job": "\(batch[0].id)", "jobs": "\(batch.count)", "error": "\(error)"])
            return false
        }
    }

    @discardableResult
    func persist(_ record: JobRecord) async -> Bool {
        await persist([record])
    }

    /// Every journal write goes through here, so that a disk that refuses writes is known
    /// (status is degraded, SPEC 3.2) from the first failure until the first success after it.
    func journaled(_ write: () async throws -> Void) async throws {
        do {
            try await write()
            if let trouble = journalTrouble {
                logger.notice("the journal takes writes again", metadata: ["since": "\(WallClock.utcText(trouble.since))"])
                journalTrouble = nil
            }
        } catch {
            if journalTrouble == nil { journalTrouble = JournalTrouble(since: time.now(), error: "\(error)") }
            throw error
        }
    }

    func requeueLater(_ job: PlannedJob) {
        let time = self.time
        Task {
            try? await time.sleep(for: 1)
            self.requeue(job)
        }
    }

    private func requeue(_ job: PlannedJob) {
        guard isPlanned(job) else { return }
        requeueIfPlanned(job.id)
    }

    /// Puts a job back in the queue at its planned instant, unless it is final, on its way, or queued.
    func requeueIfPlanned(_ id: JobID) {
        guard let job = jobs(of: id.item).first(where: { $0.id == id }), !(records[id]?.state.isFinal ?? false),
              !isDelivering(id), !machine.queue.unordered.contains(where: { $0.job.id == id }) else { return }
        machine.queue.insert(QueuedJob(job: job))
        wake.signal()
    }
}
