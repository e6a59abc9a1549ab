import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler

/// What `onair status` shows, as JSON and as one screen of text. Built from the running
/// scheduler, or, when the daemon is down, from the journal alone.
public struct StatusReport: Codable, Sendable, Equatable {
    public struct OnAir: Codable, Sendable, Equatable {
        public var item: String
        public var title: String
        public var since: String
        public var until: String
    }

    public struct Next: Codable, Sendable, Equatable {
        public var job: String
        public var item: String
        public var action: String
        public var target: String
        public var at: String
        public var at_local: String
        public var in_seconds: Int
    }

    public struct Failure: Codable, Sendable, Equatable {
        public var job: String
        public var at: String
        public var detail: String
        /// `failed` or `missed`.
        public var state: String?
    }

    /// A start or stop whose last attempt failed and that is being retried.
    public struct Retry: Codable, Sendable, Equatable {
        public var job: String
        public var attempts: Int
        public var at: String
        public var detail: String
    }

    public struct Reload: Codable, Sendable, Equatable {
        public var at: String
        public var ok: Bool
        public var detail: String
    }

    public struct Override: Codable, Sendable, Equatable {
        public var item: String
        public var delay: String
        public var extend: String
        public var by: String
        public var at: String
    }

    public var daemon: String
    public var version: String
    public var pid: Int32?
    public var started_at: String?
    public var uptime_seconds: Int?
    public var schedule_file: String?
    /// Where a stopped daemon's status was read from, or why it could not be.
    public var journal: String?
    public var event: String?
    public var title: String?
    public var timezone: String?
    public var held: Bool
    public var on_air: [OnAir]
    public var next: [Next]
    public var retrying: [Retry] = []
    public var failures: [Failure]
    public var last_reload: Reload?
    public var overrides: [Override]
    /// Why the daemon is degraded, one line each (SPEC 3.2); empty when healthy.
    public var problems: [String] = []
    public var degraded: Bool

    /// The exit status of `onair status`: 0 healthy, 1 degraded, 3 not running.
    public var exitStatus: Int32 { daemon != "running" ? 3 : (degraded ? 1 : 0) }

    /// Jobs of the last 24 hours that failed for good or were missed, not followed by a successful
    /// delivery to the same item and target.
    static func unresolvedFailures(_ records: RecordTable, now: Date) -> [JobRecord] {
        struct Lane: Hashable { var item: String; var target: String }
        var lastDelivered: [Lane: Date] = [:]
        for record in records.values where record.state == .delivered {
            let lane = Lane(item: record.id.item, target: record.id.target)
            lastDelivered[lane] = max(lastDelivered[lane] ?? record.updatedAt, record.updatedAt)
        }
        return records.values.filter { record in
            guard record.state == .failed || record.state == .missed, record.updatedAt > now.addingTimeInterval(-86_400) else { return false }
            return !(lastDelivered[Lane(item: record.id.item, target: record.id.target)].map { $0 > record.updatedAt } ?? false)
        }.sorted { $0.updatedAt > $1.updatedAt }
    }

    /// Everything a report is made of: the running scheduler's snapshot, or for a daemon that is
    /// down the journal alone (`snapshot` nil, the zone from the journal's settings).
    public struct Sources: Sendable {
        public var snapshot: SchedulerSnapshot?
        public var records: RecordTable
        public var events: [JournalEvent]
        public var overrides: [String: ItemOverride]
        public var settings: [String: String]
        public var now: Date
        public var pid: Int32?
        public var startedAt: Date?
        public var scheduleFile: String?
        public var journal: String?

        public init(snapshot: SchedulerSnapshot?, records: RecordTable, events: [JournalEvent],
                    overrides: [String: ItemOverride], settings: [String: String] = [:], now: Date, pid: Int32? = nil,
                    startedAt: Date? = nil, scheduleFile: String? = nil, journal: String? = nil) {
            self.snapshot = snapshot
            self.records = records
            self.events = events
            self.overrides = overrides
            self.settings = settings
            self.now = now
            self.pid = pid
            self.startedAt = startedAt
            self.scheduleFile = scheduleFile
            self.journal = journal
        }
    }

