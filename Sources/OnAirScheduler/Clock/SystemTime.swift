import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal
#if canImport(Glibc)
import Glibc
import COnAirSystem
#endif

/// The system's real-time clock. On Linux a sleep is a CLOCK_REALTIME timerfd with an absolute
/// expiry and TFD_TIMER_CANCEL_ON_SET: it fires at the wall-clock instant itself, and wakes at
/// once when the clock is stepped (NTP, an operator), so no job fires early, late or twice.
public struct SystemTime: TimeSource {
    public init() {}

    public func now() -> Date { Date() }

    /// CLOCK_MONOTONIC, through Foundation.
    public func elapsed() -> TimeInterval { ProcessInfo.processInfo.systemUptime }

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
///
/// `@unchecked Sendable` on its lock: it holds a `DispatchSourceRead`, which corelibs-libdispatch
/// does not mark Sendable, so a `Mutex` around it is refused (tried; "task-isolated 's'").
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
