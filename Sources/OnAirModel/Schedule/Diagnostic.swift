import Foundation

/// One problem found in a schedule file, pointing at the place an operator must edit.
///
/// Rendered as `FILE:LINE:COL: message` — the form editors and CI logs make clickable.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// A schedule that cannot be used, with every problem found in it (not only the first),
/// sorted by position so the operator can fix the file top to bottom.
public struct ScheduleError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
    }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// A position in the source file, 1-based like editors count.
public struct SourcePosition: Sendable, Hashable, Codable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public static let start = SourcePosition(line: 1, column: 1)
}
