import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal

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
