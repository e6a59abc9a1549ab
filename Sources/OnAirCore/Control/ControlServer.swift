import FlyingFox
import FlyingSocks
import Foundation
import Logging
import ServiceLifecycle

/// The control API: HTTP/1.1 with JSON on a Unix domain socket (mode 0660), so the `onair`
/// command and `curl --unix-socket` can watch and steer the daemon. See docs/control-api.md.
public struct ControlServer: Service {
    let daemon: Daemon
    let socketPath: String

    public init(daemon: Daemon, socketPath: String) {
        self.daemon = daemon
        self.socketPath = socketPath
    }

    public func run() async throws {
        let directory = (socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        unlink(socketPath)  // a stale socket of a previous run
        let daemon = self.daemon
        let server = HTTPServer(address: sockaddr_un.unix(path: socketPath), timeout: 5, logger: .disabled,
                                handler: ClosureHTTPHandler { request in await ControlAPI(daemon: daemon).handle(request) })
        let path = socketPath
        let logger = daemon.logger
        Task {
            try await server.waitUntilListening()
            chmod(path, 0o660)
            logger.info("control socket listening", metadata: ["socket": "\(path)"])
        }
        defer { unlink(path) }
        do {
            try await cancelWhenGracefulShutdown {
                try await server.run()
            }
        } catch {
            // At graceful shutdown FlyingFox ends with a cancellation or "disconnected": the socket
            // closes with the daemon. Any other end is a failure of the service.
            if !(error is CancellationError) && !Task.isShuttingDownGracefully { throw error }
        }
    }
}

/// Routes one control request. Every answer is JSON: `{"ok":true,"message":…}`, a report, or
/// `{"ok":false,"error":…}` with 400 (bad request), 404 (unknown item or path), 409 (refused),
/// 422 (reload refused).
struct ControlAPI {
    let daemon: Daemon

    struct Answer: Encodable {
        var ok: Bool
        var message: String?
        var error: String?
        var errors: [String]?
    }

    static func json(_ value: some Encodable, status: HTTPStatusCode = .ok) -> FlyingFox.HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return FlyingFox.HTTPResponse(statusCode: status, headers: [.contentType: "application/json"], body: data + Data("\n".utf8))
    }

    static func refuse(_ status: HTTPStatusCode, _ message: String) -> FlyingFox.HTTPResponse {
        json(Answer(ok: false, error: message), status: status)
    }

    /// No endpoint takes a body; a large one is refused unread and the connection closed, so
    /// that reading it cannot take time from the scheduler.
    static let maximumBody = 64 * 1024

