import Foundation
import Synchronization

/// Opens once and stays open: everyone waiting, and everyone who comes later, goes on. Used to
/// hold another item's start until a stop to the same platform has had its answer.
public final class Latch: Sendable {
    private let state = Mutex((open: false, waiters: [CheckedContinuation<Void, Never>]()))

    public init() {}

    public func release() {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        waiting.forEach { $0.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if !s.open { s.waiters.append(continuation) }
                return s.open
            }
            if now { continuation.resume() }
        }
    }
}
