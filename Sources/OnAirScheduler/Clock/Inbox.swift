import Synchronization

/// Values handed over from any thread, taken in batches by one drainer: a lock and an array.
///
/// The scheduler's answers arrive on libcurl's thread, by the hundred while a journal write is on
/// its way; a task each, waiting to enter the actor, was a task's frames per answer and a burst's
/// thousand tasks competing with its calls still leaving. Here the first value put into an idle
/// inbox tells its caller to start the drainer; the drainer takes everything waiting until
/// nothing is, and the inbox is idle again.
final class Inbox<Element: Sendable>: Sendable {
    private let state = Mutex<(waiting: [Element], draining: Bool)>(([], false))

    /// Adds a value. True when nobody is draining: the caller starts the drainer.
    func put(_ value: Element) -> Bool {
        state.withLock { s in
            s.waiting.append(value)
            if s.draining { return false }
            s.draining = true
            return true
        }
    }

    /// For the drainer: every value waiting, in the order put, or nil when none is; nil ends the
    /// draining, so the next `put` starts a drainer again.
    func takeAll() -> [Element]? {
        state.withLock { s in
            guard !s.waiting.isEmpty else {
                s.draining = false
                return nil
            }
            defer { s.waiting = [] }
            return s.waiting
        }
    }

    /// Nothing waiting and no drainer at work.
    var isIdle: Bool { state.withLock { !$0.draining && $0.waiting.isEmpty } }
}
