import Foundation

/// The journal's records of jobs, held in memory by the scheduler and read by reports: a record
/// for a job id, every record, how many.
///
/// Grouped by item rather than keyed by the whole job id: a `[JobID: JobRecord]` stores each id
/// twice (key and record) and, sized for a 30,000-job week, takes 65,536 buckets of 184 bytes —
/// 12 MiB, the largest single thing at a storm's peak (SPEC 4: a past week's stops due at once).
/// Here a week is one small array per item (its few actions and targets) under a dictionary of
/// item ids (about 5 MiB full, by arithmetic; heaptrack saw 3.1 MiB at the storm's peak), and
/// finding a record is one hash of the item id and a scan of a handful.
public struct RecordTable: Sendable, Equatable {
    private var byItem: [String: [JobRecord]] = [:]
    /// How many records there are.
    public private(set) var count = 0
    /// Room given to an item's array when its first record arrives: the week's jobs per item, so
    /// an item's records are one allocation of the right size rather than three growing ones.
    private var roomPerItem = 1

    public init() {}

    /// A table of `records`; a later record of the same job replaces an earlier one.
    public init(_ records: some Sequence<JobRecord>) {
        for record in records { self[record.id] = record }
    }

    /// The record of `id`, or nil when nothing has happened to the job yet. Setting nil removes it.
    public subscript(id: JobID) -> JobRecord? {
        get {
            guard let list = byItem[id.item] else { return nil }
            return list.first { $0.id == id }
        }
        set {
            // A record is found by its own id: one stored under another could be neither read nor removed.
            assert(newValue.map { $0.id == id } ?? true, "a record stored under another job's id")
            let position = byItem[id.item]?.firstIndex { $0.id == id }
            switch (newValue, position) {
            case (let record?, let i?):
                byItem[id.item]![i] = record
            case (let record?, nil):
                if byItem[id.item] == nil {
                    var list: [JobRecord] = []
                    list.reserveCapacity(roomPerItem)
                    byItem[id.item] = list
                }
                byItem[id.item]!.append(record)
                count += 1
            case (nil, let i?):
                byItem[id.item]!.remove(at: i)
                if byItem[id.item]!.isEmpty { byItem[id.item] = nil }
                count -= 1
            case (nil, nil):
                break
            }
        }
    }

    /// Every record, in no particular order.
    public var values: FlattenSequence<Dictionary<String, [JobRecord]>.Values> { byItem.values.joined() }

    /// Makes room for `items` items with about `jobsPerItem` records each, so a restart that fires
    /// a whole past week does not grow the table (old and new storage at once) while it fills.
    public mutating func reserve(items: Int, jobsPerItem: Int) {
        roomPerItem = max(1, jobsPerItem)
        if byItem.capacity < items { byItem.reserveCapacity(items) }
    }

    public static func == (a: RecordTable, b: RecordTable) -> Bool {
        a.count == b.count && a.values.allSatisfy { b[$0.id] == $0 }
    }
}
