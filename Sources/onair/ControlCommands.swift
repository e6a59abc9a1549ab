import ArgumentParser
import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirDaemon

/// Talks to the daemon's control socket over HTTP/1.1 (libcurl with CURLOPT_UNIX_SOCKET_PATH).
struct ControlClient {
    let socket: String

    enum Reply {
        case answer(status: Int, body: Data)
        /// Nobody listens on the socket: the daemon is not running.
        case down(String)
        /// The socket is there but this user may not connect to it.
        case denied
    }

    func call(_ method: String, _ path: String) async -> Reply {
        // Asked first with a bare connect(2): curl says "Couldn't connect to server" alike for a
        // daemon that is down and for a user outside the socket's group.
        switch ControlSocketProbe.probe(socket) {
        case .absent: return .down("no control socket at \(socket)")
        case .stale: return .down("nobody listens on control socket \(socket)")
        case .permissionDenied: return .denied
        case .failed(let why): return .down("control socket \(socket): \(why)")
        case .listening: break
        }
        let client = CurlClient(maxConnectionsPerHost: 1)
        defer { client.shutdown() }
        var request = HTTPRequest(method: method, url: "http://localhost" + path, timeout: 60, connectTimeout: 2)
        request.unixSocket = socket
        request.maximumResponseBytes = 64 * 1024 * 1024
        // The daemon reads our uid from the socket (SO_PEERCRED); the name is only a label.
        if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty {
            request.headers = [.init("X-OnAir-User", user)]
        }
        let result = await client.perform(request)
        switch result.kind {
        case .response(let response): return .answer(status: response.status, body: Data(response.body))
        case .failure(_, let message), .notSent(let message): return .down("control socket \(socket): \(message)")
        }
    }

    /// The one line and exit status for a daemon that cannot be reached: 3 when it is not
    /// running, 1 when this user may not use its socket.
    func unreachable(_ reply: Reply) -> ExitCode {
        if case .down(let why) = reply {
            Terminal.error("onair: the daemon is not running (\(why))")
            return ExitCode(ExitStatus.notRunning)
        }
        Terminal.error("onair: permission denied on control socket \(socket) (members of its group may use it)")
        return ExitCode(ExitStatus.failed)
    }

    /// For commands that change something: prints the message or the refusal; exit 0, 1 or 3.
    func act(_ method: String, _ path: String, json: Bool = false) async throws {
        let reply = await call(method, path)
        guard case .answer(let status, let body) = reply else { throw unreachable(reply) }
        if json { Terminal.out(String(decoding: body, as: UTF8.self)) }
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        if status == 200 {
            if !json { Terminal.out(object?["message"] as? String ?? "done") }
            return
        }
        if !json {
            Terminal.error("onair: " + (object?["error"] as? String ?? "HTTP \(status)"))
            for line in object?["errors"] as? [String] ?? [] { Terminal.error(line) }
        }
        throw ExitCode(ExitStatus.failed)
    }
}

func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
    try JSONDecoder().decode(type, from: data)
}

/// A stopped daemon's journal, read-only, or the one line saying why it cannot be read.
enum OfflineJournal {
    case found(SQLiteJournal, path: String)
    case missing(String)
    case unreadable(String)

