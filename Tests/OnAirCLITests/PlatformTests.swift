import Foundation
import Testing
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
import OnAirTestSupport

/// Real streaming servers from Debian (nginx with libnginx-mod-rtmp, icecast2) fed by a real
/// publisher (ffmpeg), driven by the real daemon. Skipped, with the reason, where they are missing.
enum Platforms {
    static let ffmpeg: String? = {
        if let path = ProcessInfo.processInfo.environment["ONAIR_FFMPEG"], FileManager.default.isExecutableFile(atPath: path) { return path }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"]
        let out = Pipe()
        probe.standardOutput = out
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return nil }
        probe.waitUntilExit()
        let path = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if probe.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) { return path }
        return ["/usr/bin/ffmpeg"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
    static let nginxRTMP = FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx")
        && FileManager.default.fileExists(atPath: "/usr/lib/nginx/modules/ngx_rtmp_module.so")
    static let icecast = FileManager.default.isExecutableFile(atPath: "/usr/bin/icecast2")
        && FileManager.default.fileExists(atPath: "/usr/share/icecast2/web/status-json.xsl")

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 ? getsockname(fd, $0, &length) : -1 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func get(_ url: String) async -> String {
        let client = CurlClient(maxConnectionsPerHost: 1)
        defer { client.shutdown() }
        var request = HTTPRequest(method: "GET", url: url, timeout: 5)
        request.maximumResponseBytes = 4 << 20
        if case .response(let r) = await client.perform(request).kind { return String(decoding: r.body, as: UTF8.self) }
        return ""
    }

    static func start(_ executable: String, _ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func eventually(_ timeout: TimeInterval, _ condition: () async -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: 250_000_000)
        }
        return await condition()
    }

    /// A schedule with one item `offset` s from now, `length` s long, sent to the target `platform` given in YAML.
    static func schedule(target: String, title: String, offset: Double, length: Int) -> String {
        let start = Date().timeIntervalSince1970.rounded(.up) + offset
        let s = Int(start) % 86_400
        return """
        id: platform-e2e
        title: Platform end to end
        timezone: UTC
        targets:
        \(target)
        days:
          - date: \(LocalDate(dayNumber: Int(start) / 86_400))
            programme:
              - id: plenary
                title: \(JSON.string(title))
                kind: plenary
                start: "\(String(format: "%02d:%02d:%02d+00:00", s / 3600, (s % 3600) / 60, s % 60))"
                duration: \(length)s
        """
    }
}

@Suite("Real platforms: nginx-rtmp and Icecast", .serialized)
struct PlatformTests {
    @Test(.enabled(if: Platforms.nginxRTMP && Platforms.ffmpeg != nil,
                   "needs nginx with libnginx-mod-rtmp and ffmpeg (apt-get install nginx libnginx-mod-rtmp; pip install imageio-ffmpeg)"))
    func nginxRTMPStreamIsDroppedAtTheItemsStop() async throws {
        let dir = try CLI.temporaryFile("").replacingOccurrences(of: "/schedule.yaml", with: "")
        let rtmp = Platforms.freePort(), http = Platforms.freePort()
        try """
        load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
        worker_processes 1;
        pid \(dir)/nginx.pid;
        error_log \(dir)/nginx-error.log;
        daemon off;
        events { worker_connections 64; }
        rtmp { server { listen 127.0.0.1:\(rtmp); application live { live on; } } }
        http {
          access_log off;
          client_body_temp_path \(dir);
          server {
            listen 127.0.0.1:\(http);
            location /stat { rtmp_stat all; }
            location /control { rtmp_control all; }
          }
        }
        """.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let nginx = try Platforms.start("/usr/sbin/nginx", ["-c", dir + "/nginx.conf", "-p", dir], log: dir + "/nginx.log")
        defer { nginx.terminate() }
        try await Task.sleep(nanoseconds: 500_000_000)
        let ffmpeg = try Platforms.start(Platforms.ffmpeg!, [
            "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i", "sine=frequency=440",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10", "-c:a", "aac", "-f", "flv",
            "rtmp://127.0.0.1:\(rtmp)/live/stream",
        ], log: dir + "/ffmpeg.log")
        defer { if ffmpeg.isRunning { ffmpeg.terminate() } }
        let stat = "http://127.0.0.1:\(http)/stat"
        func live() async -> Bool { await Platforms.get(stat).contains("<name>stream</name>") }
        #expect(await Platforms.eventually(15) { await live() }, "the publisher went live")

        let config = dir + "/schedule.yaml"
        try Platforms.schedule(target: """
          rtmp:
            requests:
              stop: { method: GET, url: "http://127.0.0.1:\(http)/control/drop/publisher?app=live&name=stream",
                      expect: { status: [200], body: "^[1-9]" } }
        """, title: "Plenaire opening", offset: 3, length: 8).write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try startDaemon(config: config, state: dir + "/state")
        defer { daemon.terminate(); daemon.waitUntilExit() }
        // The stop is 11 s after the file was written: 5 s in, with room for a slow start on a loaded machine.
        try await Task.sleep(nanoseconds: 5_000_000_000)
        #expect(await live(), "live before the item's stop")
        #expect(await Platforms.eventually(15) { !(await live()) }, "gone after the item's stop")
        let history = try CLI.run(["history", "--socket", dir + "/state/control.sock", "--state", dir + "/state"])
        #expect(history.stdout.contains("platform-e2e/plenary/stop/rtmp"))
        #expect(history.stdout.contains("delivered  HTTP 200"))
    }

