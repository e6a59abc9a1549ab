import Foundation
import OnAirModel
import OnAirScheduler
#if canImport(Glibc)
import Glibc
#endif

/// Routes one control request. Every answer is JSON: `{"ok":true,"message":…}`, a report, or
/// `{"ok":false,"error":…}` with 400 (bad request), 404 (unknown item or path), 409 (refused),
/// 422 (reload refused).
struct ControlAPI {
    let daemon: Daemon

    /// One request as the transport hands it over.
    struct Request: Sendable {
        var method: String
        /// The path without the query.
        var path: String
        var query: [String: String]
        var headers: [String: String]
        /// Who is connected, from the socket itself (SO_PEERCRED), when the transport knows.
        var peerUID: UInt32?
        var peerPID: Int32?
    }

    struct Reply: Sendable {
        var status: Int
        var body: Data
        var close = false
    }

    struct Answer: Encodable {
        var ok: Bool
        var message: String?
        var error: String?
        var errors: [String]?
    }

    static func json(_ value: some Encodable, status: Int = 200) -> Reply {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Reply(status: status, body: data + Data("\n".utf8))
    }

    static func refuse(_ status: Int, _ message: String) -> Reply {
        json(Answer(ok: false, error: message), status: status)
    }

    /// Who asked, for the journal: the uid the kernel reports for the connection, and the name
    /// the client gives (not verified) when it gives one.
    static func who(_ request: Request) -> String {
        let claimed = request.headers["x-onair-user"].map { String($0.prefix(64)) }
        switch (request.peerUID, claimed) {
        case (let uid?, let name?): return "uid \(uid) (\(name))"
        case (let uid?, nil): return "uid \(uid)"
        case (nil, let name?): return "\(name) (unverified)"
        case (nil, nil): return "an unknown client"
        }
    }

    /// No endpoint takes a body; a large one is refused unread and the connection closed, so
    /// that reading it cannot take time from the scheduler.
    static let maximumBody = 64 * 1024

    func handle(_ request: Request) async -> Reply {
        if let length = request.headers["content-length"].flatMap(Int.init), length > Self.maximumBody {
            var reply = Self.refuse(413, "request body too large (at most \(Self.maximumBody) bytes)")
            reply.close = true
            return reply
        }
        let parts = request.path.split(separator: "/").map(String.init)
        let who = Self.who(request)
        func query(_ name: String) -> String? { request.query[name] }
        let scheduler = daemon.scheduler
        switch (request.method, parts) {
        case ("GET", ["v1", "status"]):
            return Self.json(await status())
        case ("GET", ["v1", "next"]):
            guard let n = Self.number(query("n"), default: 10, in: 1...1000) else { return Self.refuse(400, "n must be a number from 1 to 1000") }
            let report = await status(nextCount: n)
            return Self.json(["jobs": report.next])
        case ("GET", ["v1", "history"]):
            guard let limit = Self.number(query("limit"), default: 50, in: 1...10_000) else {
                return Self.refuse(400, "limit must be a number from 1 to 10000")
            }
            return await history(item: query("item"), limit: limit)
        case ("POST", ["v1", "hold"]):
            return await Self.answer { () async throws(Scheduler.Refusal) in
                try await scheduler.hold(by: who)
                return "held: no job fires until resume"
            }
        case ("POST", ["v1", "resume"]):
            return await Self.answer { () async throws(Scheduler.Refusal) in
                try await scheduler.resume(by: who)
                return "resumed: due jobs follow the recovery rules"
            }
        case ("POST", ["v1", "reload"]):
            switch await daemon.reload() {
            case .success(let schedule):
                return Self.json(Answer(ok: true, message: "schedule \(schedule.id) in force: \(Planner.plan(schedule).count) jobs"))
            case .failure(let error):
                return Self.json(Answer(ok: false, error: "reload refused; the running schedule stays in force",
                                        errors: error.diagnostics.map(\.description)), status: 422)
            }
        case ("POST", _) where parts.count == 4 && parts[0] == "v1" && parts[1] == "items":
            return await itemCommand(item: parts[2], verb: parts[3], query: request.query, who: who)
        default:
            return Self.refuse(404, "no such endpoint: \(request.method.prefix(10)) \(request.path.prefix(100))")
        }
    }

    /// A query parameter that must be a whole number in `range`; nil when it is given but is not
    /// one (the request is then answered 400, never served with a default).
    static func number(_ text: String?, default value: Int, in range: ClosedRange<Int>) -> Int? {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else { return nil }
        return n
    }

    /// 200 with the message, or the refusal with its status: 404 unknown item, 409 refused by a
    /// rule, 503 when the journal could not take the change (nothing changed).
    static func answer(_ body: () async throws(Scheduler.Refusal) -> String) async -> Reply {
        do {
            return json(Answer(ok: true, message: try await body()))
        } catch {
            switch error.kind {
            case .unknown: return refuse(404, error.description)
            case .refused: return refuse(409, error.description)
            case .journal: return refuse(503, error.description)
            }
        }
    }

    private func itemCommand(item: String, verb: String, query: [String: String], who: String) async -> Reply {
        let scheduler = daemon.scheduler
        switch verb {
        case "start", "stop":
            do {
                let outcome = try await scheduler.sendNow(item: item, action: verb == "start" ? .start : .stop,
                                                          again: verb == "stop" || query["again"] == "true", by: who)
                // 502: the command was carried out, but a platform did not take the call.
                return outcome.delivered ? Self.json(Answer(ok: true, message: outcome.message))
                                         : Self.json(Answer(ok: false, error: outcome.message), status: 502)
            } catch {
                return await Self.answer { () throws(Scheduler.Refusal) in throw error }
            }
        case "skip":
            return await Self.answer { () async throws(Scheduler.Refusal) in try await scheduler.skip(item: item, who: who) }
        case "extend", "delay":
            guard let text = query["by"], let seconds = DurationText.seconds(text), seconds > 0 else {
                return Self.refuse(400, "by must be a duration such as 10m")
            }
            return await Self.answer { () async throws(Scheduler.Refusal) in
                verb == "extend" ? try await scheduler.extend(item: item, by: seconds, who: who)
                                 : try await scheduler.delay(item: item, by: seconds, who: who)
            }
        default:
            return Self.refuse(404, "no such action '\(verb.prefix(20))'")
        }
    }

    /// Attempts of the journal, newest first; an item the schedule does not know is a 404.
    private func history(item: String?, limit: Int) async -> Reply {
        let zone = await daemon.scheduler.schedule.timeZone
        if let item, await daemon.scheduler.schedule.item(id: item) == nil {
            return Self.refuse(404, "unknown item '\(item.prefix(100))'")
        }
        do {
            return Self.json(["attempts": try await HistoryEntry.read(daemon.journal, item: item, limit: limit, zone: zone)])
        } catch {
            return Self.refuse(500, "cannot read the journal: \(error)")
        }
    }

    func status(nextCount: Int = 10) async -> StatusReport {
        let snapshot = await daemon.scheduler.snapshot(nextCount: nextCount)
        let events = (try? await daemon.journal.events(limit: 200)) ?? []
        return StatusReport.make(.init(snapshot: snapshot, records: snapshot.records, events: events,
                                       overrides: await daemon.scheduler.currentOverrides, now: daemon.time.now(), pid: getpid(),
                                       startedAt: daemon.startedAt, scheduleFile: daemon.options.configPath))
    }
}

