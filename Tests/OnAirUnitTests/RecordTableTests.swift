import Foundation
import Testing
@testable import OnAirModel

/// The scheduler's records in memory, grouped by item: it must answer exactly as a dictionary
/// keyed by job id would.
@Suite("Record table")
struct RecordTableTests {
    let at = utc("2021-11-08T10:00:00Z")

    func record(_ item: String, _ action: Action, _ target: String = "site", _ state: JobState = .delivered, send: Int = 0) -> JobRecord {
        JobRecord(id: JobID(event: "week", item: item, action: action, target: target), state: state, send: send,
                  instant: at, deadline: at.addingTimeInterval(3600), updatedAt: at)
    }

    @Test func setReplaceAndRemoveAnswerAsADictionaryWould() {
        var table = RecordTable()
        var model: [JobID: JobRecord] = [:]
        table.reserve(items: 2, jobsPerItem: 3)
        let records = [record("show", .start), record("show", .stop), record("show", .start, "radio"), record("next", .prepare),
                       record("show", .start, "site", .failed, send: 1), record("next", .prepare, "site", .missed)]
        for r in records {
            table[r.id] = r
            model[r.id] = r
            #expect(table.count == model.count)
        }
        #expect(table[records[0].id]?.send == 1 && table[records[0].id]?.state == .failed, "a later record of a job replaces it")
        #expect(table.values.filter { $0.id.item == "show" }.count == 3 && table.values.filter { $0.id.item == "next" }.count == 1)
        table[records[1].id] = nil
        model[records[1].id] = nil
        table[record("gone", .stop).id] = nil    // removing what is not there changes nothing
        table[record("next", .prepare).id] = nil
        model[record("next", .prepare).id] = nil
        #expect(table.count == 2 && !table.values.contains { $0.id.item == "next" })
        #expect(Dictionary(uniqueKeysWithValues: table.values.map { ($0.id, $0) }) == model)
        #expect(Set(table.values.map(\.id)) == Set(model.keys))
        for id in model.keys { #expect(table[id] == model[id]) }
        #expect(table[record("show", .stop).id] == nil)
    }

    @Test func tablesWithTheSameRecordsAreEqualWhateverTheOrder() {
        let a = RecordTable([record("show", .start), record("next", .stop)])
        let b = RecordTable([record("next", .stop), record("show", .start)])
        #expect(a == b)
        #expect(a != RecordTable([record("show", .start)]))
        #expect(a != RecordTable([record("show", .start), record("next", .stop, "site", .failed)]))
    }
}
