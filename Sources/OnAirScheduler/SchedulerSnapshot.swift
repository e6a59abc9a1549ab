import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// The journal refused a write: nothing is sent until it takes writes again (SPEC 3.2), and
/// `status` is degraded meanwhile.
public struct JournalTrouble: Sendable, Hashable {
    public var since: Date
    public var error: String
}

/// What the scheduler is doing, for `status` and sd_notify's STATUS=.
public struct SchedulerSnapshot: Sendable {
    public struct OnAir: Sendable, Hashable {
        public var item: String
        public var title: String
        /// When its start was delivered (by schedule or by hand), not when it was planned.
        public var since: Date
        public var until: Date
    }

    public var schedule: Schedule
    public var held: Bool
    public var onAir: [OnAir]
    public var next: [PlannedJob]
    public var records: RecordTable
    public var inFlight: Int
    /// Jobs whose last attempt failed and that are being retried, with that attempt's reason.
    public var retrying: [JobID: String]
    /// Pending jobs whose instant has passed: they fell due while held (or wait for the journal).
    public var overdue: Int
    public var journalTrouble: JournalTrouble?
}

/// The first answer a platform gave to an operator's send, so `onair start|stop` can tell the truth.
public struct FirstAnswer: Sendable {
    public var target: String
    /// nil: no attempt was made (the daemon shut down first).
    public var attempt: AttemptRecord?
}

/// The outcome of an operator's `start`/`stop`: every target's first answer.
public struct ManualSendOutcome: Sendable {
    public var message: String
    /// True when every target took the call.
    public var delivered: Bool
}