    static func open(_ state: String) -> OfflineJournal {
        let path = state + "/" + SQLiteJournal.fileName
        var info = stat()
        if stat(path, &info) != 0 {
            // "Not there" only when it is not there: a directory we may not search is a permission problem.
            let journalError = errno
            guard journalError == ENOENT else { return .unreadable("cannot read the journal \(path): \(String(cString: strerror(journalError)))") }
            if stat(state, &info) != 0 {
                let stateError = errno
                if stateError == ENOENT { return .missing("no state directory \(state)") }
                return .unreadable("cannot read the state directory \(state): \(String(cString: strerror(stateError)))")
            }
            return .missing("no journal in \(state)")
        }
        guard access(path, R_OK) == 0 else { return .unreadable("cannot read the journal \(path): \(String(cString: strerror(errno)))") }
        do {
            return .found(try SQLiteJournal(directory: state, readOnly: true), path: path)
        } catch {
            return .unreadable("cannot read the journal \(path): \(error)")
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Daemon up or down, schedule, held or not, on air now, next jobs, failures, last reload.",
        discussion: "Exit status 0 healthy, 1 degraded (each reason is listed), 3 daemon not running (then read from the state directory), 4 status unknown (permission denied)."
    )
    @OptionGroup var locations: Locations
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let report: StatusReport
        switch await ControlClient(socket: locations.socket).call("GET", "/v1/status") {
        case .answer(200, let body):
            report = try decode(StatusReport.self, body)
        case .answer(let status, _):
            Terminal.error("onair: the daemon answered HTTP \(status)")
            throw ExitCode(ExitStatus.failed)
        case .denied:
            Terminal.error("onair: permission denied on control socket \(locations.socket) (members of its group may use it)")
            throw ExitCode(ExitStatus.unknown)
        case .down:
            switch OfflineJournal.open(locations.state) {
            case .found(let journal, let path): report = await offlineStatus(journal, path: path)
            case .missing(let why):
                report = StatusReport.make(.init(snapshot: nil, records: RecordTable(), events: [], overrides: [:], now: Date(), journal: why))
            case .unreadable(let why):
                Terminal.error("onair: the daemon is not running (no one listens on \(locations.socket)) and " + why)
                throw ExitCode(ExitStatus.unknown)
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Terminal.out(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            Terminal.out(report.text())
        }
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }
}

/// Status from the journal alone, read-only, for a daemon that is down.
func offlineStatus(_ journal: SQLiteJournal, path: String) async -> StatusReport {
    let records = RecordTable(((try? await journal.jobRecords()) ?? [:]).values)
    let events = (try? await journal.events(limit: 200)) ?? []
    let overrides = (try? await journal.overrides()) ?? [:]
    let settings = (try? await journal.settings()) ?? [:]
    return StatusReport.make(.init(snapshot: nil, records: records, events: events, overrides: overrides, settings: settings,
                                   now: Date(), scheduleFile: settings[JournalSetting.scheduleFile], journal: "from the journal \(path)"))
}

struct NextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "next", abstract: "The upcoming jobs, with countdown.")
    @OptionGroup var locations: Locations
    @Option(name: .short, help: "How many.") var n: Int = 10
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard (1...1000).contains(n) else { throw ValidationError("-n must be between 1 and 1000") }
    }

    func run() async throws {
        let client = ControlClient(socket: locations.socket)
        let reply = await client.call("GET", "/v1/next?n=\(n)")
        guard case .answer(let status, let body) = reply else { throw client.unreachable(reply) }
        guard status == 200 else {
            Terminal.error("onair: the daemon answered HTTP \(status)")
            throw ExitCode(ExitStatus.failed)
        }
        if json { Terminal.out(String(decoding: body, as: UTF8.self)); return }
        let jobs = try decode([String: [StatusReport.Next]].self, body)["jobs"] ?? []
        if jobs.isEmpty { Terminal.out("no pending jobs") }
        for job in jobs {
            let when = job.in_seconds < 0 ? "overdue \(StatusReport.span(-job.in_seconds))" : "in \(StatusReport.span(job.in_seconds))"
            Terminal.out("\(job.at_local)  \(when.padding(toLength: 14, withPad: " ", startingAt: 0))  \(job.item)  \(job.action) -> \(job.target)")
        }
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Delivered and failed deliveries: times, attempts, HTTP status (from the journal when the daemon is down).")
    @OptionGroup var locations: Locations
    @Argument(help: "Only this item.") var item: String?
    @Option(help: "At most this many attempts, newest first.") var limit: Int = 50
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
    }

    func run() async throws {
        var path = "/v1/history?limit=\(limit)"
        if let item { path += "&item=\(item.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? item)" }
        let client = ControlClient(socket: locations.socket)
        let entries: [HistoryEntry]
        switch await client.call("GET", path) {
        case .answer(200, let body):
            entries = try decode([String: [HistoryEntry]].self, body)["attempts"] ?? []
        case .answer(let status, let body):
            let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            Terminal.error("onair: " + (object?["error"] as? String ?? "the daemon answered HTTP \(status)"))
            throw ExitCode(ExitStatus.failed)
        case .denied:
            throw client.unreachable(.denied)
        case .down(let why):
            entries = try await offlineHistory(why: why)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Terminal.out(String(decoding: try encoder.encode(["attempts": entries]), as: UTF8.self))
            return
        }
        if entries.isEmpty { Terminal.out("no deliveries yet") }
        for e in entries {
            if e.outcome == "missed" {
                Terminal.out("\(e.at_local ?? e.at)  \(e.job)  missed  not sent\(e.detail.map { "  \($0)" } ?? "")")
                continue
            }
            let result = e.status.map { "HTTP \($0)" } ?? (e.error ?? "-")
            Terminal.out("\(e.at_local ?? e.at)  \(e.job)  #\(e.attempt)\(e.send > 0 ? " (send \(e.send))" : "")  \(e.outcome)  \(result)  \(e.total_ms) ms\(e.detail.map { "  \($0)" } ?? "")")
        }
    }

    /// The journal of a daemon that is down; an item it has no record of is an error, not "no deliveries".
    private func offlineHistory(why: String) async throws -> [HistoryEntry] {
        switch OfflineJournal.open(locations.state) {
        case .missing(let what):
            Terminal.error("onair: the daemon is not running (\(why)) and there is \(what)")
            throw ExitCode(ExitStatus.notRunning)
        case .unreadable(let what):
            Terminal.error("onair: " + what)
            throw ExitCode(ExitStatus.failed)
        case .found(let journal, _):
            let zone = (try await journal.settings())[JournalSetting.timeZone].flatMap(TimeZone.init(identifier:)) ?? .gmt
            let entries = try await HistoryEntry.read(journal, item: item, limit: limit, zone: zone)
            if let item, entries.isEmpty, !(try await journal.jobRecords()).keys.contains(where: { $0.item == item }) {
                Terminal.error("onair: the journal in \(locations.state) has no record of item '\(item)'")
                throw ExitCode(ExitStatus.failed)
            }
            return entries
        }
    }
}

