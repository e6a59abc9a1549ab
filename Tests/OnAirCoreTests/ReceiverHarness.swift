import Foundation
@testable import OnAirCore

/// The loopback receiver (Tests/Receiver/receiver.py) as a test fixture: a real HTTP server that
/// records what it gets.
final class Receiver: @unchecked Sendable {
    struct Request: Decodable {
        var method: String
        var path: String
        var arrival: Double
        var headers: [String: String]
        var body: String
    }

    let port: Int
    let logPath: String
    let tlsDirectory: String?
    private let process: Process
    /// The server's own pid: `python3` may be a wrapper (pyenv) that is not the server itself.
    private let pid: pid_t

    var base: String { "\(tlsDirectory == nil ? "http" : "https")://127.0.0.1:\(port)" }
    var caFile: String? { tlsDirectory.map { $0 + "/ca.pem" } }

    init(tls: Bool = false) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onair-receiver-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        logPath = dir.appendingPathComponent("log.jsonl").path
        tlsDirectory = tls ? dir.path : nil
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", repositoryRoot.appendingPathComponent("Tests/Receiver/receiver.py").path, logPath]
            + (tls ? ["--tls", dir.path] : [])
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        let fields = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard fields.count == 2, let port = Int(fields[0]), let pid = pid_t(fields[1]) else {
            process.terminate()
            throw RequestBuildError(description: "receiver did not start")
        }
        self.port = port
        self.pid = pid
    }

    deinit {
        kill(pid, SIGKILL)
        process.terminate()
    }

    func requests() -> [Request] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }
}

/// A one-item schedule whose targets are given; times around `start`.
func testSchedule(targets: [Target], start: Date = Date(timeIntervalSince1970: 1_636_362_000), leadTime: Int = 0,
                  location: String? = nil) -> Schedule {
    let item = Item(id: "zorg-plenary", title: "Plenaire opening", kind: "plenary", location: location,
                    day: LocalDate("2021-11-08")!, start: start, end: start.addingTimeInterval(5400),
                    targets: targets.map(\.name))
    return Schedule(id: "rv-2021", title: "RV", timeZone: TimeZone(identifier: "Europe/Amsterdam")!, leadTime: leadTime,
                    targets: targets, days: [Day(date: LocalDate("2021-11-08")!, title: "Radicale vernieuwing zorg")],
                    items: [item])
}

/// Collects attempt records from a delivery.
actor Records {
    var all: [AttemptRecord] = []
    func add(_ r: AttemptRecord) { all.append(r) }
}

let fastPolicy = RetryPolicy(initialBound: 0.05, maximumBound: 0.2)
