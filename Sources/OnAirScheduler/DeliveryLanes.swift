import Foundation
import Synchronization
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// Keeps the calls for one item and target in order (prepare → start → stop) while letting
/// every other item and target proceed independently: one slow or dead platform never
/// delays another.
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

    private let state = Mutex((tails: [Key: (id: Int, task: Task<Void, Never>)](), counter: 0))

    public init() {}

    /// Runs `operation` after everything queued earlier on the same lane has finished.
    @discardableResult
    public func enqueue(_ key: Key, _ operation: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        state.withLock { s in
            let previous = s.tails[key]?.task
            s.counter += 1
            let id = s.counter
            let task = Task {
                await previous?.value
                await operation()
                self.finished(key, id: id)
            }
            s.tails[key] = (id, task)
            return task
        }
    }

    private func finished(_ key: Key, id: Int) {
        state.withLock { s in if s.tails[key]?.id == id { s.tails[key] = nil } }
    }

    /// Number of lanes with work queued or running.
    public var busyLanes: Int { state.withLock { $0.tails.count } }
}
