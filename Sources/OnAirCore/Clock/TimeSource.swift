import Foundation

/// Wall-clock time as the scheduler and the delivery engine see it. Injected so that tests can
/// run a week in milliseconds with a manual clock, and so the daemon follows the system clock
/// (schedules are wall-clock instants, not durations since boot).
public protocol TimeSource: Sendable {
    func now() -> Date
    /// Sleeps until the wall clock reads `instant` (or returns at once when it already does).
    func sleep(until instant: Date) async throws
}

/// The system's real-time clock.
public struct SystemTime: TimeSource {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until instant: Date) async throws {
        // Sleep in slices so that a step of the system clock is noticed within a second; the
        // daemon's scheduler additionally listens for clock changes.
        while true {
            let remaining = instant.timeIntervalSinceNow
            if remaining <= 0 { return }
            try await Task.sleep(nanoseconds: UInt64(min(remaining, 1.0) * 1_000_000_000))
        }
    }
}