    /// Starts icecast2 as its own user (it refuses to run as root) on a free port.
    func startIcecast(dir: String, port: Int) throws -> Process {
        try """
        <icecast>
          <location>test</location><admin>test@localhost</admin>
          <limits><sources>2</sources><clients>10</clients></limits>
          <authentication>
            <source-password>source-pw</source-password>
            <admin-user>admin</admin-user><admin-password>Adm1n-S3cret</admin-password>
          </authentication>
          <hostname>127.0.0.1</hostname>
          <listen-socket><port>\(port)</port><bind-address>127.0.0.1</bind-address></listen-socket>
          <paths>
            <basedir>/usr/share/icecast2</basedir><logdir>\(dir)</logdir>
            <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
          </paths>
          <logging><accesslog>icecast-access.log</accesslog><errorlog>icecast-error.log</errorlog><loglevel>3</loglevel></logging>
          <security><chroot>0</chroot></security>
        </icecast>
        """.write(toFile: dir + "/icecast.xml", atomically: true, encoding: .utf8)
        chmod(dir, 0o777)
        chmod(dir + "/icecast.xml", 0o644)
        if getuid() == 0 {
            return try Platforms.start("/usr/bin/setpriv", ["--reuid=icecast2", "--regid=icecast", "--clear-groups",
                                                            "/usr/bin/icecast2", "-c", dir + "/icecast.xml"], log: dir + "/icecast.log")
        }
        return try Platforms.start("/usr/bin/icecast2", ["-c", dir + "/icecast.xml"], log: dir + "/icecast.log")
    }

    func icecastSources(_ port: Int) async -> [[String: Any]] {
        let text = await Platforms.get("http://127.0.0.1:\(port)/status-json.xsl")
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let stats = json["icestats"] as? [String: Any] else { return [] }
        if let one = stats["source"] as? [String: Any] { return [one] }
        return stats["source"] as? [[String: Any]] ?? []
    }

    func publish(to port: Int, dir: String) throws -> Process {
        try Platforms.start(Platforms.ffmpeg!, [
            "-nostdin", "-re", "-f", "lavfi", "-i", "sine=frequency=440", "-c:a", "libvorbis", "-b:a", "64k",
            "-content_type", "application/ogg", "-f", "ogg", "icecast://source:source-pw@127.0.0.1:\(port)/live",
        ], log: dir + "/ffmpeg.log")
    }

    /// Icecast on a free port in a fresh directory, with ffmpeg connected as the source of /live.
    func icecastWithSource() async throws -> (dir: String, port: Int, icecast: Process, ffmpeg: Process) {
        let dir = try CLI.temporaryFile("").replacingOccurrences(of: "/schedule.yaml", with: "")
        let port = Platforms.freePort()
        let icecast = try startIcecast(dir: dir, port: port)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let ffmpeg = try publish(to: port, dir: dir)
        #expect(await Platforms.eventually(15) { !(await icecastSources(port)).isEmpty }, "the source is connected")
        return (dir, port, icecast, ffmpeg)
    }

    static let radioTarget = """
      radio:
        auth: { basic: { user: admin, password: env:ICECAST_ADMIN } }
        requests:
          start: { method: GET, url: "http://127.0.0.1:PORT/admin/metadata?mount=/live&mode=updinfo&song={{item.title}}&charset=UTF-8",
                   expect: { status: [200], body: "<return>1</return>" } }
          stop: { method: GET, url: "http://127.0.0.1:PORT/admin/killsource?mount=/live",
                  expect: { status: [200], body: "<return>1</return>" } }
    """