    func handle(_ request: FlyingFox.HTTPRequest) async -> FlyingFox.HTTPResponse {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.maximumBody {
            var response = Self.refuse(HTTPStatusCode(413, phrase: "Content Too Large"), "request body too large (at most \(Self.maximumBody) bytes)")
            response.headers[HTTPHeader.connection] = "close"
            return response
        }
        let parts = request.path.split(separator: "/").map(String.init)
        let who = request.headers[HTTPHeader("X-OnAir-User")].map { String($0.prefix(64)) } ?? "an unnamed client"
        func query(_ name: String) -> String? { request.query.first { $0.name == name }?.value }
        let scheduler = daemon.scheduler
        switch (request.method, parts) {
        case (.GET, ["v1", "status"]):
            return Self.json(await status())
        case (.GET, ["v1", "next"]):
            let n = query("n").flatMap(Int.init) ?? 10
            guard (1...1000).contains(n) else { return Self.refuse(.badRequest, "n must be between 1 and 1000") }
            let report = await status(nextCount: n)
            return Self.json(["jobs": report.next])
        case (.GET, ["v1", "history"]):
            let limit = query("limit").flatMap(Int.init) ?? 50
            guard (1...10_000).contains(limit) else { return Self.refuse(.badRequest, "limit must be between 1 and 10000") }
            do {
                return Self.json(["attempts": try await daemon.journal.attempts(item: query("item"), limit: limit).map(HistoryEntry.init)])
            } catch {
                return Self.refuse(.internalServerError, "cannot read the journal: \(error)")
            }
        case (.POST, ["v1", "hold"]):
            await scheduler.hold(by: who)
            return Self.json(Answer(ok: true, message: "held: no job fires until resume"))
        case (.POST, ["v1", "resume"]):
            await scheduler.resume(by: who)
            return Self.json(Answer(ok: true, message: "resumed: due jobs follow the recovery rules"))
        case (.POST, ["v1", "debug", "stall"]) where ProcessInfo.processInfo.environment["ONAIR_DEBUG_STALL"] == "1":
            let seconds = min(60, query("seconds").flatMap(Double.init) ?? 5)
            Task { await scheduler.stall(seconds: seconds) }
            return Self.json(Answer(ok: true, message: "scheduler stalls for \(seconds) s"))
        case (.POST, ["v1", "reload"]):
            switch await daemon.reload() {
            case .success(let schedule):
                return Self.json(Answer(ok: true, message: "schedule \(schedule.id) in force: \(Planner.plan(schedule).count) jobs"))
            case .failure(let error):
                return Self.json(Answer(ok: false, error: "reload refused; the running schedule stays in force",
                                        errors: error.diagnostics.map(\.description)), status: .unprocessableContent)
            }
        case (.POST, _) where parts.count == 4 && parts[0] == "v1" && parts[1] == "items":
            let item = parts[2], verb = parts[3]
            do {
                let message: String
                switch verb {
                case "start": message = try await scheduler.sendNow(item: item, action: .start, again: query("again") == "true", by: who)
                case "stop": message = try await scheduler.sendNow(item: item, action: .stop, again: true, by: who)
                case "skip": message = try await scheduler.skip(item: item, who: who)
                case "extend", "delay":
                    guard let text = query("by"), let seconds = DurationText.seconds(text), seconds > 0 else {
                        return Self.refuse(.badRequest, "by must be a duration such as 10m")
                    }
                    message = verb == "extend" ? try await scheduler.extend(item: item, by: seconds, who: who)
                                               : try await scheduler.delay(item: item, by: seconds, who: who)
                default:
                    return Self.refuse(.notFound, "no such action '\(verb.prefix(20))'")
                }
                return Self.json(Answer(ok: true, message: message))
            } catch let refusal as Scheduler.Refusal {
                return Self.refuse(refusal.unknown ? .notFound : .conflict, refusal.description)
            } catch {
                return Self.refuse(.internalServerError, "\(error)")
            }
        default:
            return Self.refuse(.notFound, "no such endpoint: \(request.method.rawValue) \(request.path.prefix(100))")
        }
    }

    func status(nextCount: Int = 10) async -> StatusReport {
        let snapshot = await daemon.scheduler.snapshot(nextCount: nextCount)
        let events = (try? await daemon.journal.events(limit: 200)) ?? []
        return StatusReport.make(snapshot: snapshot, records: snapshot.records, events: events,
                                 overrides: await daemon.scheduler.currentOverrides, now: Date(), running: true,
                                 pid: getpid(), startedAt: daemon.startedAt, scheduleFile: daemon.options.configPath)
    }
}

/// One attempt as `onair history` shows it.
public struct HistoryEntry: Codable, Sendable {
    public var job: String
    public var target: String
    public var webhook_id: String
    public var send: Int
    public var attempt: Int
    public var at: String
    public var status: Int?
    public var error: String?
    public var total_ms: Int
    public var outcome: String
    public var detail: String?

    public init(_ a: AttemptRecord) {
        job = a.job
        target = a.target
        webhook_id = a.webhookID
        send = a.send
        attempt = a.attempt
        at = WallClock.utcText(a.startedAt)
        status = a.status
        error = a.error
        total_ms = Int((a.totalTime * 1000).rounded())
        outcome = a.outcome
        detail = a.detail
    }
}
