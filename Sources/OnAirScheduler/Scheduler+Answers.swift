import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// An attempt that has its answer (or was not sent) and waits for its journal write; after the
/// write the delivery goes on: a retry is parked, an outcome written, the lane let go.
///
/// Data, not a suspended task: nothing waits while a call is on the wire, and the answer is put
/// into the scheduler's inbox where it arrives. A past week's stops failing at once against a
/// dead platform are thousands of these (a few hundred bytes each) between two journal writes,
/// not thousands of tasks holding kilobytes of frames each.
struct Answer: Sendable {
    var firing: Firing
    var launch: Int
    var number: Int
    var failures: Int
    /// The answer as it arrived; the drainer concludes it (off libcurl's thread) where that was not done already.
    var reply: Deliverer.Reply
    /// The conclusion (the drainer's, before anything reads it).
    var attempted: Deliverer.Attempted { reply.concluded ?? Deliverer.Attempted(end: .notSent(withdrawn: false)) }
    /// The delivery was cancelled (shutdown, an operator's stop superseding it) when its answer came.
    var cancelled: Bool
    var turn: DeliveryLanes.Turn
    /// The first attempt's only: opened, and told, once the answer is on disk.
    var answered: Latch?
    var report: Scheduler.FirstAnswerReport?
}

/// A delivery's end whose job record is being written: its lane waits for the write.
struct OutcomeWrite {
    var record: JobRecord
    var turn: DeliveryLanes.Turn
}

/// Answers are journaled in batches: every answer that came while the last write was on its way
/// goes in the next one, one transaction (and one sync) for all of them.
extension Scheduler {
    /// Takes an attempt's answer where it arrives; the scheduler journals it with the others.
    nonisolated func take(_ answer: Answer) {
        if inbox.put(answer) { Task { await self.journalAnswers() } }
    }

    /// Writes the answers that are waiting, then carries each delivery on, until none is waiting.
    private func journalAnswers() async {
        while var batch = inbox.takeAll() {
            for i in batch.indices where batch[i].reply.concluded == nil { batch[i].reply = .ended(deliverer.conclude(batch[i].reply)) }
            var writes: [AttemptWrite] = []
            var jobs: [JobRecord?] = []
            writes.reserveCapacity(batch.count)
            jobs.reserveCapacity(batch.count)
            for answer in batch {
                let write = answer.attempted.record.flatMap { attemptWrite($0, for: answer.firing.job.id, launch: answer.launch) }
                if let write { writes.append(write) }
                jobs.append(write?.job)
            }
            let written = await journalAttempts(writes)
            var outcomes: [OutcomeWrite] = []
            for (answer, job) in zip(batch, jobs) {
                if written, let job { attemptJournaled(job) }
                answer.answered?.release()
                answer.report?(FirstAnswer(target: answer.firing.target.name, attempt: answer.attempted.record))
                if let outcome = attemptEnded(answer) { outcomes.append(outcome) }
            }
            await writeOutcomes(outcomes)
        }
    }

    private func journalAttempts(_ writes: [AttemptWrite]) async -> Bool {
        guard !writes.isEmpty else { return true }
        do {
            try await journaled { try await journal.save(attempts: writes) }
            return true
        } catch {
            logger.critical("journal write failed", metadata: ["attempts": "\(writes.count)", "first_job": "\(writes[0].attempt.job)",
                                                               "error": "\(error)"])
            return false
        }
    }

    /// Deliveries that ended with a job record to write (delivered without its attempt's write,
    /// failed): all in one transaction, then their lanes go on. What the journal refuses is
    /// written again, each on its own, until it is taken (`persistOutcome`), without holding up
    /// the answers that come meanwhile.
    private func writeOutcomes(_ outcomes: [OutcomeWrite]) async {
        guard !outcomes.isEmpty else { return }
        if await persist(outcomes.map(\.record)) {
            outcomes.forEach(outcomeWritten)
            return
        }
        Task {
            for outcome in outcomes {
                // Written one after another, so a later one may wait minutes on a full disk: an
                // operator's new send of the job since then is not overwritten with this old end.
                if self.isOpen(outcome.record.id, send: outcome.record.send) { await self.persistOutcome(outcome.record) }
                self.outcomeWritten(outcome)
            }
        }
    }

    private func outcomeWritten(_ outcome: OutcomeWrite) {
        let id = outcome.record.id
        if case .writingOutcome(outcome.record.send)? = phases[id] { phases[id] = nil }
        outcome.turn.release()
    }
}
