import Foundation
import OnAirModel

/// Reads a schedule file and checks it completely, reporting every problem at its line and column.
///
/// A schedule is either accepted whole or refused whole: a half-understood file must never drive
/// a live broadcast.
public struct ScheduleLoader: Sendable {
    /// Checks that depend on the machine the daemon runs on rather than on the file alone.
    public struct Options: Sendable {
        /// Resolve every secret and read every `ca_file`. On for `validate` and the daemon;
        /// off for `plan` and `ics`, which never call a platform.
        public var checkEnvironment: Bool
        public var secrets: SecretResolver

        public init(checkEnvironment: Bool = true, secrets: SecretResolver = SecretResolver()) {
            self.checkEnvironment = checkEnvironment
            self.secrets = secrets
        }
    }

    /// Larger files are refused before parsing; a real week is a few hundred kilobytes.
    public static let maximumFileSize = 32 * 1024 * 1024

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Loads and validates the file at `path`; `displayName` is what diagnostics call it.
    public func load(path: String, displayName: String? = nil) throws(ScheduleError) -> Schedule {
        let name = displayName ?? path
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? Int, size > Self.maximumFileSize {
                throw ScheduleError(diagnostics: [Diagnostic(file: name, line: 1, column: 1,
                    message: "file is \(size) bytes; a schedule may be at most \(Self.maximumFileSize) bytes")])
            }
            if let type = attributes[.type] as? FileAttributeType, type == .typeDirectory {
                throw ScheduleError(diagnostics: [Diagnostic(file: name, line: 1, column: 1, message: "is a directory, not a schedule file")])
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as ScheduleError {
            throw error
        } catch {
            throw ScheduleError(diagnostics: [Diagnostic(file: name, line: 1, column: 1,
                message: "cannot read file: \(Self.describeReadError(error, path: path))")])
        }
        return try parse(data: data, file: name)
    }

    /// Validates schedule text held in memory.
    public func parse(data: Data, file: String) throws(ScheduleError) -> Schedule {
        guard data.count <= Self.maximumFileSize else {
            throw ScheduleError(diagnostics: [Diagnostic(file: file, line: 1, column: 1, message: "file too large")])
        }
        // Read in place: no String copy of a file that may be megabytes (the daemon's memory budget).
        let result: Result<YAMLDocument, ScheduleError> = data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            if let position = Self.invalidUTF8Position(in: bytes) {
                return .failure(ScheduleError(diagnostics: [Diagnostic(file: file, line: position.line, column: position.column,
                    message: "not UTF-8 text; a schedule file must be UTF-8 YAML")]))
            }
            return Result { () throws(ScheduleError) in try Self.document(bytes, file: file) }
        }
        return try build(result.get(), file: file)
    }

    /// Validates schedule text held in memory.
    public func parse(text: String, file: String) throws(ScheduleError) -> Schedule {
        var text = text
        let result: Result<YAMLDocument, ScheduleError> = text.withUTF8 { bytes in
            Result { () throws(ScheduleError) in try Self.document(bytes, file: file) }
        }
        return try build(result.get(), file: file)
    }

    private static func document(_ bytes: UnsafeBufferPointer<UInt8>, file: String) throws(ScheduleError) -> YAMLDocument {
        if let nul = bytes.firstIndex(of: 0) {
            let line = bytes[..<nul].filter { $0 == 10 }.count + 1
            throw ScheduleError(diagnostics: [Diagnostic(file: file, line: line, column: 1,
                message: "contains a NUL byte; is this a binary file?")])
        }
        do {
            // Every scalar is read as text and interpreted by the builder (no YAML 1.1 "yes"/"10:00"
            // guessing); libyaml's events go straight into compact nodes.
            return try YAMLReader.read(bytes)
        } catch {
            throw ScheduleError(diagnostics: [Diagnostic(file: file, line: error.mark.line, column: error.mark.column,
                                                         message: error.message)])
        }
    }

    private func build(_ document: YAMLDocument, file: String) throws(ScheduleError) -> Schedule {
        guard let root = document.root else {
            throw ScheduleError(diagnostics: [Diagnostic(file: file, line: 1, column: 1,
                message: "empty file; a schedule needs at least id, title, timezone, targets and days")])
        }
        var builder = ScheduleBuilder(file: file, options: options)
        for problem in document.problems {
            builder.error(SourcePosition(line: problem.mark.line, column: problem.mark.column), problem.message)
        }
        let schedule = builder.build(root)
        if let schedule, builder.diagnostics.isEmpty { return schedule }
        throw ScheduleError(diagnostics: builder.diagnostics)
    }

    /// Where the bytes stop being UTF-8, or nil when they all are.
    static func invalidUTF8Position(in bytes: UnsafeBufferPointer<UInt8>) -> SourcePosition? {
        var line = 1, column = 1
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
            case .emptyInput:
                return nil
            case .error:
                return SourcePosition(line: line, column: column)
            }
        }
    }

    static func describeReadError(_ error: Error, path: String) -> String {
        if !FileManager.default.fileExists(atPath: path) { return "no such file" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
        return (error as NSError).localizedDescription
    }
}
