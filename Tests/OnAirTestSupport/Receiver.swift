import Foundation

/// Shared by the unit and the end-to-end tests.
public enum TestSupport {
    /// The root of the repository (Tests/Receiver/receiver.py, config/).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
}

/// The loopback receiver (Tests/Receiver/receiver.py) as a test fixture: a real HTTP server that
/// records what it gets.
public final class Receiver: @unchecked Sendable {
    public struct Request: Decodable, Sendable {
        public var method: String
        public var path: String
        public var arrival: Double
        public var headers: [String: String]
        public var body: String
        /// The client's port: two requests with the same one came over the same connection.
        public var peer: Int
    }

    public let port: Int
    public let logPath: String
    public let tlsDirectory: String?
    private let process: Process
    /// The server's own pid: `python3` may be a wrapper (pyenv) that is not the server itself.
    private let pid: pid_t

    public var base: String { "\(tlsDirectory == nil ? "http" : "https")://127.0.0.1:\(port)" }
    public var caFile: String? { tlsDirectory.map { $0 + "/ca.pem" } }

    public init(tls: Bool = false) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onair-receiver-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        logPath = dir.appendingPathComponent("log.jsonl").path
        tlsDirectory = tls ? dir.path : nil
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestSupport.repositoryRoot.appendingPathComponent("Tests/Receiver/receiver.py").path, logPath]
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
            throw CocoaError(.fileReadUnknown)
        }
        self.port = port
        self.pid = pid
    }

    deinit {
        kill(pid, SIGKILL)
        process.terminate()
    }

    /// The calls a platform acts on: every request except the daemon's connection warm-ups.
    public func calls() -> [Request] { requests().filter { $0.method != "HEAD" } }

    /// The daemon's connection warm-ups (HEAD /).
    public func warmUps() -> [Request] { requests().filter { $0.method == "HEAD" } }

    /// Everything received, in order of arrival.
    public func requests() -> [Request] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }
}

