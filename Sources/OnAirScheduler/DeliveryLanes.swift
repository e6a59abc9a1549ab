import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// Keeps the calls for one item and target in order (prepare → start → stop) while letting
/// every other item and target proceed independently: one slow or dead platform never
/// delays another.
///
/// A class with a lock, not an actor: `enqueue` returns its task without a suspension, so the
/// scheduler records the task before the delivery can possibly finish.
public final class DeliveryLanes: @unchecked Sendable {
    public struct Key: Hashable, Sendable {
        public var item: String
        public var target: String
        public init(item: String, target: String) {
            self.item = item
            self.target = target
        }
    }

    private let lock = NSLock()
    private var tails: [Key: (id: Int, task: Task<Void, Never>)] = [:]
    private var counter = 0

    public init() {}

    /// Runs `operation` after everything queued earlier on the same lane has finished.
    @discardableResult
    public func enqueue(_ key: Key, _ operation: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        lock.withLock {
            let previous = tails[key]?.task
            counter += 1
            let id = counter
            let task = Task {
                await previous?.value
                await operation()
                self.finished(key, id: id)
            }
            tails[key] = (id, task)
            return task
        }
    }

    private func finished(_ key: Key, id: Int) {
        lock.withLock { if tails[key]?.id == id { tails[key] = nil } }
    }

    /// Number of lanes with work queued or running.
    public var busyLanes: Int { lock.withLock { tails.count } }
}
