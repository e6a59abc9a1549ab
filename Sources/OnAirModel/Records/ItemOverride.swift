import Foundation

/// An operator's change to an item, stored against the item's id and applied to whichever
/// schedule file is in force (SPEC 3.2).
public struct ItemOverride: Sendable, Hashable, Codable {
    public var item: String
    /// Seconds the whole item moves later (`delay`).
    public var shift: Int
    /// Seconds added to the item's end (`extend`).
    public var extension_: Int
    public var by: String
    public var at: Date

    public init(item: String, shift: Int = 0, extension_: Int = 0, by: String, at: Date) {
        self.item = item
        self.shift = shift
        self.extension_ = extension_
        self.by = by
        self.at = at
    }
}
