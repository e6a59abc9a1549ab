import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

/// Commands racing the firing loop (review of issue 12): what a command checked before its journal
/// write must still hold when the write is done, and nothing may leave a stream live with no stop.
@Suite("Commands racing the loop", .serialized)
struct CommandRaceTests {
    // An extend whose write is under way at the end instant: the stop waits for the new end.
    @Test func anExtendBeingWrittenAtTheEndInstantHoldsTheStop() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.start"] })
        await rig.settle()
        rig.store.overrideWrites.close()
        let extend = Task { try await rig.scheduler.extend(item: "show", by: 60, who: "ops") }
        #expect(await rig.eventually { rig.store.overrideWrites.waiting == 1 })
        rig.time.advance(to: utc("2021-11-08T11:00:00Z"))    // the old end, while the write is held
        await rig.settle()
        #expect(rig.transport.calls.map(\.type) == ["stream.start"], "the stop went out at the old end")
        rig.store.overrideWrites.open()
        #expect(try await extend.value.contains("11:01:00"))
        let stop = await rig.scheduler.snapshot().next.first { $0.action == .stop }
        #expect(stop?.instant == utc("2021-11-08T11:01:00Z"))
        rig.time.advance(to: utc("2021-11-08T11:01:00Z"))
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.start", "stream.stop"] })
        await rig.stop()
    }

    // A skip whose write is under way when the start falls due: the start is not sent.
    @Test func aStartDueWhileItsSkipIsBeingWrittenIsNotSent() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:55:00Z"))
        await rig.settle()
        rig.store.batches.close()
        let skip = Task { try await rig.scheduler.skip(item: "show", who: "ops") }
        #expect(await rig.eventually { rig.store.batches.waiting == 1 })
        rig.time.advance(to: utc("2021-11-08T10:00:00Z"))
        try await Task.sleep(nanoseconds: 100_000_000)    // the loop's turn at the instant
        rig.store.batches.open()
        _ = try await skip.value
        await rig.settle()
        #expect(!rig.transport.calls.contains { $0.type == "stream.start" }, "\(rig.transport.calls.map(\.type))")
        #expect(await rig.state("t/show/start/site") == .cancelled)
        await rig.stop()
    }

    // A manual start while another item on the same target is still live past its planned end.
    @Test func aManualStartIsRefusedWhileAnotherItemIsStillLiveOnItsTarget() async throws {
        let rig = try await SchedulerRig(schedule: try backToBackSchedule(), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.start"] })
        await rig.settle()
        _ = try await rig.scheduler.skip(item: "late", who: "ops")   // to be started by hand
        rig.transport.answer(500)    // show's stop at 11:00 is refused and retried: show stays live
        rig.time.advance(to: utc("2021-11-08T11:00:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count >= 2 })
        do {
            _ = try await rig.scheduler.sendNow(item: "late", action: .start, again: false, by: "ops")
            Issue.record("a start beside a live item was accepted")
        } catch {
            #expect("\(error)".contains("'show' is still on air on site"), "\(error)")
        }
        rig.transport.answer(200)
        await rig.stop()
    }

    // A reload that keeps the item and its target but gives its templated target no stop request.
    @Test func aReloadThatDropsTheStopRequestOfALiveTargetIsRefused() async throws {
        func file(stop: Bool) throws -> Schedule {
            try load("""
                id: t
                title: T
                timezone: UTC
                targets:
                  site:
                    requests:
                      start: { method: POST, url: "http://127.0.0.1:9/start" }
                \(stop ? "      stop: { method: POST, url: \"http://127.0.0.1:9/stop\" }" : "")
                days:
                  - date: 2021-11-08
                    programme:
                      - { id: show, title: Show, start: "10:00", end: "11:00" }
                """)
        }
        let rig = try await SchedulerRig(schedule: try file(stop: true), at: utc("2021-11-08T10:30:00Z"))
        #expect(await rig.eventually { rig.transport.calls.count == 1 })
        await rig.settle()
        do {
            try await rig.scheduler.reload(try file(stop: false), file: "week.yaml")
            Issue.record("accepted")
        } catch {
            #expect("\(error)".contains("gives 'show' no stop call on 'site'"), "\(error)")
        }
        await rig.stop()
    }

    // An answer the journal could not record (disk full) is recorded once it can be, and a replan
    // meanwhile does not send the answered call again.
    @Test func anAnswerTheJournalRefusedIsRecordedLaterAndNotSentAgain() async throws {
        let rig = try await SchedulerRig(schedule: try oneItemSchedule(), at: utc("2021-11-08T09:59:00Z"))
        #expect(await rig.eventually { rig.transport.calls.map(\.type) == ["stream.prepare"] })
        await rig.settle()
        rig.transport.holdCalls()
        rig.time.advance(to: utc("2021-11-08T10:00:00Z"))
        #expect(await rig.eventually { rig.transport.onTheWire == 1 })
        rig.store.failWrites = true
        rig.transport.release()
        #expect(await rig.eventually { await rig.scheduler.snapshot().journalTrouble != nil })
        try? await rig.scheduler.reload(try oneItemSchedule(), file: "week.yaml")   // a replan while it is unrecorded
        rig.time.advance(to: utc("2021-11-08T10:00:05Z"))
        try await Task.sleep(nanoseconds: 300_000_000)
        rig.store.failWrites = false
        #expect(await rig.eventually {    // the outcome is written again once a second, on the manual clock
            rig.time.advance(by: 1)
            return await rig.state("t/show/start/site") == .delivered
        })
        await rig.settle()
        #expect(rig.transport.calls.map(\.type) == ["stream.prepare", "stream.start"])
        await rig.stop()
    }
}
