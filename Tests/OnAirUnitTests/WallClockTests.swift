import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

@Suite("Wall-clock times, DST gaps and overlaps, durations")
struct WallClockTests {
    let amsterdam = TimeZone(identifier: "Europe/Amsterdam")!

    @Test func ordinaryTimeResolves() throws {
        let t = try WallClock.instant(date: LocalDate("2021-11-08")!, time: LocalTimeOfDay("20:30")!, zone: amsterdam).get()
        #expect(t == utc("2021-11-08T19:30:00Z"))
        let summer = try WallClock.instant(date: LocalDate("2026-07-01")!, time: LocalTimeOfDay("20:30")!, zone: amsterdam).get()
        #expect(summer == utc("2026-07-01T18:30:00Z"))
    }

    @Test func springForwardGapIsDetected() {
        let r = WallClock.instant(date: LocalDate("2026-03-29")!, time: LocalTimeOfDay("02:30")!, zone: amsterdam)
        #expect(r == .failure(.gap))
        // Around the gap everything is fine.
        #expect((try? WallClock.instant(date: LocalDate("2026-03-29")!, time: LocalTimeOfDay("01:59:59")!, zone: amsterdam).get()) == utc("2026-03-29T00:59:59Z"))
        #expect((try? WallClock.instant(date: LocalDate("2026-03-29")!, time: LocalTimeOfDay("03:00")!, zone: amsterdam).get()) == utc("2026-03-29T01:00:00Z"))
    }

    @Test func fallBackOverlapIsAmbiguous() {
        let r = WallClock.instant(date: LocalDate("2026-10-25")!, time: LocalTimeOfDay("02:30")!, zone: amsterdam)
        #expect(r == .failure(.ambiguous(offsets: [7200, 3600])))
    }

    @Test func explicitOffsetPinsTheAmbiguousTime() throws {
        let first = try WallClock.instant(date: LocalDate("2026-10-25")!, time: LocalTimeOfDay("02:30+02:00")!, zone: amsterdam).get()
        let second = try WallClock.instant(date: LocalDate("2026-10-25")!, time: LocalTimeOfDay("02:30+01:00")!, zone: amsterdam).get()
        #expect(first == utc("2026-10-25T00:30:00Z"))
        #expect(second == utc("2026-10-25T01:30:00Z"))
        let wrong = WallClock.instant(date: LocalDate("2021-11-08")!, time: LocalTimeOfDay("10:00+05:00")!, zone: amsterdam)
        #expect(wrong == .failure(.offsetNotInForce(18000)))
    }

    @Test func dstProblemsInASchedule() {
        let gap = problems(replacing(line: 27, with: "        start: \"02:30\"", in: baseSchedule.replacingOccurrences(of: "2021-11-08", with: "2026-03-29").replacingOccurrences(of: "2021-11-09", with: "2026-03-30")))
        #expect(gap == ["27:16: start 02:30 of 'opening' does not exist on 2026-03-29 in Europe/Amsterdam: the clocks jump forward over it; choose another time"])
        let fallBack = baseSchedule.replacingOccurrences(of: "2021-11-08", with: "2026-10-25").replacingOccurrences(of: "2021-11-09", with: "2026-10-26")
        let overlap = problems(replacing(line: 27, with: "        start: \"02:30\"", in: fallBack))
        #expect(overlap == [#"27:16: start 02:30 of 'opening' is ambiguous on 2026-10-25 in Europe/Amsterdam: the clocks fall back and pass it twice; write "02:30+02:00" or "02:30+01:00""#])
        #expect(problems(replacing(line: 27, with: "        start: \"02:30+01:00\"", in: fallBack)) == [])
    }

    @Test func itemAcrossTheFallBackNightLastsItsRealDuration() throws {
        let fallBack = baseSchedule.replacingOccurrences(of: "2021-11-08", with: "2026-10-25").replacingOccurrences(of: "2021-11-09", with: "2026-10-26")
        var yaml = replacing(line: 27, with: "        start: \"01:00\"", in: fallBack)
        yaml = replacing(line: 28, with: "        end: \"04:00\"", in: yaml)
        let item = try #require(try load(yaml).item(id: "opening"))
        #expect(item.end.timeIntervalSince(item.start) == 4 * 3600)  // three wall-clock hours, four real ones
    }

    @Test func timeOfDayParsing() {
        #expect(LocalTimeOfDay("10:00")?.secondsOfDay == 36000)
        #expect(LocalTimeOfDay("10:00:30")?.secondsOfDay == 36030)
        #expect(LocalTimeOfDay("10:00:30+01:00")?.explicitOffset == 3600)
        #expect(LocalTimeOfDay("10:00-03:30")?.explicitOffset == -12600)
        #expect(LocalTimeOfDay("10:00Z")?.explicitOffset == 0)
        for bad in ["24:00", "9:00", "10:60", "10", "10:00:61", "10:00+1", "ab:cd", ""] {
            #expect(LocalTimeOfDay(bad) == nil, "\(bad)")
        }
    }

    @Test func durations() {
        #expect(DurationText.seconds("90s") == 90)
        #expect(DurationText.seconds("10m") == 600)
        #expect(DurationText.seconds("1h30m") == 5400)
        #expect(DurationText.seconds("2h") == 7200)
        #expect(DurationText.seconds("1h0m30s") == 3630)
        #expect(DurationText.seconds("0") == 0)
        for bad in ["", "60", "m", "1.5h", "30m1h", "1h1h", "-5m", "10 m", "5d", "99999999999h"] {
            #expect(DurationText.seconds(bad) == nil, "\(bad)")
        }
        #expect(DurationText.format(5400) == "1h30m")
        #expect(DurationText.format(90) == "1m30s")
    }

    @Test func dateArithmetic() {
        #expect(LocalDate("2021-11-08")!.dayNumber == 18939)
        #expect(LocalDate(dayNumber: 18939) == LocalDate("2021-11-08"))
        #expect(LocalDate("2024-02-28")!.adding(days: 1) == LocalDate("2024-02-29"))
        #expect(LocalDate("2023-02-29") == nil)
        #expect(LocalDate("1900-02-29") == nil)
        #expect(LocalDate("2000-02-29") != nil)
    }
}
