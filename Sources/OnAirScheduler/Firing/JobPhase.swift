import Foundation
import OnAirDelivery
import OnAirModel

/// Where a job is on its way to a platform, one value per job instead of parallel collections.
/// A job without a phase is pending in the queue, or final.
enum JobPhase {
    /// Its records are being written before its call is handed over; for everyone else it is
    /// already being delivered (not to be queued again, sent by hand or skipped twice).
    case journaling
    /// Journaled armed and cued in the transport for its instant. `previous` is its record before
    /// arming, which counts again if the cue is withdrawn in time.
    /// Indirect: its payload is the size of a record and an item, and every other phase is a
    /// few bytes; a dictionary of thousands of phases is sized by its largest case.
    indirect case armed(send: Int, cue: Cue, previous: JobRecord?, rendered: Rendering)
    /// Fired, and waiting for room: its target has as many deliveries under way as it may.
    case waitingForRoom(send: Int)
    /// Handed to delivery: on the wire or between retries (`retrying`: why the last attempt failed).
    case delivering(send: Int, retrying: String?)
    /// Answered; the outcome is being written (again, while the journal refuses it).
    case writingOutcome(send: Int)

    /// The send this phase is about, once one is decided.
    var send: Int? {
        switch self {
        case .journaling: nil
        case .armed(let send, _, _, _), .waitingForRoom(let send), .delivering(let send, _), .writingOutcome(let send): send
        }
    }

    var isArmed: Bool {
        if case .armed = self { return true }
        return false
    }
}

/// What an armed call was rendered from: a reload that changes either renders it again.
struct Rendering: Equatable {
    var item: Item
    var target: Target
}

/// Whether the scheduler fires jobs (SPEC 2): running, held by an operator, or stopping for good.
enum RunState: Equatable {
    case running
    /// No job fires until resume; what falls due meanwhile follows the firing rule at resume.
    case held
    /// Shutting down: nothing new fires; what is on the wire gets its grace period.
    case stopping

    /// What moves it: an operator's hold or resume, and shutdown.
    enum Event {
        case hold, resume, shutdown
    }

    /// Shutdown is for good; hold and resume only toggle a running daemon, and repeating one is
    /// harmless (a second hold stays held, a resume of a running daemon changes nothing).
    func after(_ event: Event) -> RunState {
        switch (self, event) {
        case (.stopping, _), (_, .shutdown): .stopping
        case (.running, .hold): .held
        case (.held, .resume): .running
        default: self
        }
    }
}
