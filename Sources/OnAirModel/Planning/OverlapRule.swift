import Foundation

/// Two online items that share a target are never on air at once: the second one's start would
/// take over the first one's stream and the first one's stop would end both. `validate` refuses
/// such a file (SPEC 1); the same rule refuses an operator's `extend`, `delay` or manual `start`
/// that would make them overlap (SPEC 2.1). Pure, so it is tested without a scheduler.
public enum OverlapRule {
    public struct Conflict: Sendable, Hashable {
        public var other: Item
        public var target: String
    }

    /// The first item (in time order) other than `item` that shares an online target with it and
    /// whose `[start, end)` meets `[start, end)`. `isDone(other, target)` leaves out items that are
    /// already out of the way on a target (their stream ended, or never starts).
    public static func conflict(of item: Item, from start: Date, to end: Date, among items: [Item],
                                isDone: (Item, String) -> Bool) -> Conflict? {
        guard item.online, start < end else { return nil }
        let targets = Set(item.targets)
        let candidates = items.lazy.filter { $0.online && $0.id != item.id && $0.start < end && start < $0.end }
        for other in candidates.sorted(by: { ($0.start, $0.id) < ($1.start, $1.id) }) {
            for target in other.targets.sorted() where targets.contains(target) && !isDone(other, target) {
                return Conflict(other: other, target: target)
            }
        }
        return nil
    }

    /// The operator's one-line reason, naming the other item and its time as `validate` would.
    public static func refusal(_ verb: String, _ item: Item, _ conflict: Conflict, zone: TimeZone) -> String {
        let other = conflict.other
        return "\(verb) would make '\(item.id)' overlap '\(other.id)' on target '\(conflict.target)' "
            + "(\(WallClock.labelledText(other.start, in: zone)) – \(WallClock.labelledText(other.end, in: zone))); "
            + "delay or skip '\(other.id)' first"
    }
}
