import Foundation

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
    public var event: String?
    public var title: String?
    public var timezone: String?
    public var held: Bool
    public var on_air: [OnAir]
    public var next: [Next]
    public var failures: [Failure]
    public var last_reload: Reload?
    public var overrides: [Override]
    public var degraded: Bool

    /// The exit status of `onair status`: 0 healthy, 1 degraded, 3 not running.
    public var exitStatus: Int32 { daemon != "running" ? 3 : (degraded ? 1 : 0) }

    /// Failures of the last 24 hours not followed by a successful delivery to the same item and target.
    static func unresolvedFailures(_ records: [JobID: JobRecord], now: Date) -> [JobRecord] {
        records.values.filter { record in
            guard record.state == .failed, record.updatedAt > now.addingTimeInterval(-86_400) else { return false }
            return !records.values.contains {
                $0.state == .delivered && $0.id.item == record.id.item && $0.id.target == record.id.target && $0.updatedAt > record.updatedAt
            }
        }.sorted { $0.updatedAt > $1.updatedAt }
    }

    public static func make(snapshot: SchedulerSnapshot?, records: [JobID: JobRecord], events: [JournalEvent],
                            overrides: [String: ItemOverride], now: Date, running: Bool, pid: Int32?, startedAt: Date?,
                            scheduleFile: String?) -> StatusReport {
        let zone = snapshot?.schedule.timeZone ?? .gmt
        let onAir: [OnAir]
        if let snapshot {
            onAir = snapshot.onAir.map { OnAir(item: $0.item, title: $0.title, since: WallClock.utcText($0.since), until: WallClock.utcText($0.until)) }
        } else {
            let started = Set(records.values.filter { $0.id.action == .start && $0.state == .delivered }.map(\.id.item))
            let stopped = Set(records.values.filter { $0.id.action == .stop && ($0.state == .delivered || $0.state == .cancelled) }.map(\.id.item))
            onAir = started.subtracting(stopped).sorted().map { OnAir(item: $0, title: "", since: "", until: "") }
        }
        let next = (snapshot?.next ?? []).map {
            Next(job: $0.id.description, item: $0.itemID, action: $0.action.rawValue, target: $0.target, at: WallClock.utcText($0.instant),
                 at_local: WallClock.localText($0.instant, in: zone), in_seconds: Int($0.instant.timeIntervalSince(now).rounded(.up)))
        }
        let failures = unresolvedFailures(records, now: now).map {
            Failure(job: $0.id.description, at: WallClock.utcText($0.updatedAt), detail: $0.detail ?? "failed")
        }
        let reload = events.first { $0.kind == "reload" }.map { Reload(at: WallClock.utcText($0.at), ok: $0.ok, detail: $0.detail) }
        let held = snapshot?.held ?? (events.first { $0.kind == "hold" || $0.kind == "resume" }?.kind == "hold")
        return StatusReport(
            daemon: running ? "running" : "down", version: OnAirVersion.current, pid: running ? pid : nil,
            started_at: startedAt.map(WallClock.utcText), uptime_seconds: startedAt.map { Int(now.timeIntervalSince($0)) },
            schedule_file: scheduleFile, event: snapshot?.schedule.id, title: snapshot?.schedule.title,
            timezone: snapshot?.schedule.timeZone.identifier, held: held, on_air: onAir, next: next, failures: failures,
            last_reload: reload,
            overrides: overrides.values.sorted { $0.item < $1.item }.map {
                Override(item: $0.item, delay: DurationText.format($0.shift), extend: DurationText.format($0.extension_), by: $0.by,
                         at: WallClock.utcText($0.at))
            },
            degraded: !failures.isEmpty || reload?.ok == false)
    }

    public static func span(_ seconds: Int) -> String {
        let s = max(0, seconds)
        if s >= 86_400 { return "\(s / 86_400)d \((s % 86_400) / 3600)h" }
        if s >= 3600 { return "\(s / 3600)h \((s % 3600) / 60)m" }
        if s >= 60 { return "\(s / 60)m \(s % 60)s" }
        return "\(s)s"
    }

    /// The human form, in the spirit of `systemctl status`: one screen.
    public func text() -> String {
        let zone = timezone.flatMap(TimeZone.init(identifier:)) ?? .gmt
        func local(_ utc: String) -> String {
            guard let date = ISO8601DateFormatter().date(from: utc) else { return utc }
            return WallClock.localText(date, in: zone)
        }
        var lines: [String] = []
        let dot = daemon != "running" ? "○" : (degraded ? "×" : "●")
        if daemon == "running" {
            lines.append("\(dot) onair \(version): running (pid \(pid ?? 0)), up \(StatusReport.span(uptime_seconds ?? 0))\(degraded ? ", DEGRADED" : "")")
            lines.append("  Schedule: \(schedule_file ?? "?") (\(event ?? "?"): \(title ?? ""))")
            lines.append("  Firing:   " + (held ? "HELD: no job fires until `onair resume`" : "active"))
        } else {
            lines.append("\(dot) onair \(version): not running (from the journal)\(degraded ? ", DEGRADED" : "")")
            if held { lines.append("  Firing:   HELD when it stopped") }
        }
        if on_air.isEmpty {
            lines.append("  On air:   nothing")
        } else {
            for (i, entry) in on_air.prefix(5).enumerated() {
                let when = entry.since.isEmpty ? "" : " since \(local(entry.since)), until \(local(entry.until))"
                lines.append((i == 0 ? "  On air:   " : "            ") + "\(entry.item)\(entry.title.isEmpty ? "" : " \"\(entry.title)\"")\(when)")
            }
            if on_air.count > 5 { lines.append("            … and \(on_air.count - 5) more (onair status --json)") }
        }
        if daemon == "running" {
            if next.isEmpty { lines.append("  Next:     no pending jobs") }
            for (i, job) in next.prefix(5).enumerated() {
                lines.append((i == 0 ? "  Next:     " : "            ") + "\(job.at_local) (in \(StatusReport.span(job.in_seconds)))  \(job.item) \(job.action) -> \(job.target)")
            }
        }
        if failures.isEmpty {
            lines.append("  Failures: none")
        } else {
            for (i, f) in failures.prefix(5).enumerated() {
                lines.append((i == 0 ? "  Failures: " : "            ") + "\(local(f.at)) \(f.job): \(f.detail.prefix(100))")
            }
            if failures.count > 5 { lines.append("            … and \(failures.count - 5) more (onair history)") }
        }
        for (i, o) in overrides.enumerated() {
            lines.append((i == 0 ? "  Changes:  " : "            ") + "\(o.item): delay \(o.delay), extend \(o.extend) (by \(o.by), \(local(o.at)))")
        }
        if let r = last_reload {
            lines.append("  Reload:   \(local(r.at)) \(r.ok ? "ok" : "REFUSED: \(r.detail.split(separator: "\n").first ?? "")")")
        } else {
            lines.append("  Reload:   none since start")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
