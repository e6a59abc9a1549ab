import Foundation

/// Lets callers through while open; while closed they wait (deaf to cancellation) until it opens.
public final class Gate: @unchecked Sendable {
    private let lock = NSLock()
    private var closed = false
    private var held: [CheckedContinuation<Void, Never>] = []

    public func close() { lock.withLock { closed = true } }

    public var waiting: Int { lock.withLock { held.count } }

    public func open() {
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            closed = false
            defer { held = [] }
            return held
        }
        waiters.forEach { $0.resume() }
    }

    /// Lets the calls waiting now go through and stays closed for the ones that come after.
    public func letThrough() {
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            defer { held = [] }
            return held
        }
        waiters.forEach { $0.resume() }
    }

    public func pass() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if closed { held.append(continuation) }
                return !closed
            }
            if now { continuation.resume() }
        }
    }
}