/// A positive duration argument, else a usage error (exit 2).
func validateDuration(_ text: String) throws {
    guard let seconds = DurationText.seconds(text), seconds > 0 else {
        throw ValidationError("'\(text)' is not a duration; write it like 90s, 10m or 1h30m")
    }
}

/// `onair start|stop|skip ITEM`.
struct ItemActionCommand {
    static func run(_ locations: Locations, _ item: String, _ verb: String, query: String = "") async throws {
        let id = item.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-"))) ?? item
        try await ControlClient(socket: locations.socket).act("POST", "/v1/items/\(id)/\(verb)\(query)")
    }
}

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Deliver the item's start now, by hand.")
    @OptionGroup var locations: Locations
    @Argument var item: String
    @Flag(help: "Send again after a delivered start (a new send with a new webhook-id).") var again = false
    func run() async throws { try await ItemActionCommand.run(locations, item, "start", query: again ? "?again=true" : "") }
}

struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Deliver the item's stop now, by hand.")
    @OptionGroup var locations: Locations
    @Argument var item: String
    func run() async throws { try await ItemActionCommand.run(locations, item, "stop") }
}

struct SkipCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "skip", abstract: "Cancel the item's pending jobs (refused while it is on air).")
    @OptionGroup var locations: Locations
    @Argument var item: String
    func run() async throws { try await ItemActionCommand.run(locations, item, "skip") }
}

struct ExtendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "extend", abstract: "Move the item's stop later (it runs over).")
    @OptionGroup var locations: Locations
    @Argument var item: String
    @Argument(help: "Like 10m or 1h30m.") var duration: String
    func validate() throws { try validateDuration(duration) }
    func run() async throws { try await ItemActionCommand.run(locations, item, "extend", query: "?by=\(duration)") }
}

struct DelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delay", abstract: "Shift the item's prepare, start and stop later (it begins late).")
    @OptionGroup var locations: Locations
    @Argument var item: String
    @Argument(help: "Like 10m or 1h30m.") var duration: String
    func validate() throws { try validateDuration(duration) }
    func run() async throws { try await ItemActionCommand.run(locations, item, "delay", query: "?by=\(duration)") }
}

struct HoldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hold", abstract: "Pause all firing.")
    @OptionGroup var locations: Locations
    func run() async throws { try await ControlClient(socket: locations.socket).act("POST", "/v1/hold") }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Go on; due jobs are handled as after downtime.")
    @OptionGroup var locations: Locations
    func run() async throws { try await ControlClient(socket: locations.socket).act("POST", "/v1/resume") }
}

struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Re-read the schedule file (as SIGHUP); returns when it is in force (0) or refused (1).")
    @OptionGroup var locations: Locations
    func run() async throws { try await ControlClient(socket: locations.socket).act("POST", "/v1/reload") }
}
