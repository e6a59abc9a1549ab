import CYAML

/// A position in a YAML file, 1-based as editors count (libyaml counts from 0).
struct YAMLMark: Sendable, Hashable {
    private let storedLine: Int32
    private let storedColumn: Int32
    var line: Int { Int(storedLine) }
    var column: Int { Int(storedColumn) }

    init(line: Int, column: Int) {
        storedLine = Int32(clamping: line)
        storedColumn = Int32(clamping: column)
    }

    init(_ mark: yaml_mark_t) {
        self.init(line: mark.line + 1, column: mark.column + 1)
    }
}

/// One node of a schedule file: as much of YAML as a schedule needs — scalars as text (whether
/// they were plain, so `null` can be told from `"null"`), mappings in file order, lists — each
/// with its position. Values, not objects: a 10,000-item week takes a few megabytes, where a
/// general YAML node tree (tags, styles, anchors on every node) took most of the daemon's memory.
enum YAMLNode: Sendable {
    case scalar(YAMLScalar)
    case mapping(YAMLMapping)
    case sequence(YAMLSequence)

    var mark: YAMLMark {
        switch self {
        case .scalar(let s): s.mark
        case .mapping(let m): m.mark
        case .sequence(let s): s.mark
        }
    }

    /// The text of a scalar; nil for a mapping or list.
    var string: String? {
        if case .scalar(let s) = self { return s.string }
        return nil
    }
}

struct YAMLScalar: Sendable {
    var string: String
    /// Written without quotes or block indicators: only then do `null` and `~` mean "no value".
    var isPlain: Bool
    var mark: YAMLMark
}

struct YAMLMapping: RandomAccessCollection, Sendable {
    var pairs: [(key: YAMLNode, value: YAMLNode)]
    var mark: YAMLMark
    var startIndex: Int { pairs.startIndex }
    var endIndex: Int { pairs.endIndex }
    subscript(position: Int) -> (key: YAMLNode, value: YAMLNode) { pairs[position] }
}

struct YAMLSequence: RandomAccessCollection, Sendable {
    var nodes: [YAMLNode]
    var mark: YAMLMark
    var startIndex: Int { nodes.startIndex }
    var endIndex: Int { nodes.endIndex }
    subscript(position: Int) -> YAMLNode { nodes[position] }
}

/// A problem in the YAML itself, before any schedule rule applies.
struct YAMLProblem: Error, Sendable, Equatable {
    var mark: YAMLMark
    var message: String
}

/// The result of reading a file: its single document (nil when the file holds none) and the
/// problems that did not stop reading (duplicate keys), so all of them reach the operator at once.
struct YAMLDocument: Sendable {
    var root: YAMLNode?
    var problems: [YAMLProblem]
}

/// Reads YAML text through libyaml's event API into `YAMLNode`s.
///
/// Aliases are resolved to a copy of the anchored node (copies share storage, so an alias costs
/// nothing), a key written twice in one mapping is reported where it repeats, and nesting is
/// bounded so that a hostile file cannot exhaust the stack.
enum YAMLReader {
    /// Far deeper than any schedule (which nests about seven levels) and far from the stack's end.
    static let maximumDepth = 64

    static func read(_ text: String) throws(YAMLProblem) -> YAMLDocument {
        var text = text
        let outcome: Result<YAMLDocument, YAMLProblem> = text.withUTF8 { bytes in
            Result { () throws(YAMLProblem) in try read(bytes) }
        }
        return try outcome.get()
    }

    /// Reads UTF-8 bytes in place; they must stay valid for the call only.
    static func read(_ bytes: UnsafeBufferPointer<UInt8>) throws(YAMLProblem) -> YAMLDocument {
        try Composer(bytes).document()
    }
}

