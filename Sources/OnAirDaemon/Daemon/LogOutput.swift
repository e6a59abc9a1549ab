import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
import Logging

/// Log lines for journald or a terminal. Under systemd (JOURNAL_STREAM set) every line starts
/// with its syslog priority (`<3>` error … `<7>` debug) so journald files it at the right level;
/// elsewhere lines carry a timestamp and the level in words. Metadata follows as key=value.
public struct ConsoleLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let syslogPrefixes: Bool

    public init(label: String, level: Logger.Level = .info,
                syslogPrefixes: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil) {
        self.label = label
        self.logLevel = level
        self.syslogPrefixes = syslogPrefixes
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.quote("\($0.value)"))" }.joined(separator: " ")
        let text = event.message.description + (fields.isEmpty ? "" : " " + fields)
        let line: String
        if syslogPrefixes {
            line = "<\(Self.priority(event.level))>\(text)\n"
        } else {
            line = "\(WallClock.utcText(Date())) \(event.level) \(text)\n"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func quote(_ value: String) -> String {
        value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) || value.isEmpty ? JSON.string(value) : value
    }
}
