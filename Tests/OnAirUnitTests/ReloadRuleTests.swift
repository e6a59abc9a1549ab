import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduler

/// A reload's refusal (SPEC 2.1) and the daemon's run state, as pure values.
@Suite("Reload and hold, without I/O")
struct ReloadRuleTests {
    let day = LocalDate("2021-11-08")!
    let start = utc("2021-11-08T10:00:00Z")

    func schedule(_ items: [Item], targets: [String] = ["site", "radio"]) -> Schedule {
        Schedule(id: "week", title: "Week", timeZone: TimeZone(identifier: "Europe/Amsterdam")!,
                 targets: targets.map { Target(name: $0, kind: .standard(url: "http://127.0.0.1:9/\($0)", secret: nil)) },
                 days: [Day(date: day, title: nil)], items: items)
    }

    func show(online: Bool = true, targets: [String] = ["site"], line: Int = 7) -> Item {
        Item(id: "show", title: "Show", online: online, day: day, start: start, end: start.addingTimeInterval(3600), targets: targets,
             position: SourcePosition(line: line, column: 5))
    }

    func records(start state: JobState, stop: JobState? = nil) -> RecordTable {
        var r = RecordTable()
        let startID = JobID(event: "week", item: "show", action: .start, target: "site")
        r[startID] = JobRecord(id: startID, state: state, instant: start, deadline: start.addingTimeInterval(3600), updatedAt: start)
        if let stop {
            let stopID = JobID(event: "week", item: "show", action: .stop, target: "site")
            r[stopID] = JobRecord(id: stopID, state: stop, instant: start.addingTimeInterval(3600), deadline: start.addingTimeInterval(7200),
                                  updatedAt: start)
        }
        return r
    }

    @Test func aFileThatWouldStrandALiveStreamIsRefusedAtTheItem() {
        let live = records(start: .delivered)
        let onSite = ReloadRule.stranded(records: live, in: schedule([show(online: false, line: 12)]), file: "week.yaml")
        #expect(onSite.map(\.description) == ["week.yaml:12:5: 'show' is on air on 'site' and the new file makes 'show' on-site only, "
                                              + "so its stream would have no stop; stop it first (onair stop show) or keep it in the file"])
        let moved = ReloadRule.stranded(records: live, in: schedule([show(targets: ["radio"])]), file: "week.yaml")
        #expect(moved.first?.message.contains("the new file takes target 'site' from 'show'") == true)
        let gone = ReloadRule.stranded(records: live, in: schedule([]), file: "week.yaml")
        #expect(gone.first?.message.contains("the new file has no item 'show'") == true)
        #expect(gone.first?.line == 1 && gone.first?.column == 1, "at the top of the file")
    }

    @Test func aStartStillOnTheWireCountsAsLive() {
        #expect(ReloadRule.stranded(records: records(start: .inflight), in: schedule([]), file: "f").count == 1)
    }

    @Test func aStreamThatEndedOrNeverStartedIsNotInTheWay() {
        #expect(ReloadRule.stranded(records: records(start: .delivered, stop: .delivered), in: schedule([]), file: "f").isEmpty)
        #expect(ReloadRule.stranded(records: records(start: .delivered, stop: .cancelled), in: schedule([]), file: "f").isEmpty)
        #expect(ReloadRule.stranded(records: records(start: .missed), in: schedule([]), file: "f").isEmpty)
        #expect(ReloadRule.stranded(records: records(start: .delivered), in: schedule([show()]), file: "f").isEmpty, "the stop is still there")
    }

    @Test func holdAndResumeToggleARunningDaemonAndShutdownIsForGood() {
        #expect(RunState.running.after(.hold) == .held)
        #expect(RunState.held.after(.hold) == .held, "a second hold stays held")
        #expect(RunState.held.after(.resume) == .running)
        #expect(RunState.running.after(.resume) == .running)
        for state in [RunState.running, .held, .stopping] {
            #expect(state.after(.shutdown) == .stopping)
            #expect(RunState.stopping.after(.hold) == .stopping && RunState.stopping.after(.resume) == .stopping)
        }
    }
}
