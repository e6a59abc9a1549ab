import OnAirModel
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
    /// Nodes that aliases may add in all: room for every item to name a shared list of targets,
    /// none for a "billion laughs" file that would keep validation busy for hours.
    static let maximumAliasExpansion = 1_000_000

    static func read(_ text: String) throws(YAMLProblem) -> YAMLDocument {
        var text = text
        let outcome: Result<YAMLDocument, YAMLProblem> = text.withUTF8 { bytes in
            Result { () throws(YAMLProblem) in try read(bytes) }
        }
        return try outcome.get()
    }

    /// Reads UTF-8 bytes in place; they must stay valid for the call only.
    static func read(_ bytes: UnsafeBufferPointer<UInt8>) throws(YAMLProblem) -> YAMLDocument {
        // An empty Data has no base address, and libyaml asserts on a null input.
        guard bytes.baseAddress != nil else { return YAMLDocument(root: nil, problems: []) }
        return try Composer(bytes).document()
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
    private var anchors: [String: Built] = [:]
    /// Nodes that aliases have added so far.
    private var expanded = 0
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
        let root = try build(events.next(), depth: 0).node
        guard case .documentEnd = try events.next() else {
            throw YAMLProblem(mark: root.mark, message: "YAML error: the document did not end")
        }
        if case .documentStart(let mark) = try events.next() {
            throw YAMLProblem(mark: mark, message: "a schedule file holds one YAML document; a second one starts here")
        }
        return YAMLDocument(root: root, problems: problems)
    }

    /// A node with how deep it nests (containers, 0 for a scalar) and how many nodes it holds,
    /// so that an alias can be checked against the limits as if it were written out.
    private struct Built {
        var node: YAMLNode
        var height: Int
        var size: Int
    }

    private func build(_ event: EventStream.Event, depth: Int) throws(YAMLProblem) -> Built {
        switch event {
        case .scalar(let scalar, let anchor):
            return remember(Built(node: .scalar(scalar), height: 0, size: 1), as: anchor)
        case .alias(let anchor, let mark):
            guard let built = anchors[anchor] else {
                throw YAMLProblem(mark: mark, message: "YAML error: alias '*\(anchor)' names no anchor defined before it")
            }
            if depth + built.height > YAMLReader.maximumDepth {
                throw YAMLProblem(mark: mark, message: "alias '*\(anchor)' nests more than \(YAMLReader.maximumDepth) levels deep")
            }
            expanded += built.size
            if expanded > YAMLReader.maximumAliasExpansion {
                throw YAMLProblem(mark: mark, message: "aliases expand to more than \(YAMLReader.maximumAliasExpansion) nodes; write the schedule out")
            }
            return built
        case .sequenceStart(let anchor, let mark):
            try checkDepth(depth, at: mark)
            var nodes: [YAMLNode] = []
            var height = 0, size = 1
            while true {
                let next = try events.next()
                if case .sequenceEnd = next { break }
                let child = try build(next, depth: depth + 1)
                nodes.append(child.node)
                height = max(height, child.height)
                size += child.size
            }
            return remember(Built(node: .sequence(YAMLSequence(nodes: nodes, mark: mark)), height: height + 1, size: size), as: anchor)
        case .mappingStart(let anchor, let mark):
            try checkDepth(depth, at: mark)
            // Collected in a scratch buffer and stored at their exact size: a week holds tens of
            // thousands of small mappings, and growth by doubling would leave a quarter unused.
            var pairs = scratch.popLast() ?? []
            pairs.removeAll(keepingCapacity: true)
            defer { scratch.append(pairs) }
            var seen: [String: YAMLMark] = [:]
            var height = 0, size = 1
            while true {
                let next = try events.next()
                if case .mappingEnd = next { break }
                let key = try build(next, depth: depth + 1)
                let value = try build(events.next(), depth: depth + 1)
                height = max(height, key.height, value.height)
                size += key.size + value.size
                if case .scalar(let name) = key.node {
                    if let first = seen[name.string] {
                        problems.append(YAMLProblem(mark: name.mark, message:
                            "duplicate key '\(name.string)' in the same mapping (first at line \(first.line), column \(first.column))"))
                        continue    // the first one counts, as the operator reads the file top down
                    }
                    seen[name.string] = name.mark
                }
                pairs.append((key.node, value.node))
            }
            let mapping = YAMLMapping(pairs: Self.exactCopy(of: pairs), mark: mark)
            return remember(Built(node: .mapping(mapping), height: height + 1, size: size), as: anchor)
        case .streamStart, .streamEnd, .documentStart, .documentEnd, .sequenceEnd, .mappingEnd:
            throw YAMLProblem(mark: YAMLMark(line: 1, column: 1), message: "YAML error: unexpected structure")
        }
    }

    /// A copy with storage of its own, exactly as large as needed (`Array(slice)` of a whole
    /// array would share the scratch buffer, capacity and all).
    private static func exactCopy<Element>(of elements: [Element]) -> [Element] {
        [Element](unsafeUninitializedCapacity: elements.count) { buffer, count in
            for (index, element) in elements.enumerated() { (buffer.baseAddress! + index).initialize(to: element) }
            count = elements.count
        }
    }

    private func checkDepth(_ depth: Int, at mark: YAMLMark) throws(YAMLProblem) {
        if depth >= YAMLReader.maximumDepth {
            throw YAMLProblem(mark: mark, message: "nested more than \(YAMLReader.maximumDepth) levels deep; a schedule needs far fewer")
        }
    }

    private func remember(_ built: Built, as anchor: String?) -> Built {
        if let anchor { anchors[anchor] = built }
        return built
    }
}
