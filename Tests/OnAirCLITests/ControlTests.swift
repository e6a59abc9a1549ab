import Foundation
import Testing
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
import OnAirTestSupport

/// A running daemon with its own state, socket and receiver, driven through the CLI.
final class ControlRig: @unchecked Sendable {
    let receiver: LoopbackReceiver
    let dir: String
    let config: String
    var daemon: Process
    let daemonArguments: [String]
    var socket: String { dir + "/control.sock" }
    var state: String { dir + "/state" }

    /// `items`: (id, seconds from now to start, seconds long).
    /// `timezone`: the schedule's (item times are written with the zone's own offset);
    /// `targetPath`: the receiver path the target calls (`status/410` answers 410).
    init(items: [(String, Double, Int)], leadTime: Int = 0, timezone: String = "UTC", targetPath: String = "ok",
         daemonArguments: [String] = []) throws {
        self.daemonArguments = daemonArguments
        receiver = try LoopbackReceiver()
        let now = Date().timeIntervalSince1970.rounded(.up)
        let zone = TimeZone(identifier: timezone) ?? TimeZone(secondsFromGMT: 0)!
        func formatted(_ t: Double, _ pattern: String) -> String {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = zone
            formatter.dateFormat = pattern
            return formatter.string(from: Date(timeIntervalSince1970: t))
        }
        /// A time of day with the offset the zone uses at that instant, so validation accepts it.
        func clock(_ t: Double) -> String { formatted(t, "HH:mm:ssxxx") }
        var yaml = """
        id: ctl
        title: Control
        timezone: \(timezone)
        lead_time: \(leadTime)s
        targets:
          site:
            url: http://127.0.0.1:\(receiver.port)/\(targetPath)/site
            secret: env:E2E_SECRET
        days:

        """
        // Each item under its own day in the zone: a run minutes before midnight has items after it.
        let byDay = Dictionary(grouping: items) { formatted(now + $0.1, "yyyy-MM-dd") }
        for date in byDay.isEmpty ? [formatted(now + 60, "yyyy-MM-dd")] : byDay.keys.sorted() {
            yaml += "  - date: \(date)\n    programme:\n"
            for (id, offset, length) in byDay[date] ?? [] {
                yaml += "      - { id: \(id), title: \"Item \(id)\", start: \"\(clock(now + offset))\", duration: \(length)s }\n"
            }
        }
        config = try CLI.temporaryFile(yaml)
        dir = (config as NSString).deletingLastPathComponent
        daemon = try ControlRig.launch(config: config, dir: dir, arguments: daemonArguments)
        _ = waitUntil(10) { FileManager.default.fileExists(atPath: self.socket) }
    }

    static func launch(config: String, dir: String, arguments: [String] = []) throws -> Process {
        try startDaemon(config: config, state: dir + "/state", socket: dir + "/control.sock", arguments: arguments)
    }

    func restart() throws {
        stop()
        daemon = try ControlRig.launch(config: config, dir: dir, arguments: daemonArguments)
        _ = waitUntil(10) { FileManager.default.fileExists(atPath: self.socket) }
    }

    func stop() {
        if daemon.isRunning {
            daemon.terminate()
            daemon.waitUntilExit()
        }
    }

    deinit { stop() }

    func onair(_ args: String...) throws -> CLI.Result {
        try CLI.run(args + ["--socket", socket, "--state", state])
    }

    func calls() -> [String] {
        receiver.calls().compactMap { request in
            guard let json = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any] else { return nil }
            return "\((json["data"] as? [String: Any])?["item"] as? String ?? "") \(json["type"] as? String ?? "")"
        }
    }

    func waitUntil(_ timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}

