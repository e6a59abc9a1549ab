import Foundation
import OnAirModel

/// SPEC 2.1 for a reload: a new file that would leave a stream on air with no stop ahead is
/// refused whole, like a file that fails validation. Pure: the journal's records and the new
/// schedule in, the diagnostics out.
enum ReloadRule {
    /// Streams that are live now (a start delivered or on the wire, no stop delivered or superseded)
    /// and that `newSchedule` would give no stop — the item removed, made on-site, its target taken
    /// away, or no stop call on it: one diagnostic each, at the item when the new file still has
    /// it, else at the top of the file.
    static func stranded(records: RecordTable, in newSchedule: Schedule, file: String) -> [Diagnostic] {
        var found: [Diagnostic] = []
        let liveStarts = records.values.filter { $0.id.action == .start && ($0.state == .delivered || $0.state == .inflight) }
        for id in liveStarts.map(\.id).sorted() {
            let stop = JobID(event: id.event, item: id.item, action: .stop, target: id.target)
            if records[stop]?.state == .delivered || records[stop]?.state == .cancelled { continue }
            let item = newSchedule.item(id: id.item)
            let why: String
            switch item {
            case nil: why = "the new file has no item '\(id.item)'"
            case let item? where !item.online: why = "the new file makes '\(id.item)' on-site only"
            case let item? where !item.targets.contains(id.target): why = "the new file takes target '\(id.target)' from '\(id.item)'"
            case let item? where !Planner.jobs(for: item, in: newSchedule).contains(where: { $0.id == stop }):
                why = "the new file gives '\(id.item)' no stop call on '\(id.target)'"
            default: continue
            }
            let position = item?.position ?? .start
            found.append(Diagnostic(file: file, line: position.line, column: position.column,
                                    message: "'\(id.item)' is on air on '\(id.target)' and \(why), so its stream would have no stop; "
                                        + "stop it first (onair stop \(id.item)) or keep it in the file"))
        }
        return found
    }
}
