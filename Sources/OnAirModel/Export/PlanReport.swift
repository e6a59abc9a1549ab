import Foundation

/// The `onair plan` output: the same jobs as a table for people and as JSON for tools.
public struct PlanReport: Sendable {
    public var schedule: Schedule
    public var jobs: [PlannedJob]

    public init(schedule: Schedule, jobs: [PlannedJob]) {
        self.schedule = schedule
        self.jobs = jobs
    }

    /// One JSON row per job (per target), so a tool never has to split a target list.
    public struct JobRow: Codable, Sendable, Equatable {
        public var id: String
        public var item: String
        public var title: String
        public var action: String
        public var target: String
        public var local: String
        public var utc: String
        public var deadline_utc: String
    }

    public struct Document: Codable, Sendable {
        public var event: String
        public var title: String
        public var timezone: String
        public var jobs: [JobRow]
    }

    public var document: Document {
        let zone = schedule.timeZone
        let titles = Dictionary(schedule.items.map { ($0.id, $0.title) }, uniquingKeysWith: { a, _ in a })
        return Document(event: schedule.id, title: schedule.title, timezone: zone.identifier, jobs: jobs.map { job in
            JobRow(id: job.id.description, item: job.itemID, title: titles[job.itemID] ?? "", action: job.action.rawValue,
                   target: job.target, local: WallClock.localText(job.instant, in: zone, withOffset: true),
                   utc: WallClock.utcText(job.instant), deadline_utc: WallClock.utcText(job.deadline))
        })
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(document)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A table with one row per (instant, item, action) and its targets joined, since an
    /// operator thinks "the plenary starts at 10:00 on site and mixer", not in per-target rows.
    public func table() -> String {
        let zone = schedule.timeZone
        var rows: [[String]] = [["LOCAL (\(zone.identifier))", "UTC", "ITEM", "ACTION", "TARGETS"]]
        var index = 0
        while index < jobs.count {
            let job = jobs[index]
            var targets = [job.target]
            var next = index + 1
            while next < jobs.count, jobs[next].instant == job.instant, jobs[next].itemID == job.itemID,
                  jobs[next].action == job.action {
                targets.append(jobs[next].target)
                next += 1
            }
            rows.append([WallClock.localText(job.instant, in: zone), WallClock.utcText(job.instant), job.itemID,
                         job.action.rawValue, targets.joined(separator: ",")])
            index = next
        }
        let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var out = "\(schedule.title) (\(schedule.id)): \(jobs.count) job\(jobs.count == 1 ? "" : "s")\n"
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                column == 4 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            out += cells.joined(separator: "  ") + "\n"
        }
        return out
    }
}
