import Foundation
import Synchronization
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// Keeps the calls for one item and target in order (prepare → start → stop) while letting
/// every other item and target proceed independently: one slow or dead platform never
/// delays another.
///
/// A lane is a line of turns. A delivery holds its turn from its first attempt until it ends,
/// the waits between retries included, and the next one on the lane starts when it is let go.
/// A turn is a latch, not a task: a delivery waiting an hour of backoff to a dead platform holds a
/// few bytes here, not a suspended task's frames.
///
/// A class with a mutex, not an actor: `enqueue` returns its task without a suspension, so the
/// scheduler records the task before the delivery can possibly finish.
public final class DeliveryLanes: Sendable {
    public struct Key: Hashable, Sendable {
        public var item: String
        public var target: String
        public init(item: String, target: String) {
            self.item = item
            self.target = target
        }
    }

    /// One delivery's place on its lane; `release()` (idempotent) lets the next one go.
    public final class Turn: Sendable {
        private let done = Latch()
        private let onRelease: @Sendable () -> Void

        init(onRelease: @escaping @Sendable () -> Void) { self.onRelease = onRelease }

        public func release() {
            done.release()
            onRelease()
        }

        func wait() async { await done.wait() }
    }

    private let state = Mutex((tails: [Key: (id: Int, turn: Turn)](), counter: 0))

    public init() {}

    /// Runs `operation` once everything queued earlier on the same lane has finished; its turn
    /// ends when it returns.
    @discardableResult
    public func enqueue(_ key: Key, _ operation: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        enqueueHolding(key) { turn in
            await operation()
            turn.release()
        }
    }

    /// Runs `operation` once everything queued earlier on the same lane has let its turn go. The
    /// turn is the operation's to release, now or from a later task (a delivery's retry): until
    /// then the lane waits.
    @discardableResult
    public func enqueueHolding(_ key: Key, _ operation: @escaping @Sendable (Turn) async -> Void) -> Task<Void, Never> {
        state.withLock { s in
            s.counter += 1
            let id = s.counter
            let previous = s.tails[key]?.turn
            let turn = Turn { [weak self] in self?.finished(key, id: id) }
            s.tails[key] = (id, turn)
            return Task {
                await previous?.wait()
                await operation(turn)
            }
        }
    }

    private func finished(_ key: Key, id: Int) {
        state.withLock { s in if s.tails[key]?.id == id { s.tails[key] = nil } }
    }

    /// Number of lanes with work queued or running.
    public var busyLanes: Int { state.withLock { $0.tails.count } }
}
