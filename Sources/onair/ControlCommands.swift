import ArgumentParser
import Foundation
import OnAirCore

/// Talks to the daemon's control socket over HTTP/1.1 (libcurl with CURLOPT_UNIX_SOCKET_PATH).
struct ControlClient {
    let socket: String

    enum Reply {
        case answer(status: Int, body: Data)
        /// Nobody listens on the socket: the daemon is not running.
        case down(String)
    }

    func call(_ method: String, _ path: String) async -> Reply {
        let client = CurlClient(maxConnectionsPerHost: 1)
        defer { client.shutdown() }
        var request = HTTPRequest(method: method, url: "http://localhost" + path, timeout: 30, connectTimeout: 2)
        request.unixSocket = socket
        request.maximumResponseBytes = 64 * 1024 * 1024
        // The daemon reads our uid from the socket (SO_PEERCRED); the name is only a label.
        if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty {
            request.headers = [.init("X-OnAir-User", user)]
        }
        let result = await client.perform(request)
        switch result.kind {
        case .response(let response): return .answer(status: response.status, body: Data(response.body))
        case .failure(_, let message): return .down(message)
        }
    }

    /// For commands that change something: prints the message or the refusal; exit 0 or 1.
    func act(_ method: String, _ path: String, json: Bool = false) async throws {
        switch await call(method, path) {
        case .down(let why):
            Terminal.error("onair: the daemon is not running (control socket \(socket): \(why))")
            throw ExitCode(ExitStatus.failed)
        case .answer(let status, let body):
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
}

func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
    try JSONDecoder().decode(type, from: data)
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Daemon up or down, schedule, held or not, on air now, next jobs, failures, last reload.",
        discussion: "Exit status 0 healthy, 1 degraded (an unresolved failure of the last 24 h, or the last reload refused), 3 daemon not running (then read from the state directory)."
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
        case .down:
            report = await offlineStatus(state: locations.state)
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
func offlineStatus(state: String) async -> StatusReport {
    let journal = FileManager.default.fileExists(atPath: state + "/" + SQLiteJournal.fileName)
        ? try? SQLiteJournal(directory: state, readOnly: true) : nil
    let records = (try? await journal?.jobRecords()) ?? [:]
    let events = (try? await journal?.events(limit: 200)) ?? []
    let overrides = (try? await journal?.overrides()) ?? [:]
    return StatusReport.make(snapshot: nil, records: records, events: events, overrides: overrides, now: Date(),
                             running: false, pid: nil, startedAt: nil, scheduleFile: nil)
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
        switch await ControlClient(socket: locations.socket).call("GET", "/v1/next?n=\(n)") {
        case .answer(200, let body):
            if json { Terminal.out(String(decoding: body, as: UTF8.self)); return }
            let jobs = try decode([String: [StatusReport.Next]].self, body)["jobs"] ?? []
            if jobs.isEmpty { Terminal.out("no pending jobs") }
            for job in jobs {
                Terminal.out("\(job.at_local)  in \(StatusReport.span(job.in_seconds).padding(toLength: 8, withPad: " ", startingAt: 0))  \(job.item)  \(job.action) -> \(job.target)")
            }
        case .answer(let status, _):
            Terminal.error("onair: the daemon answered HTTP \(status)")
            throw ExitCode(ExitStatus.failed)
        case .down(let why):
            Terminal.error("onair: the daemon is not running (\(why))")
            throw ExitCode(ExitStatus.failed)
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

    func run() async throws {
        var path = "/v1/history?limit=\(limit)"
        if let item { path += "&item=\(item.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? item)" }
        let entries: [HistoryEntry]
        switch await ControlClient(socket: locations.socket).call("GET", path) {
        case .answer(200, let body):
            entries = try decode([String: [HistoryEntry]].self, body)["attempts"] ?? []
        case .answer(let status, _):
            Terminal.error("onair: the daemon answered HTTP \(status)")
            throw ExitCode(ExitStatus.failed)
        case .down:
            guard FileManager.default.fileExists(atPath: locations.state + "/" + SQLiteJournal.fileName),
                  let journal = try? SQLiteJournal(directory: locations.state, readOnly: true) else {
                Terminal.error("onair: the daemon is not running and \(locations.state) holds no journal")
                throw ExitCode(ExitStatus.failed)
            }
            entries = try await journal.attempts(item: item, limit: limit).map(HistoryEntry.init)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Terminal.out(String(decoding: try encoder.encode(["attempts": entries]), as: UTF8.self))
            return
        }
        if entries.isEmpty { Terminal.out("no deliveries yet") }
        for e in entries {
            let result = e.status.map { "HTTP \($0)" } ?? (e.error ?? "-")
            Terminal.out("\(e.at)  \(e.job)  #\(e.attempt)\(e.send > 0 ? " (send \(e.send))" : "")  \(e.outcome)  \(result)  \(e.total_ms) ms\(e.detail.map { "  \($0)" } ?? "")")
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
