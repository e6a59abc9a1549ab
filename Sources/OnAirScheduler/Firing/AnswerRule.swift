import Foundation
import OnAirDelivery
import OnAirModel

/// The event "an answer came" of the firing machine: what an attempt's answer, once journaled,
/// does to its delivery and to the job's record. Pure: the facts of the answer in, a decision out;
/// the scheduler parks the retry, writes the record, frees the lane.
enum AnswerRule {
    /// What the delivery does next.
    enum Next: Equatable {
        /// Another attempt is wanted at `due`: parked as data until then.
        case retry(due: Date)
        /// The delivery is over, with this result.
        case end(DeliveryResult)
    }

    /// What the scheduler knows of an answer when it decides.
    struct Facts: Equatable {
        var end: Deliverer.AttemptEnd
        /// Attempts this delivery made, this one included.
        var made: Int
        /// Its cue was taken back before the instant (a hold, a skip, a reload, shutdown).
        var withdrawn: Bool
        /// Cancelled while on the wire (shutdown, an operator's stop superseding it).
        var cancelled: Bool
        var stopping: Bool
        /// The delivery is still the job's latest hand-over (not one an operator's send replaced).
        var latestLaunch: Bool
        /// Its send is still the job's and not settled, or a command is journaling a decision about
        /// the job right now: if that write fails, the send is still the job's, so the retry is
        /// parked all the same and let go later if it is no longer wanted.
        var wanted: Bool
    }

    /// A failed attempt is retried only while everything still wants it; otherwise its delivery ends:
    /// cancelled (in flight on disk: cut off, sent again after restart with the same webhook-id),
    /// withdrawn (nothing was sent), delivered or failed.
    static func next(after facts: Facts) -> Next {
        switch facts.end {
        case .retry where facts.withdrawn: .end(.withdrawn)
        case .retry(let due) where !facts.cancelled && !facts.stopping && facts.latestLaunch && facts.wanted: .retry(due: due)
        case .retry: .end(.cancelled(attempts: facts.made))
        case .delivered: .end(.delivered(attempts: facts.made))
        case .failed(let reason): .end(.failed(reason: reason, attempts: facts.made))
        case .notSent(let withdrawn): .end(withdrawn ? .withdrawn : .cancelled(attempts: facts.made - 1))
        }
    }

    /// What a delivery's end does to the job's record.
    enum Outcome: Equatable {
        /// Not this delivery's to say (withdrawn: whoever withdrew it put the job back; or the job
        /// has a newer send or no record).
        case none
        /// Nothing to write: delivered and on disk already with its attempt, settled by an operator
        /// meanwhile (a stop superseding it), or cut off (stays in flight on disk).
        case settled
        /// This record is to be written before the delivery's lane goes on.
        case write(JobRecord)
    }

    static func outcome(of result: DeliveryResult, send: Int, record: JobRecord?, now: Date) -> Outcome {
        if case .withdrawn = result { return .none }
        guard var record, record.send == send else { return .none }
        record.updatedAt = now
        switch result {
        case .delivered:
            if record.state == .delivered { return .settled }
            record.state = .delivered
            record.detail = nil
        case .failed(let reason, _):
            if record.state.isFinal { return .settled }
            record.state = .failed
            record.detail = reason
        case .cancelled, .withdrawn:
            return .settled
        }
        return .write(record)
    }
}
