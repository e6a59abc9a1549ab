/// The last few distinct texts seen, so that equal texts kept by many jobs share one storage.
///
/// A platform that is down answers every job the same ("Failed to connect to … Couldn't connect to
/// server"); each delivery keeps its last reason while it waits for its retry, and 10,000 copies
/// of one text were a megabyte of a storm's peak. A text equal to a recent one is handed back as
/// that one (Swift strings share storage when copied); a new text replaces the oldest.
struct SharedTexts {
    private var recent: [String] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int = 16) { self.capacity = max(1, capacity) }

    /// `text`, or an equal text kept earlier.
    mutating func shared(_ text: String) -> String {
        if let same = recent.first(where: { $0 == text }) { return same }
        if recent.count < capacity {
            recent.append(text)
        } else {
            recent[next] = text
            next = (next + 1) % capacity
        }
        return text
    }
}
