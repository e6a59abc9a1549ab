import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduler

/// SPEC 2.1's rules for operators as a pure function: a view of the scheduler built by hand, a
/// command in, a decision out. No journal, no clock, no actor.
@Suite("Operators' commands, without I/O")
struct CommandRuleTests {
    let zone = TimeZone(identifier: "Europe/Amsterdam")!
    let schedule: Schedule

    init() {
        let day = LocalDate("2021-11-08")!
        func item(_ id: String, _ from: String, _ to: String, _ targets: [String], online: Bool = true) -> Item {
            Item(id: id, title: id, online: online, day: day, start: utc("2021-11-08T\(from):00Z"), end: utc("2021-11-08T\(to):00Z"),
                 targets: targets)
        }
        let targets = ["site", "radio"].map { Target(name: $0, kind: .standard(url: "http://127.0.0.1:9/\($0)", secret: nil)) }
        schedule = Schedule(id: "week", title: "Week", timeZone: zone, leadTime: 600, targets: targets, days: [Day(date: day, title: nil)],
                            items: [item("show", "10:00", "11:00", ["site", "radio"]), item("next", "11:00", "12:00", ["site"]),
                                    item("later", "12:30", "13:00", ["site"]), item("talk", "09:00", "09:30", [], online: false)])
    }

    func view(at time: String, records: [JobRecord] = [], delivering: Set<JobID> = [], live: [String: Date] = [:],
              overrides: [String: ItemOverride] = [:]) -> CommandView {
        var index: [String: Int] = [:]
        for (i, item) in schedule.items.enumerated() { index[item.id] = i }
        return CommandView(schedule: schedule, itemIndex: index, records: RecordTable(records),
                           delivering: delivering, live: live, overrides: overrides, now: utc("2021-11-08T\(time)Z"))
    }

    func id(_ item: String, _ action: Action, _ target: String = "site") -> JobID {
        JobID(event: "week", item: item, action: action, target: target)
    }

    func record(_ id: JobID, _ state: JobState, send: Int = 0, attempts: Int = 0) -> JobRecord {
        let job = Planner.jobs(for: schedule.item(id: id.item)!, in: schedule).first { $0.id == id }!
        return JobRecord(id: id, state: state, send: send, attempts: attempts, instant: job.instant, deadline: job.deadline,
                         updatedAt: job.instant)
    }

    func decide(_ command: OperatorCommand, _ view: CommandView) -> CommandDecision {
        CommandRule(view: view, by: "ops").decide(command)
    }

    func refusal(_ decision: CommandDecision) -> Scheduler.Refusal? {
        if case .refused(let r) = decision { return r }
        return nil
    }

    /// The item on air on both targets since 10:00.
    func onAir(at time: String, stopState: JobState = .planned) -> CommandView {
        let records = ["site", "radio"].flatMap { t in
            [record(id("show", .prepare, t), .delivered), record(id("show", .start, t), .delivered, attempts: 1)]
                + (stopState == .planned ? [] : [record(id("show", .stop, t), stopState, attempts: 1)])
        }
        return view(at: time, records: records, live: ["show": utc("2021-11-08T10:00:00Z")])
    }

    @Test func unknownAndOnSiteItemsAreRefusedWithTheirKind() {
        let v = view(at: "09:00:00")
        #expect(refusal(decide(.stop(item: "nope"), v)) == Scheduler.Refusal("unknown item 'nope'", kind: .unknown))
        #expect(refusal(decide(.skip(item: "talk"), v))?.description == "item 'talk' is on-site only; nothing is streamed")
    }

