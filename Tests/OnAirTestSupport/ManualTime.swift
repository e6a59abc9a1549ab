import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
import OnAirScheduler

/// A clock that only moves when a test moves it. `advance(to:)` wakes sleepers whose instant has
/// come; `set(to:)` models a step of the system clock and wakes every sleeper, as the real
/// clock's TFD_TIMER_CANCEL_ON_SET does.
public final class ManualTime: TimeSource, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    private var sleepers: [UUID: (instant: Date, continuation: CheckedContinuation<Void, Never>)] = [:]

    public init(_ start: Date) {
        current = start
    }

    public func now() -> Date { lock.withLock { current } }

    /// Moved by `advance`, not by `set`: a step of the clock is not elapsed time.
    public func elapsed() -> TimeInterval { lock.withLock { elapsedSeconds } }
    private var elapsedSeconds: TimeInterval = 0

    public var sleeperCount: Int { lock.withLock { sleepers.count } }

    public func sleep(until instant: Date) async throws {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = lock.withLock { () -> Bool in
                    if current >= instant || Task.isCancelled { return true }
                    sleepers[id] = (instant, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            lock.withLock { sleepers.removeValue(forKey: id) }?.continuation.resume()
        }
        try Task.checkCancellation()
    }

    /// Moves the clock forward to `instant`, waking whoever sleeps until then.
    public func advance(to instant: Date) {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            elapsedSeconds += max(0, instant.timeIntervalSince(current))
            current = max(current, instant)
            let due = sleepers.filter { $0.value.instant <= current }
            for key in due.keys { sleepers.removeValue(forKey: key) }
            return due.map(\.value.continuation)
        }
        woken.forEach { $0.resume() }
    }

    public func advance(by seconds: TimeInterval) { advance(to: now().addingTimeInterval(seconds)) }

    /// Steps the clock to any time, backwards too, waking every sleeper to re-read it.
    public func set(to instant: Date) {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            current = instant
            defer { sleepers.removeAll() }
            return sleepers.values.map(\.continuation)
        }
        woken.forEach { $0.resume() }
    }
}
