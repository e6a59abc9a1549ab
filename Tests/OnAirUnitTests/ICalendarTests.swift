import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler
@testable import OnAirDaemon

@Suite("iCalendar export")
struct ICalendarTests {
    @Test func escaping() {
        #expect(ICalendar.escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne")
        #expect(ICalendar.escape("crlf\r\nline") == "crlf\\nline")
    }

    @Test func foldingAt75OctetsWithoutSplittingCharacters() {
        let line = "SUMMARY:" + String(repeating: "é", count: 100)  // 2 octets each
        let folded = ICalendar.fold(line)
        let pieces = folded.components(separatedBy: "\r\n")
        #expect(pieces.count > 1)
        for piece in pieces { #expect(piece.utf8.count <= 75) }
        for piece in pieces.dropFirst() { #expect(piece.hasPrefix(" ")) }
        // Unfolding gives the original back.
        #expect(folded.replacingOccurrences(of: "\r\n ", with: "") == line)
        #expect(ICalendar.fold("SHORT:x") == "SHORT:x")
        let exact = "X:" + String(repeating: "a", count: 73)
        #expect(ICalendar.fold(exact) == exact)
        #expect(ICalendar.fold(exact + "b") == exact + "\r\n b")
    }

    @Test func calendarHasOneEventPerItemWithStableUIDs() throws {
        let schedule = try load(baseSchedule)
        let ics = ICalendar.render(schedule, stamp: utc("2021-11-01T00:00:00Z"))
        #expect(ics.hasPrefix("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"))
        #expect(ics.hasSuffix("END:VCALENDAR\r\n"))
        #expect(!ics.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(ics.components(separatedBy: "BEGIN:VEVENT").count - 1 == 3)
        #expect(ics.contains("UID:opening@test-week.onair\r\n"))
        #expect(ics.contains("DTSTART:20211108T090000Z\r\nDTEND:20211108T103000Z\r\nSUMMARY:Opening\r\nLOCATION:Utrecht\r\n"))
        #expect(ics.contains("DESCRIPTION:Day two (2021-11-09)\\nOn site only\\, not streamed."))
        #expect(ics.contains("DTSTAMP:20211101T000000Z"))
        for line in ics.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 75) }
    }
}

@Suite("Status text")
struct StatusTextTests {
    @Test func goldenRunningStatus() {
        let report = StatusReport(
            daemon: "running", version: "0.1.0", pid: 4242, started_at: "2021-11-08T08:00:00Z", uptime_seconds: 7380,
            schedule_file: "/etc/onair/schedule.yaml", event: "rv-2021", title: "Week van de Radicale vernieuwing 2021",
            timezone: "Europe/Amsterdam", held: false,
            on_air: [.init(item: "zorg-plenary", title: "Plenaire opening", since: "2021-11-08T09:00:00Z", until: "2021-11-08T10:30:00Z")],
            next: [.init(job: "rv-2021/zorg-plenary/stop/site", item: "zorg-plenary", action: "stop", target: "site",
                         at: "2021-11-08T10:30:00Z", at_local: "2021-11-08 11:30:00 +01:00", in_seconds: 1250)],
            failures: [], last_reload: .init(at: "2021-11-08T08:30:00Z", ok: true, detail: "schedule rv-2021"),
            overrides: [], degraded: false)
        #expect(report.text() == """
        ● onair 0.1.0: running (pid 4242), up 2h 3m
          Schedule: /etc/onair/schedule.yaml (rv-2021: Week van de Radicale vernieuwing 2021)
          Firing:   active
          On air:   zorg-plenary "Plenaire opening" since 2021-11-08 10:00:00 +01:00, until 2021-11-08 11:30:00 +01:00
          Next:     2021-11-08 11:30:00 +01:00 (in 20m 50s)  zorg-plenary stop -> site
          Failures: none
          Reload:   2021-11-08 09:30:00 +01:00 ok

        """)
        #expect(report.exitStatus == 0)
    }

    @Test func goldenDegradedHeldStatus() {
        let report = StatusReport(
            daemon: "running", version: "0.1.0", pid: 1, started_at: nil, uptime_seconds: 59, schedule_file: "s.yaml",
            event: "e", title: "E", timezone: "UTC", held: true, on_air: [], next: [],
            failures: [.init(job: "e/a/start/site", at: "2021-11-08T09:00:05Z", detail: "HTTP 404")],
            last_reload: .init(at: "2021-11-08T09:10:00Z", ok: false, detail: "s.yaml:3:11: unknown timezone 'X'\nmore"),
            overrides: [.init(item: "a", delay: "10m", extend: "0s", by: "ops (uid 1000)", at: "2021-11-08T08:59:00Z")],
            degraded: true)
        #expect(report.text() == """
        × onair 0.1.0: running (pid 1), up 59s, DEGRADED
          Schedule: s.yaml (e: E)
          Firing:   HELD: no job fires until `onair resume`
          On air:   nothing
          Next:     no pending jobs
          Failures: 2021-11-08 09:00:05 UTC e/a/start/site: HTTP 404
          Changes:  a: delay 10m, extend 0s (by ops (uid 1000), 2021-11-08 08:59:00 UTC)
          Reload:   2021-11-08 09:10:00 UTC REFUSED: s.yaml:3:11: unknown timezone 'X'

        """)
        #expect(report.exitStatus == 1)
    }
}
