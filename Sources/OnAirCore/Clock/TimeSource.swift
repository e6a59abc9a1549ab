import Foundation
#if canImport(Glibc)
import Glibc
import COnAirSystem
#endif

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
}

extension TimeSource {
    public func sleep(for seconds: TimeInterval) async throws {
        try await sleep(until: now().addingTimeInterval(seconds))
    }
}

/// The system's real-time clock. On Linux a sleep is a CLOCK_REALTIME timerfd with an absolute
/// expiry and TFD_TIMER_CANCEL_ON_SET: it fires at the wall-clock instant itself, and wakes at
/// once when the clock is stepped (NTP, an operator), so no job fires early, late or twice.
public struct SystemTime: TimeSource {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until instant: Date) async throws {
        try Task.checkCancellation()
        if instant.timeIntervalSinceNow <= 0 { return }
        #if os(Linux)
        let alarm = try RealtimeAlarm(at: instant)
        try await alarm.wait()
        #else
        try await Task.sleep(nanoseconds: UInt64(max(0, instant.timeIntervalSinceNow) * 1_000_000_000))
        #endif
    }

    /// A monotonic sleep that holds no descriptor: a thousand deliveries waiting to retry must
    /// not need a thousand timerfds (a service's default limit is 1,024 open files).
    public func sleep(for seconds: TimeInterval) async throws {
        try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
    }
}

#if os(Linux)
/// One absolute CLOCK_REALTIME timer, awaited through a dispatch read source.
final class RealtimeAlarm: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var source: DispatchSourceRead?
    private var continuation: CheckedContinuation<Void, Never>?
    private var done = false
    private static let queue = DispatchQueue(label: "onair.alarm")

    struct AlarmError: Error, CustomStringConvertible { var description: String }

    init(at instant: Date) throws {
        let t = instant.timeIntervalSince1970
        fd = onair_realtime_alarm(Int(t.rounded(.down)), Int((t - t.rounded(.down)) * 1_000_000_000))
        guard fd >= 0 else { throw AlarmError(description: "timerfd: \(String(cString: strerror(errno)))") }
    }

    func wait() async throws {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: Self.queue)
                let cancelledAlready = lock.withLock { () -> Bool in
                    self.continuation = continuation
                    self.source = source
                    return done
                }
                source.setEventHandler { [weak self] in self?.finish() }
                source.setCancelHandler { [fd] in close(fd) }
                source.resume()
                if cancelledAlready { finish() }
            }
        } onCancel: {
            finish()
        }
        try Task.checkCancellation()
    }

    /// Fired, clock set, or cancelled: resume once and release the descriptor.
    private func finish() {
        let (continuation, source) = lock.withLock { () -> (CheckedContinuation<Void, Never>?, DispatchSourceRead?) in
            done = true
            defer { self.continuation = nil; self.source = nil }
            return (self.continuation, self.source)
        }
        source?.cancel()
        continuation?.resume()
    }

    deinit {
        lock.withLock {
            if source == nil && !done { close(fd) }
        }
    }
}
#endif

/// A wake-up call that can be given before anyone waits for it (it is then kept until taken).
public final class WakeSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var waiter: CheckedContinuation<Void, Never>?

    public init() {}

    public func signal() {
        let waiter = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            if let w = self.waiter {
                self.waiter = nil
                return w
            }
            pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next signal (or at once if one is pending), or when the task is cancelled.
    public func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = lock.withLock { () -> Bool in
                    if pending || Task.isCancelled {
                        pending = false
                        return true
                    }
                    waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            lock.withLock { () -> CheckedContinuation<Void, Never>? in
                defer { waiter = nil }
                return waiter
            }?.resume()
        }
    }
}

/// Opens once and stays open: everyone waiting, and everyone who comes later, goes on. Used to
/// hold another item's start until a stop to the same platform has had its answer.
public final class Latch: @unchecked Sendable {
    private let lock = NSLock()
    private var open = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func release() {
        let waiting = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            open = true
            defer { waiters = [] }
            return waiters
        }
        waiting.forEach { $0.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if !open { waiters.append(continuation) }
                return open
            }
            if now { continuation.resume() }
        }
    }
}