    func daemon(config: String, state: String, password: String) throws -> Process {
        _ = FileManager.default.createFile(atPath: state + ".log", contents: nil)
        return try startDaemon(config: config, state: state, environment: ["ICECAST_ADMIN": password],
                               log: FileHandle(forWritingAtPath: state + ".log"))
    }

    @Test(.enabled(if: Platforms.icecast && Platforms.ffmpeg != nil,
                   "needs icecast2 and ffmpeg (apt-get install icecast2; pip install imageio-ffmpeg)"))
    func icecastTitleFollowsTheItemAndTheMountIsKilledAtItsStop() async throws {
        let (dir, port, icecast, ffmpeg) = try await icecastWithSource()
        defer { icecast.terminate(); if ffmpeg.isRunning { ffmpeg.terminate() } }

        let title = "Plenaire opening — één zorg & welzijn"
        let config = dir + "/schedule.yaml"
        try Platforms.schedule(target: Self.radioTarget.replacingOccurrences(of: "PORT", with: "\(port)"), title: title,
                               offset: 3, length: 10).write(toFile: config, atomically: true, encoding: .utf8)
        let state = dir + "/state"
        let daemon = try daemon(config: config, state: state, password: "Adm1n-S3cret")
        defer { daemon.terminate(); daemon.waitUntilExit() }
        let titled = await Platforms.eventually(12) { (await icecastSources(port)).first?["title"] as? String == title }
        let seen = (await icecastSources(port)).first?["title"] as? String ?? "none"
        #expect(titled, "the Icecast title is the item's title, not \(seen)")
        #expect(await Platforms.eventually(12) { (await icecastSources(port)).isEmpty }, "the mount is gone after the stop")
        let history = try CLI.run(["history", "--socket", state + "/control.sock", "--state", state])
        #expect(history.stdout.contains("platform-e2e/plenary/start/radio"))
        #expect(history.stdout.contains("platform-e2e/plenary/stop/radio"))
    }

    @Test(.enabled(if: Platforms.icecast && Platforms.ffmpeg != nil,
                   "needs icecast2 and ffmpeg (apt-get install icecast2; pip install imageio-ffmpeg)"))
    func aWrongPasswordLeavesIcecastUntouchedAndIsReported() async throws {
        let (dir, port, icecast, ffmpeg) = try await icecastWithSource()
        defer { icecast.terminate(); if ffmpeg.isRunning { ffmpeg.terminate() } }
        let titleBefore = (await icecastSources(port)).first?["title"] as? String

        let config = dir + "/schedule.yaml"
        try Platforms.schedule(target: Self.radioTarget.replacingOccurrences(of: "PORT", with: "\(port)"), title: "Nieuwe titel",
                               offset: 2, length: 4).write(toFile: config, atomically: true, encoding: .utf8)
        let state = dir + "/state"
        let password = "Wr0ng-Passw0rd-xyz"
        let daemon = try daemon(config: config, state: state, password: password)
        try await Task.sleep(nanoseconds: 8_000_000_000)
        let sources = await icecastSources(port)
        #expect(sources.count == 1, "the mount is still there")
        #expect(sources.first?["title"] as? String == titleBefore, "the title is untouched")
        let history = try CLI.run(["history", "--socket", state + "/control.sock", "--state", state])
        #expect(history.stdout.contains("failed  HTTP 401"), "\(history.stdout)")
        let status = try CLI.run(["status", "--socket", state + "/control.sock", "--state", state])
        #expect(status.status == 1, "degraded")
        daemon.terminate()
        daemon.waitUntilExit()
        // The password is nowhere: not in the journal, not in the logs.
        var leaked: [String] = []
        for path in [state + ".log"] + ((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []).map({ state + "/" + $0 }) {
            if let data = FileManager.default.contents(atPath: path),
               data.range(of: Data(password.utf8)) != nil || data.range(of: Data(Data("admin:\(password)".utf8).base64EncodedString().utf8)) != nil {
                leaked.append(path)
            }
        }
        #expect(leaked.isEmpty, "password found in \(leaked)")
        #expect(history.stdout.contains(password) == false && status.stdout.contains(password) == false)
    }
}