    public static func make(_ s: Sources) -> StatusReport {
        let snapshot = s.snapshot, now = s.now
        let zone = snapshot?.schedule.timeZone ?? s.settings[JournalSetting.timeZone].flatMap(TimeZone.init(identifier:)) ?? .gmt
        let onAir: [OnAir]
        if let snapshot {
            onAir = snapshot.onAir.map { OnAir(item: $0.item, title: $0.title, since: WallClock.utcText($0.since), until: WallClock.utcText($0.until)) }
        } else {
            var since: [String: Date] = [:]
            for r in s.records.values where r.id.action == .start && r.state == .delivered { since[r.id.item] = min(since[r.id.item] ?? r.updatedAt, r.updatedAt) }
            for r in s.records.values where r.id.action == .stop && (r.state == .delivered || r.state == .cancelled) { since[r.id.item] = nil }
            onAir = since.sorted { $0.key < $1.key }.map { OnAir(item: $0.key, title: "", since: WallClock.utcText($0.value), until: "") }
        }
        let next = (snapshot?.next ?? []).map {
            Next(job: $0.id.description, item: $0.itemID, action: $0.action.rawValue, target: $0.target, at: WallClock.utcText($0.instant),
                 at_local: WallClock.labelledText($0.instant, in: zone), in_seconds: Int($0.instant.timeIntervalSince(now).rounded(.up)))
        }
        let retrying = (snapshot?.retrying ?? [:]).compactMap { id, reason -> Retry? in
            guard id.action != .prepare, let record = s.records[id] else { return nil }
            return Retry(job: id.description, attempts: record.attempts, at: WallClock.utcText(record.updatedAt), detail: reason)
        }.sorted { $0.job < $1.job }
        let failures = unresolvedFailures(s.records, now: now).map {
            Failure(job: $0.id.description, at: WallClock.utcText($0.updatedAt), detail: $0.reason(in: zone) ?? $0.state.rawValue, state: $0.state.rawValue)
        }
        let reload = s.events.first { $0.kind == "reload" }.map { Reload(at: WallClock.utcText($0.at), ok: $0.ok, detail: $0.detail) }
        let held = snapshot?.held ?? (s.events.first { $0.kind == "hold" || $0.kind == "resume" }?.kind == "hold")
        var problems: [String] = []
        if let trouble = snapshot?.journalTrouble {
            problems.append("the journal cannot be written since \(WallClock.labelledText(trouble.since, in: zone)) (\(trouble.error)); nothing is sent until it can")
        }
        if let overdue = snapshot?.overdue, overdue > 0, held {
            problems.append("held while \(overdue) job\(overdue == 1 ? "" : "s") fell due; `onair resume` handles them as after downtime")
        }
        if !retrying.isEmpty { problems.append("\(retrying.count) start or stop call\(retrying.count == 1 ? " is" : "s are") being retried") }
        if !failures.isEmpty { problems.append("\(failures.count) job\(failures.count == 1 ? "" : "s") failed or missed in the last 24 hours") }
        if reload?.ok == false { problems.append("the last reload was refused; the schedule before it stays in force") }
        return StatusReport(
            daemon: snapshot != nil ? "running" : "down", version: OnAirVersion.current, pid: snapshot != nil ? s.pid : nil,
            started_at: s.startedAt.map(WallClock.utcText), uptime_seconds: s.startedAt.map { Int(now.timeIntervalSince($0)) },
            schedule_file: s.scheduleFile, journal: s.journal, event: snapshot?.schedule.id ?? s.settings[JournalSetting.event],
            title: snapshot?.schedule.title, timezone: snapshot?.schedule.timeZone.identifier ?? s.settings[JournalSetting.timeZone],
            held: held, on_air: onAir, next: next, retrying: retrying, failures: failures, last_reload: reload,
            overrides: s.overrides.values.sorted { $0.item < $1.item }.map {
                Override(item: $0.item, delay: DurationText.format($0.shift), extend: DurationText.format($0.extension_), by: $0.by,
                         at: WallClock.utcText($0.at))
            },
            problems: problems, degraded: !problems.isEmpty)
    }