/// libyaml's parser, one event at a time.
private final class EventStream {
    private let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        yaml_parser_initialize(parser)
        yaml_parser_set_input_string(parser, bytes.baseAddress, bytes.count)
    }

    deinit {
        yaml_parser_delete(parser)
        parser.deallocate()
    }

    enum Event {
        case streamStart, streamEnd, documentEnd
        case documentStart(YAMLMark)
        case alias(anchor: String, YAMLMark)
        case scalar(YAMLScalar, anchor: String?)
        case sequenceStart(anchor: String?, YAMLMark)
        case sequenceEnd
        case mappingStart(anchor: String?, YAMLMark)
        case mappingEnd
    }

    func next() throws(YAMLProblem) -> Event {
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else { throw problem() }
        defer { yaml_event_delete(&event) }
        let mark = YAMLMark(event.start_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT: return .streamStart
        case YAML_STREAM_END_EVENT: return .streamEnd
        case YAML_DOCUMENT_START_EVENT: return .documentStart(mark)
        case YAML_DOCUMENT_END_EVENT: return .documentEnd
        case YAML_ALIAS_EVENT: return .alias(anchor: Self.text(event.data.alias.anchor) ?? "", mark)
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let value = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
            return .scalar(YAMLScalar(string: value, isPlain: s.style == YAML_PLAIN_SCALAR_STYLE, mark: mark),
                           anchor: Self.text(s.anchor))
        case YAML_SEQUENCE_START_EVENT: return .sequenceStart(anchor: Self.text(event.data.sequence_start.anchor), mark)
        case YAML_SEQUENCE_END_EVENT: return .sequenceEnd
        case YAML_MAPPING_START_EVENT: return .mappingStart(anchor: Self.text(event.data.mapping_start.anchor), mark)
        case YAML_MAPPING_END_EVENT: return .mappingEnd
        default: throw YAMLProblem(mark: mark, message: "YAML error: unexpected event \(event.type.rawValue)")
        }
    }

    private static func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    /// libyaml's own words for what went wrong, at the place it noticed.
    private func problem() -> YAMLProblem {
        let p = parser.pointee
        let what = p.problem.map { String(cString: $0) } ?? "unknown error"
        if p.error == YAML_READER_ERROR {
            // Reader errors have a byte offset, not a mark: count lines and characters up to it.
            return YAMLProblem(mark: readerMark(byteOffset: p.problem_offset), message: "cannot read YAML: \(what)")
        }
        var message = "YAML syntax error: \(what)"
        if let context = p.context.map({ String(cString: $0) }), !context.isEmpty {
            let at = YAMLMark(p.context_mark)
            message += " (\(context) at line \(at.line), column \(at.column))"
        }
        return YAMLProblem(mark: YAMLMark(p.problem_mark), message: message)
    }

    private func readerMark(byteOffset: Int) -> YAMLMark {
        let input = UnsafeBufferPointer(start: parser.pointee.input.string.start,
                                        count: min(byteOffset, parser.pointee.input.string.end - parser.pointee.input.string.start))
        var line = 1, column = 1
        for byte in input {
            if byte == 10 { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return YAMLMark(line: line, column: column)
    }
}

/// Builds nodes from events: the one place that knows how events nest.
private final class Composer {
    private let events: EventStream
    private var anchors: [String: YAMLNode] = [:]
    private var problems: [YAMLProblem] = []
    /// Reusable buffers for mappings being read, one per nesting level in use.
    private var scratch: [[(key: YAMLNode, value: YAMLNode)]] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        events = EventStream(bytes)
    }

    func document() throws(YAMLProblem) -> YAMLDocument {
        guard case .streamStart = try events.next() else {
            throw YAMLProblem(mark: YAMLMark(line: 1, column: 1), message: "YAML error: no stream")
        }
        guard case .documentStart = try events.next() else {
            return YAMLDocument(root: nil, problems: [])    // an empty file (or only comments)
        }
        let root = try node(from: events.next(), depth: 0)
        guard case .documentEnd = try events.next() else {
            throw YAMLProblem(mark: root.mark, message: "YAML error: the document did not end")
        }
        if case .documentStart(let mark) = try events.next() {
            throw YAMLProblem(mark: mark, message: "a schedule file holds one YAML document; a second one starts here")
        }
        return YAMLDocument(root: root, problems: problems)
    }

    private func node(from event: EventStream.Event, depth: Int) throws(YAMLProblem) -> YAMLNode {
        switch event {
        case .scalar(let scalar, let anchor):
            return remember(.scalar(scalar), as: anchor)
        case .alias(let anchor, let mark):
            guard let node = anchors[anchor] else {
                throw YAMLProblem(mark: mark, message: "YAML error: alias '*\(anchor)' names no anchor defined before it")
            }
            return node
        case .sequenceStart(let anchor, let mark):
            try checkDepth(depth, at: mark)
            var nodes: [YAMLNode] = []
            while true {
                let next = try events.next()
                if case .sequenceEnd = next { break }
                nodes.append(try node(from: next, depth: depth + 1))
            }
            return remember(.sequence(YAMLSequence(nodes: nodes, mark: mark)), as: anchor)
        case .mappingStart(let anchor, let mark):
            try checkDepth(depth, at: mark)
            // Collected in a scratch buffer and stored at their exact size: a week holds tens of
            // thousands of small mappings, and growth by doubling would leave a quarter unused.
            var pairs = scratch.popLast() ?? []
            pairs.removeAll(keepingCapacity: true)
            defer { scratch.append(pairs) }
            var seen: [String: YAMLMark] = [:]
            while true {
                let next = try events.next()
                if case .mappingEnd = next { break }
                let key = try node(from: next, depth: depth + 1)
                let value = try node(from: events.next(), depth: depth + 1)
                if case .scalar(let name) = key {
                    if let first = seen[name.string] {
                        problems.append(YAMLProblem(mark: name.mark, message:
                            "duplicate key '\(name.string)' in the same mapping (first at line \(first.line), column \(first.column))"))
                        continue    // the first one counts, as the operator reads the file top down
                    }
                    seen[name.string] = name.mark
                }
                pairs.append((key, value))
            }
            return remember(.mapping(YAMLMapping(pairs: Array(pairs[...]), mark: mark)), as: anchor)
        case .streamStart, .streamEnd, .documentStart, .documentEnd, .sequenceEnd, .mappingEnd:
            throw YAMLProblem(mark: YAMLMark(line: 1, column: 1), message: "YAML error: unexpected structure")
        }
    }

    private func checkDepth(_ depth: Int, at mark: YAMLMark) throws(YAMLProblem) {
        if depth >= YAMLReader.maximumDepth {
            throw YAMLProblem(mark: mark, message: "nested more than \(YAMLReader.maximumDepth) levels deep; a schedule needs far fewer")
        }
    }

    private func remember(_ node: YAMLNode, as anchor: String?) -> YAMLNode {
        if let anchor { anchors[anchor] = node }
        return node
    }
}
