import Foundation

/// Wall-clock time as the scheduler and the delivery engine see it. Injected so that tests can
/// run a week in milliseconds with a manual clock, and so the daemon follows the system clock
/// (schedules are wall-clock instants, not durations since boot).
public protocol TimeSource: Sendable {
    func now() -> Date
    /// Sleeps until the wall clock reads `instant`. May return early when the clock is set
    /// (the caller re-reads `now()`); throws when the task is cancelled.
    func sleep(until instant: Date) async throws
    /// Waits `seconds` of elapsed time, for waits that are durations and not instants (a retry's
    /// backoff). Throws when the task is cancelled.
    func sleep(for seconds: TimeInterval) async throws
    /// Seconds of elapsed time from an arbitrary origin: what a step of the wall clock does not
    /// move. Waits that are durations (a retry's backoff) are kept in it.
    func elapsed() -> TimeInterval
}

extension TimeSource {
    public func sleep(for seconds: TimeInterval) async throws {
        try await sleep(until: now().addingTimeInterval(seconds))
    }
}