    @Test func aStopAlwaysWorksAndSupersedesWhatIsUnderWay() {
        // On air, its scheduled stop on site retried past the end, the radio's stop armed.
        var v = onAir(at: "11:05:00", stopState: .inflight)
        v.delivering = [id("show", .stop), id("show", .stop, "radio")]
        guard case .send(let jobs, let alsoWrite, let superseding) = decide(.stop(item: "show"), v) else {
            Issue.record("a stop is never refused")
            return
        }
        #expect(jobs.map(\.id) == [id("show", .stop, "radio"), id("show", .stop)], "every stop, in target order")
        #expect(Set(superseding) == [id("show", .stop), id("show", .stop, "radio")])
        #expect(alsoWrite.isEmpty, "prepare and start are final already")

        // Before anything was sent: the pending prepare and start are cancelled with the stop.
        guard case .send(_, let cancels, let none) = decide(.stop(item: "show"), view(at: "09:00:00")) else {
            Issue.record("a stop before anything was sent is not refused either")
            return
        }
        #expect(cancels.map(\.state) == [.cancelled, .cancelled, .cancelled, .cancelled] && none.isEmpty)
        #expect(cancels.allSatisfy { $0.detail == "item stopped by hand by ops" })
    }

    @Test func aStartIsRefusedWhenStartedUnlessAgainAndWhenItsItemHasEnded() {
        let live = onAir(at: "10:30:00")
        #expect(refusal(decide(.start(item: "show", again: false), live))?.description
                == "'show' was already started; use --again to send the start once more")
        guard case .send(let jobs, _, let superseding) = decide(.start(item: "show", again: true), live) else {
            Issue.record("--again sends the start once more")
            return
        }
        #expect(jobs.map(\.action) == [.start, .start] && superseding.isEmpty)
        #expect(refusal(decide(.start(item: "show", again: false), view(at: "11:00:00")))?.description.hasPrefix("'show' ended at ") == true)
    }

    @Test func aStartIsRefusedWhileACallOfTheItemIsBeingDelivered() {
        let v = view(at: "09:55:00", delivering: [id("show", .prepare, "radio")])
        #expect(refusal(decide(.start(item: "show", again: false), v))?.description
                == "a call of 'show' is being delivered right now; see onair history show")
    }

    @Test func aStartIsRefusedWhileAnotherItemIsOnAirOnASharedTarget() {
        // "show" is on air past its end (its stop still retried); "next" shares the site.
        let v = onAir(at: "11:01:00")
        #expect(refusal(decide(.start(item: "next", again: false), v))?.description
                == "'show' is still on air on site; stop it first (onair stop show)")
    }

    @Test func aManualStartBringsBackTheStopsOfASkippedOrStoppedItem() {
        let skipped = ["site", "radio"].flatMap { t in
            [record(id("show", .prepare, t), .cancelled), record(id("show", .start, t), .cancelled), record(id("show", .stop, t), .cancelled)]
        }
        guard case .send(_, let alsoWrite, _) = decide(.start(item: "show", again: false), view(at: "10:10:00", records: skipped)) else {
            Issue.record("a skipped item can be started by hand")
            return
        }
        let stops = alsoWrite.filter { $0.id.action == .stop }
        #expect(stops.count == 2 && stops.allSatisfy { $0.state == .planned && $0.send == 0 }, "never sent: the same send")
        // A stop that was delivered comes back as a new send (a new webhook-id).
        let stopped = onAir(at: "10:40:00", stopState: .delivered)
        var again = stopped
        again.live = [:]
        guard case .send(_, let restored, _) = decide(.start(item: "show", again: true), again) else {
            Issue.record("a stopped item can be started again by hand")
            return
        }
        #expect(restored.filter { $0.id.action == .stop }.allSatisfy { $0.state == .planned && $0.send == 1 })
    }

    @Test func extendAndDelayAreRefusedWhenTheyWouldOverlapAndNamesTheOtherItem() {
        let extend = refusal(decide(.extend(item: "show", seconds: 600), onAir(at: "10:50:00")))
        #expect(extend?.description.hasPrefix("extend would make 'show' overlap 'next' on target 'site'") == true, "\(String(describing: extend))")
        let delay = refusal(decide(.delay(item: "next", seconds: 3600), view(at: "09:00:00")))
        #expect(delay?.description.hasPrefix("delay would make 'next' overlap 'later' on target 'site'") == true)
        // Once "next" will never start (skipped), extending "show" into its time is fine.
        var v = onAir(at: "10:50:00")
        v.records[id("next", .start)] = record(id("next", .start), .cancelled)
        guard case .override(let o, let answer) = decide(.extend(item: "show", seconds: 600), v) else {
            Issue.record("nothing in the way")
            return
        }
        #expect(o.extension_ == 600 && o.shift == 0 && o.by == "ops")
        #expect(answer.hasPrefix("'show' now ends at 2021-11-08 12:10"), "\(answer)")
    }

    @Test func extendOnceStoppedAndDelayOnceStartedAreRefused() {
        #expect(refusal(decide(.extend(item: "show", seconds: 60), onAir(at: "11:00:01", stopState: .delivered)))?.description
                == "'show' was already stopped, or its stop is being delivered; nothing to extend")
        #expect(refusal(decide(.delay(item: "show", seconds: 60), onAir(at: "10:30:00")))?.description
                == "'show' has already started; use extend to move its end")
    }

    @Test func delaysAndExtensionsAddUpInOneOverride() {
        let earlier = ItemOverride(item: "later", shift: 60, extension_: 120, by: "someone", at: utc("2021-11-08T08:00:00Z"))
        guard case .override(let o, _) = decide(.delay(item: "later", seconds: 300), view(at: "09:00:00", overrides: ["later": earlier])) else {
            Issue.record("nothing in the way of a delay of 'later'")
            return
        }
        #expect(o.shift == 360 && o.extension_ == 120 && o.by == "ops" && o.at == utc("2021-11-08T09:00:00Z"))
    }

    @Test func skipIsRefusedOnAirOrWhileBeingSentAndCancelsOnlyWhatIsPending() {
        #expect(refusal(decide(.skip(item: "show"), onAir(at: "10:30:00")))?.description == "'show' is on air; use stop")
        #expect(refusal(decide(.skip(item: "show"), view(at: "09:50:00", delivering: [id("show", .prepare)])))?.description
                == "a call of 'show' is being delivered right now; use stop")
        let prepared = view(at: "09:55:00", records: [record(id("show", .prepare), .delivered), record(id("show", .prepare, "radio"), .delivered)])
        guard case .cancel(let batch, let answer) = decide(.skip(item: "show"), prepared) else {
            Issue.record("a prepared item can be skipped")
            return
        }
        #expect(batch.count == 4 && batch.allSatisfy { $0.state == .cancelled && $0.id.action != .prepare })
        #expect(answer == "'show' skipped: 4 pending jobs cancelled")
    }

    /// SPEC 2.1: no sequence of commands leaves a stream live with no stop ahead. Every sequence of
    /// four commands about one item, each decision applied as the shell would (a sent call taken
    /// at once), keeps a pending stop on every target where the item is on air.
    @Test func noSequenceOfCommandsLeavesAStreamLiveWithNoStopAhead() {
        let commands: [OperatorCommand] = [.start(item: "show", again: false), .start(item: "show", again: true),
                                           .stop(item: "show"), .skip(item: "show")]
        var sequences: [[OperatorCommand]] = [[]]
        for _ in 0..<4 { sequences = sequences.flatMap { s in commands.map { s + [$0] } } }
        for sequence in sequences {
            var v = view(at: "10:20:00")
            for command in sequence { apply(decide(command, v), to: &v) }
            for target in ["site", "radio"] {
                let started = v.state(id("show", .start, target)) == .delivered
                let stop = v.state(id("show", .stop, target))
                if started && v.live["show"] != nil {
                    #expect(!stop.isFinal, "\(sequence): live on \(target) with its stop \(stop)")
                }
            }
        }
    }

    /// The shell's effect on the view, with every call taken by its platform at once.
    func apply(_ decision: CommandDecision, to v: inout CommandView) {
        switch decision {
        case .refused, .override: return
        case .cancel(let batch, _):
            for r in batch { v.records[r.id] = r }
        case .send(let jobs, let alsoWrite, _):
            for r in alsoWrite { v.records[r.id] = r }
            for job in jobs {
                var r = v.records[job.id] ?? record(job.id, .planned)
                r.state = .delivered
                r.attempts += 1
                v.records[job.id] = r
                if job.action == .start { v.live[job.itemID] = v.now }
                if job.action == .stop { v.live[job.itemID] = nil }
            }
        }
    }
}