    public static func span(_ seconds: Int) -> String {
        let s = max(0, seconds)
        if s >= 86_400 { return "\(s / 86_400)d \((s % 86_400) / 3600)h" }
        if s >= 3600 { return "\(s / 3600)h \((s % 3600) / 60)m" }
        if s >= 60 { return "\(s / 60)m \(s % 60)s" }
        return "\(s)s"
    }

    /// The human form, in the spirit of `systemctl status`: one screen, every time in the
    /// schedule's zone and labelled with it.
    public func text() -> String {
        let zone = timezone.flatMap(TimeZone.init(identifier:)) ?? .gmt
        func local(_ utc: String) -> String {
            guard let date = ISO8601DateFormatter().date(from: utc) else { return utc }
            return WallClock.labelledText(date, in: zone)
        }
        var lines: [String] = []
        func list(_ label: String, _ entries: [String], more: String) {
            for (i, entry) in entries.prefix(5).enumerated() { lines.append((i == 0 ? label : "            ") + entry) }
            if entries.count > 5 { lines.append("            … and \(entries.count - 5) more (\(more))") }
        }
        let dot = daemon != "running" ? "○" : (degraded ? "×" : "●")
        if daemon == "running" {
            lines.append("\(dot) onair \(version): running (pid \(pid ?? 0)), up \(StatusReport.span(uptime_seconds ?? 0))\(degraded ? ", DEGRADED" : "")")
            lines.append("  Schedule: \(schedule_file ?? "?") (\(event ?? "?"): \(title ?? ""))")
            lines.append("  Firing:   " + (held ? "HELD: no job fires until `onair resume`" : "active"))
        } else {
            lines.append("\(dot) onair \(version): not running" + (journal.map { " (\($0))" } ?? ""))
            if held { lines.append("  Firing:   HELD when it stopped") }
        }
        list("  Problem:  ", problems, more: "onair status --json")
        if on_air.isEmpty {
            lines.append("  On air:   nothing")
        } else {
            list("  On air:   ", on_air.map { entry in
                let until = entry.until.isEmpty ? "" : ", until \(local(entry.until))"
                return "\(entry.item)\(entry.title.isEmpty ? "" : " \"\(entry.title)\"") since \(local(entry.since))\(until)"
            }, more: "onair status --json")
        }
        if daemon == "running" {
            if next.isEmpty { lines.append("  Next:     no pending jobs") }
            list("  Next:     ", next.map { job in
                let when = job.in_seconds < 0 ? "overdue \(StatusReport.span(-job.in_seconds))" : "in \(StatusReport.span(job.in_seconds))"
                return "\(job.at_local) (\(when))  \(job.item) \(job.action) -> \(job.target)"
            }, more: "onair next")
        }
        list("  Retrying: ", retrying.map { "\(local($0.at)) \($0.job) (attempt \($0.attempts)): \($0.detail.prefix(100))" }, more: "onair history")
        if failures.isEmpty {
            lines.append("  Failures: none")
        } else {
            list("  Failures: ", failures.map { "\(local($0.at)) \($0.job): \($0.detail.prefix(100))" }, more: "onair history")
        }
        list("  Changes:  ", overrides.map { "\($0.item): delay \($0.delay), extend \($0.extend) (by \($0.by), \(local($0.at)))" }, more: "onair status --json")
        if let r = last_reload {
            lines.append("  Reload:   \(local(r.at)) \(r.ok ? "ok" : "REFUSED: \(r.detail.split(separator: "\n").first ?? "")")")
        } else {
            lines.append("  Reload:   none since start")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