@Suite("Operator control through the CLI and the control socket", .serialized)
struct ControlTests {
    @Test func statusNextAndHistoryWithTheirJSONShapes() throws {
        let rig = try ControlRig(items: [("a", 600, 60), ("b", 1200, 60)])
        let status = try rig.onair("status")
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains(": running (pid "))
        #expect(status.stdout.contains("  Next:     "))
        let json = try rig.onair("status", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["daemon"] as? String == "running")
        #expect(object?["degraded"] as? Bool == false)
        #expect((object?["next"] as? [[String: Any]])?.first?["job"] as? String == "ctl/a/start/site")
        for key in ["version", "pid", "schedule_file", "held", "on_air", "failures", "overrides", "uptime_seconds"] {
            #expect(object?[key] != nil, "status JSON lacks \(key)")
        }
        let next = try rig.onair("next", "-n", "3", "--json")
        let jobs = (try JSONSerialization.jsonObject(with: Data(next.stdout.utf8)) as? [String: Any])?["jobs"] as? [[String: Any]]
        #expect(jobs?.count == 3)
        #expect(try rig.onair("next", "-n", "0").status == 2)
        #expect(try rig.onair("history").stdout.contains("no deliveries yet"))
    }

    @Test func startStopByHandAndTheirRefusals() throws {
        let rig = try ControlRig(items: [("a", 600, 60)])
        let start = try rig.onair("start", "a")
        #expect(start.status == 0, "\(start.stderr)")
        #expect(rig.waitUntil(5) { rig.calls() == ["a stream.start"] })
        let again = try rig.onair("start", "a")
        #expect(again.status == 1)
        #expect(again.stderr == "onair: 'a' was already started; use --again to send the start once more\n")
        #expect(try rig.onair("start", "a", "--again").status == 0)
        #expect(rig.waitUntil(5) { rig.calls().count == 2 })
        let ids = rig.receiver.calls().compactMap { $0.headers["webhook-id"] }
        #expect(Set(ids).count == 2, "a manual re-send is a new send with a new webhook-id")
        #expect(try rig.onair("delay", "a", "5m").stderr == "onair: 'a' has already started; use extend to move its end\n")
        #expect(try rig.onair("skip", "a").stderr == "onair: 'a' is on air; use stop\n")
        #expect(try rig.onair("extend", "a", "5m").status == 0)
        let stop = try rig.onair("stop", "a")
        #expect(stop.status == 0)
        #expect(rig.waitUntil(5) { rig.calls().last == "a stream.stop" })
        #expect(try rig.onair("extend", "a", "5m").stderr == "onair: 'a' was already stopped, or its stop is being delivered; nothing to extend\n")
        let status = try rig.onair("status", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect((object?["next"] as? [Any])?.isEmpty == true, "the scheduled start and stop are done")
        let history = try rig.onair("history", "a")
        #expect(history.stdout.split(separator: "\n").count == 3)
        #expect(history.stdout.contains("(send 1)"))
    }

    /// Found while benchmarking: `--socket name.sock` (a relative path) failed after "ready" with a
    /// Foundation error naming "./", and "ready" (and READY=1) came before the socket listened.
    @Test func relativePathsWorkAndReadyComesOnceTheSocketListens() throws {
        let rig = try ControlRig(items: [("a", 600, 60)])
        rig.stop()
        let dir = URL(fileURLWithPath: rig.dir)
        let logPath = dir.appendingPathComponent("relative.log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        rig.daemon = try startDaemon(config: rig.config, state: "relative-state", socket: "relative.sock", log: log, cwd: dir)
        #expect(rig.waitUntil(15) { (try? CLI.run(["status", "--socket", "relative.sock"], cwd: dir).status) == 0 })
        #expect(rig.daemon.isRunning)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("relative-state/journal.sqlite").path))
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        let listening = text.range(of: "control socket listening"), ready = text.range(of: "info ready ")
        #expect(listening != nil && ready != nil && listening!.lowerBound < ready!.lowerBound, "\(text)")
        #expect(text.contains("socket=\(dir.appendingPathComponent("relative.sock").standardizedFileURL.path)"), "logged absolute")
    }

    @Test func aControlSocketThatCannotBeMadeIsAOneLineErrorAndExit73() throws {
        let rig = try ControlRig(items: [("a", 600, 60)])
        rig.stop()
        // A path longer than a Unix socket address can hold (108 bytes).
        let long = rig.dir + "/" + String(repeating: "s", count: 120) + ".sock"
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["daemon", "--config", rig.config, "--state", rig.state, "--socket", long]
        process.environment = ProcessInfo.processInfo.environment.merging(["E2E_SECRET": e2eSecret]) { _, new in new }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 73, "\(output)")
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("cannot listen on the control socket \(long)"), "\(output)")
        #expect(!output.contains("info ready"), "never said ready")
    }

    @Test func unknownItemsAndBadDurations() throws {
        let rig = try ControlRig(items: [("a", 600, 60)])
        let unknown = try rig.onair("skip", "nope")
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "onair: unknown item 'nope'\n")
        #expect(try rig.onair("delay", "a", "soon").status == 2)
        #expect(try rig.onair("extend", "a").status == 2)
    }

    @Test func overridesSurviveARestartAndHoldStopsFiring() throws {
        let rig = try ControlRig(items: [("a", 3, 1), ("b", 600, 60)])
        #expect(try rig.onair("delay", "b", "10m").status == 0)
        #expect(try rig.onair("hold").status == 0)
        Thread.sleep(forTimeInterval: 5)
        #expect(rig.calls().isEmpty, "nothing fires while held")
        try rig.restart()
        let status = try rig.onair("status", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(object?["held"] as? Bool == true, "hold survives a restart")
        let overrides = object?["overrides"] as? [[String: Any]]
        #expect(overrides?.first?["item"] as? String == "b")
        #expect((overrides?.first?["by"] as? String)?.hasPrefix("uid \(getuid())") == true, "who asked, from SO_PEERCRED")
        #expect(overrides?.first?["delay"] as? String == "10m")
        let next = (object?["next"] as? [[String: Any]]) ?? []
        #expect(next.contains { $0["job"] as? String == "ctl/b/start/site" && ($0["in_seconds"] as? Int ?? 0) > 1100 })
        #expect(try rig.onair("resume").status == 0)
        // a started and ended while held: its start is missed, its stop is still sent.
        #expect(rig.waitUntil(5) { rig.calls().contains("a stream.stop") })
        #expect(!rig.calls().contains("a stream.start"))
    }

    @Test func reloadIsSynchronousAndARefusedReloadDegradesStatus() throws {
        let rig = try ControlRig(items: [("a", 600, 60)])
        #expect(try rig.onair("reload").status == 0)
        let original = try String(contentsOfFile: rig.config, encoding: .utf8)
        try (original + "      - { id: Bad, title: x, start: \"10:00\", duration: 1m }\n").write(toFile: rig.config, atomically: true, encoding: .utf8)
        let refused = try rig.onair("reload")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("reload refused"))
        #expect(refused.stderr.contains("is not a valid slug"))
        let status = try rig.onair("status")
        #expect(status.status == 1)
        #expect(status.stdout.contains("REFUSED"))
        try original.write(toFile: rig.config, atomically: true, encoding: .utf8)
        #expect(try rig.onair("reload").status == 0)
        #expect(try rig.onair("status").status == 0)
    }

    @Test func whenTheDaemonIsDownStatusAndHistoryReadTheJournal() throws {
        let rig = try ControlRig(items: [("a", 600, 60)])
        #expect(try rig.onair("start", "a").status == 0)
        #expect(rig.waitUntil(5) { rig.calls().count == 1 })
        Thread.sleep(forTimeInterval: 0.3)
        rig.stop()
        let status = try rig.onair("status")
        #expect(status.status == 3)
        #expect(status.stdout.contains("not running"))
        #expect(status.stdout.contains("On air:   a"))
        let history = try rig.onair("history")
        #expect(history.status == 0)
        #expect(history.stdout.contains("ctl/a/start/site"))
        #expect(try rig.onair("hold").status == 3, "a command that needs the daemon exits 3 when it is down")
    }

    @Test func malformedAndHugeRequestsDoNotDisturbTheScheduler() throws {
        let rig = try ControlRig(items: [("a", 4, 2)])
        for payload in ["GARBAGE\r\n\r\n", "GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n{", "POST /v1/hold HTT",
                        "POST /v1/items/a/start HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n" + String(repeating: "x", count: 1_048_576)] {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                let bytes = Array(rig.socket.utf8)
                raw.copyBytes(from: bytes.prefix(raw.count - 1))
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(connected == 0)
            _ = payload.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            close(fd)
        }
        #expect(try rig.onair("status").status == 0)
        #expect(rig.waitUntil(10) { rig.calls().count == 2 })
        let arrivals = rig.receiver.calls()
        for request in arrivals {
            let json = try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]
            let scheduled = ISO8601DateFormatter().date(from: json?["timestamp"] as? String ?? "")!.timeIntervalSince1970
            #expect(request.arrival - scheduled < 0.5, "fired on time: \(json?["type"] ?? "") late by \(request.arrival - scheduled)")
        }
    }
}
