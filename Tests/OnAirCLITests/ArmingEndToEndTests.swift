import Foundation
import Testing
import OnAirModel
import OnAirDelivery
import OnAirJournal
import OnAirTestSupport

/// The real binary, its real journal and SIGKILL while a call is armed (SPEC 4): the call leaves
/// at its instant, or once after a restart past it, never twice under two ids and never early.
@Suite("Arming end to end: killed while a call is armed", .serialized)
struct ArmingEndToEndTests {
    func jobState(_ journalDirectory: String, _ job: String) async -> JobState? {
        guard let journal = try? SQLiteJournal(directory: journalDirectory, readOnly: true) else { return nil }
        return try? await journal.jobRecords()[JobID(job)!]?.state
    }

    /// Whether `job` is armed on disk now. The journal is opened once (a read-only pool sees each
    /// new commit) and only the armed rows are read: the armed window is two seconds, and opening
    /// the journal and reading every row on each poll missed it on a loaded CI machine.
    func isArmed(_ journal: inout SQLiteJournal?, _ journalDirectory: String, _ job: String) async -> Bool {
        if journal == nil { journal = try? SQLiteJournal(directory: journalDirectory, readOnly: true) }
        guard let journal, let id = JobID(job) else { return false }
        return (try? await journal.jobRecords(in: .armed, item: id.item).contains { $0.id == id }) ?? false
    }

    func eventually(_ timeout: TimeInterval, _ condition: () async -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return await condition()
    }

    @Test func killedWhileArmedTheCallLeavesAtItsInstantOrOnceAfterRestart() async throws {
        let receiver = try LoopbackReceiver()
        // item-0: prepare at +19 s, start at +20 s, stop at +30 s: room for a debug build to start and
        // restart on a machine busy with the other end-to-end suites.
        let config = try CLI.temporaryFile(nearSchedule(port: receiver.port, count: 1, offset: 20, length: 10))
        let state = (config as NSString).deletingLastPathComponent + "/state"
        // The daemon's log as a second witness of "armed": it is written once the armed record is on
        // disk, and stays, where the row is armed for two seconds only (a CI run under load missed it).
        let logPath = (config as NSString).deletingLastPathComponent + "/daemon.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        func loggedArmed(_ action: String) -> Bool {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").contains { $0.contains(" armed action=\(action) item=item-0") }
        }
        var daemon = try startDaemon(config: config, state: state, log: log)
        // 1. Killed while the prepare is armed, restarted before its instant: it goes at its instant.
        var journal: SQLiteJournal?
        #expect(await eventually(25) { await isArmed(&journal, state, "e2e/item-0/prepare/site") || loggedArmed("prepare") })
        kill(daemon.processIdentifier, SIGKILL)
        daemon.waitUntilExit()
        daemon = try startDaemon(config: config, state: state, log: log)
        // 2. Killed while the stop is armed (the start went out meanwhile), restarted after its
        // instant: it goes once, late. (The stop, 4 s after the start, leaves a restart room.)
        #expect(await eventually(20) { await isArmed(&journal, state, "e2e/item-0/stop/site") || loggedArmed("stop") })
        kill(daemon.processIdentifier, SIGKILL)
        daemon.waitUntilExit()
        try await Task.sleep(nanoseconds: 1_500_000_000)
        daemon = try startDaemon(config: config, state: state, log: log)
        defer { daemon.terminate(); daemon.waitUntilExit() }
        #expect(await waitFor(30) { receiver.calls().count >= 3 })
        try await Task.sleep(nanoseconds: 500_000_000)

        var seen: [String: [(arrival: Double, id: String, scheduled: Double)]] = [:]
        for request in receiver.calls() {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])
            let type = json["type"] as? String ?? ""
            let scheduled = try #require(ISO8601DateFormatter().date(from: json["timestamp"] as? String ?? ""))
            seen[type, default: []].append((request.arrival, request.headers["webhook-id"] ?? "", scheduled.timeIntervalSince1970))
        }
        for (type, calls) in seen {
            #expect(Set(calls.map(\.id)).count == 1, "\(type) arrived under \(Set(calls.map(\.id)).count) webhook-ids")
            for call in calls { #expect(call.arrival >= call.scheduled, "\(type) arrived \(call.scheduled - call.arrival) s early") }
        }
        #expect(seen["stream.prepare"]?.count == 1, "\(seen.mapValues(\.count))")
        #expect(seen["stream.start"]?.count == 1, "\(seen.mapValues(\.count))")
        #expect(seen["stream.stop"]?.count == 1, "\(seen.mapValues(\.count))")
        let prepare = try #require(seen["stream.prepare"]?.first)
        // Restarted about 2 s before its instant; a debug build on a busy machine takes seconds to be
        // ready, so the prepare may be late here: never early and never twice is what is checked.
        #expect(prepare.arrival - prepare.scheduled < 6, "the prepare, re-armed after the restart, was \(prepare.arrival - prepare.scheduled) s late")
        #expect(prepare.id == WebhookSigner.webhookID(job: JobID("e2e/item-0/prepare/site")!, send: 0))
        #expect(seen["stream.stop"]?.first?.id == WebhookSigner.webhookID(job: JobID("e2e/item-0/stop/site")!, send: 0))
        #expect(await jobState(state, "e2e/item-0/stop/site") == .delivered)
        #expect(await jobState(state, "e2e/item-0/start/site") == .delivered)
    }
}
