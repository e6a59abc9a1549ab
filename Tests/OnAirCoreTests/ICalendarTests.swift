import Foundation
import Testing
@testable import OnAirCore

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
