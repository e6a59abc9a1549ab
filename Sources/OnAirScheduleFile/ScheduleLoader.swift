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

// MARK: - Building the model from YAML nodes

private let slugAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")

func isSlug(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 64 && text.allSatisfy { slugAllowed.contains($0) }
        && !text.hasPrefix("-") && !text.hasSuffix("-")
}

/// An item as written, before it is placed on a day.
private struct RawItem {
    var id: String
    var title: String
    var kind: String?
    var location: String?
    var online: Bool
    var start: LocalTimeOfDay
    var startPosition: SourcePosition
    var end: EndSpec
    var endPosition: SourcePosition
    var targets: [(name: String, position: SourcePosition)]?
    var position: SourcePosition
    var idPosition: SourcePosition

    enum EndSpec {
        case time(LocalTimeOfDay, String)
        case duration(Int)
    }
}

/// A key's value together with where the key and the value stand.
private struct Field {
    var key: YAMLNode
    var value: YAMLNode
}

private struct ScheduleBuilder {
    let file: String
    let options: ScheduleLoader.Options
    var diagnostics: [Diagnostic] = []

    init(file: String, options: ScheduleLoader.Options) {
        self.file = file
        self.options = options
    }

    mutating func error(_ position: SourcePosition, _ message: String) {
        diagnostics.append(Diagnostic(file: file, line: position.line, column: position.column, message: message))
    }

    func position(_ node: YAMLNode) -> SourcePosition {
        SourcePosition(line: node.mark.line, column: node.mark.column)
    }

    // MARK: YAMLNode access

    /// The mapping's fields by key, reporting unknown keys and missing required ones.
    mutating func fields(_ node: YAMLNode, _ what: String, allowed: [String], required: [String]) -> [String: Field]? {
        guard case .mapping(let mapping) = node else {
            error(position(node), "\(what) must be a mapping of keys to values, not \(describe(node))")
            return nil
        }
        var result: [String: Field] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                error(position(key), "keys in \(what) must be plain names")
                continue
            }
            let name = scalar.string
            if !allowed.contains(name) {
                error(position(key), "unknown key '\(name)' in \(what)\(suggestion(for: name, among: allowed))")
                continue
            }
            result[name] = Field(key: key, value: value)
        }
        for name in required where result[name] == nil {
            error(position(node), "\(what) is missing required key '\(name)'")
        }
        return result
    }

    func suggestion(for name: String, among allowed: [String]) -> String {
        let close = allowed.min { editDistance(name, $0) < editDistance(name, $1) }
        if let close, editDistance(name, close) <= 2 { return "; did you mean '\(close)'?" }
        return " (allowed: \(allowed.joined(separator: ", ")))"
    }

    func describe(_ node: YAMLNode) -> String {
        switch node {
        case .scalar(let s): "the value '\(s.string.prefix(40))'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }

    func isNull(_ node: YAMLNode) -> Bool {
        guard case .scalar(let s) = node, s.isPlain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// A scalar's text; nil (with an error) for lists and mappings.
    mutating func string(_ field: Field?, _ what: String) -> String? {
        guard let field else { return nil }
        guard case .scalar(let s) = field.value else {
            error(position(field.value), "\(what) must be a single value, not \(describe(field.value))")
            return nil
        }
        return s.string
    }

    /// An optional scalar: absent and `null` both mean "not given".
    mutating func optionalString(_ field: Field?, _ what: String) -> String? {
        guard let field, !isNull(field.value) else { return nil }
        return string(field, what)
    }

    mutating func requiredText(_ field: Field?, _ what: String) -> String? {
        guard let field else { return nil }
        guard let text = string(field, what) else { return nil }
        if text.trimmingCharacters(in: .whitespaces).isEmpty || isNull(field.value) {
            error(position(field.value), "\(what) must not be empty")
            return nil
        }
        return text
    }

    mutating func slug(_ field: Field?, _ what: String) -> String? {
        guard let field, let text = requiredText(field, what) else { return nil }
        guard isSlug(text) else {
            error(position(field.value), "\(what) '\(text.prefix(64))' is not a valid slug: use lowercase letters, digits and '-' (at most 64)")
            return nil
        }
        return text
    }

    mutating func duration(_ field: Field?, _ what: String, allowZero: Bool) -> Int? {
        guard let field, let text = requiredText(field, what) else { return nil }
        guard let seconds = DurationText.seconds(text), allowZero || seconds > 0 else {
            error(position(field.value), "\(what) '\(text.prefix(40))' is not a duration; write it like 90s, 10m, 1h30m or 2h\(allowZero ? " (0 for none)" : "")")
            return nil
        }
        return seconds
    }

    mutating func bool(_ field: Field?, _ what: String) -> Bool? {
        guard let field, let text = string(field, what) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            error(position(field.value), "\(what) must be true or false, not '\(text.prefix(40))'")
            return nil
        }
    }

    mutating func sequence(_ field: Field?, _ what: String) -> [YAMLNode]? {
        guard let field else { return nil }
        if isNull(field.value) { return [] }
        guard case .sequence(let seq) = field.value else {
            error(position(field.value), "\(what) must be a list, not \(describe(field.value))")
            return nil
        }
        return Array(seq)
    }

    mutating func secret(_ field: Field?, _ what: String) -> SecretReference? {
        guard let field, let text = requiredText(field, what) else { return nil }
        guard let reference = SecretReference(text) else {
            error(position(field.value), "\(what) must be a reference (env:NAME, file:PATH or credential:NAME), never the secret itself")
            return nil
        }
        if options.checkEnvironment {
            do {
                let value = try options.secrets.resolve(reference)
                if value.hasPrefix("whsec_"), Data(base64Encoded: String(value.dropFirst(6))) == nil {
                    error(position(field.value), "\(what) \(reference) holds a whsec_ secret that is not valid base64")
                }
            } catch {
                self.error(position(field.value), "\(what): \(error.description)")
            }
        }
        return reference
    }

    // MARK: The schedule

    mutating func build(_ root: YAMLNode) -> Schedule? {
        guard let top = fields(root, "the schedule",
                               allowed: ["id", "title", "theme", "timezone", "lead_time", "targets", "daily", "days"],
                               required: ["id", "title", "timezone", "targets", "days"])
        else { return nil }

        let id = slug(top["id"], "id")
        let title = requiredText(top["title"], "title")
        let theme = optionalString(top["theme"], "theme")
        var zone: TimeZone?
        if let field = top["timezone"], let name = requiredText(field, "timezone") {
            zone = TimeZone(identifier: name)
            if zone == nil || !name.contains("/") && name != "UTC" {
                zone = nil
                error(position(field.value), "unknown timezone '\(name.prefix(64))'; use an IANA name such as Europe/Amsterdam")
            }
        }
        let leadTime = top["lead_time"].flatMap { isNull($0.value) ? 0 : duration($0, "lead_time", allowZero: true) } ?? 0

        let targets = buildTargets(top["targets"])
        let dailies = buildItemList(top["daily"], "daily", isDaily: true)
        let days = buildDays(top["days"], dailies: dailies)

        guard let id, let title, let zone, let targets, let days else { return nil }
        let targetNames = Set(targets.map(\.name))
        var items: [Item] = []
        items.reserveCapacity(days.reduce(0) { $0 + $1.items.count })
        for day in days {
            for raw in day.items {
                if let item = place(raw.item, on: day.day, dailyID: raw.dailyID, zone: zone,
                                    allTargets: targets.map(\.name), known: targetNames) {
                    items.append(item)
                }
            }
        }
        checkDuplicateIDs(days: days, dailies: dailies ?? [])
        checkOverlaps(items, zone: zone)
        items.sort { ($0.start, $0.end, $0.id) < ($1.start, $1.end, $1.id) }
        guard diagnostics.isEmpty else { return nil }
        return Schedule(id: id, title: title, theme: theme, timeZone: zone, leadTime: leadTime,
                        targets: targets, days: days.map(\.day), items: items)
    }

    // MARK: Targets

    mutating func buildTargets(_ field: Field?) -> [Target]? {
        guard let field else { return nil }
        guard case .mapping(let mapping) = field.value else {
            error(position(field.value), "targets must be a mapping of target names to targets, not \(describe(field.value))")
            return nil
        }
        if mapping.isEmpty {
            error(position(field.value), "targets must name at least one target")
            return nil
        }
        var targets: [Target] = []
        var ok = true
        for (key, value) in mapping {
            let name = key.string ?? ""
            guard isSlug(name) else {
                error(position(key), "target name '\(name.prefix(64))' is not a valid slug: use lowercase letters, digits and '-'")
                ok = false
                continue
            }
            if let target = buildTarget(name: name, key: key, value) { targets.append(target) } else { ok = false }
        }
        return ok ? targets : nil
    }

    mutating func buildTarget(name: String, key: YAMLNode, _ node: YAMLNode) -> Target? {
        let what = "target '\(name)'"
        guard let f = fields(node, what, allowed: ["url", "secret", "timeout", "ca_file", "auth", "requests"], required: []) else { return nil }
        let before = diagnostics.count
        let timeout = f["timeout"].flatMap { duration($0, "timeout of \(what)", allowZero: false) } ?? 10
        if let t = f["timeout"], timeout > 600 {
            error(position(t.value), "timeout of \(what) is longer than 10m; a platform that slow should not hold a live call")
        }
        var caFile: String?
        if let field = f["ca_file"], let path = requiredText(field, "ca_file of \(what)") {
            caFile = path
            if options.checkEnvironment, !FileManager.default.isReadableFile(atPath: path) {
                error(position(field.value), "ca_file \(path) of \(what) cannot be read")
            }
        }
        let auth = f["auth"].flatMap { buildAuth($0, what) }
        let kind: Target.Kind
        switch (f["url"], f["requests"]) {
        case (let url?, nil):
            if let u = requiredText(url, "url of \(what)") { checkURL(u, at: position(url.value), what: "url of \(what)", templated: false) }
            kind = .standard(url: string(url, "url") ?? "", secret: f["secret"].flatMap { secret($0, "secret of \(what)") })
        case (nil, let requests?):
            if let s = f["secret"] {
                error(position(s.key), "secret applies to standard targets (url:); a templated target authenticates with auth:")
            }
            kind = .templated(requests: buildRequests(requests, what))
        case (_?, _?):
            error(position(key), "\(what) has both url (standard webhook) and requests (platform API); give one")
            return nil
        case (nil, nil):
            error(position(node), "\(what) needs url (a standard webhook) or requests (a platform's own API)")
            return nil
        }
        guard diagnostics.count == before else { return nil }
        return Target(name: name, kind: kind, auth: auth, timeout: timeout, caFile: caFile, position: position(key))
    }

    mutating func buildAuth(_ field: Field, _ what: String) -> TargetAuth? {
        let ctx = "auth of \(what)"
        guard let f = fields(field.value, ctx, allowed: ["basic", "bearer", "header"], required: []) else { return nil }
        guard f.count == 1, let (kind, inner) = f.first else {
            error(position(field.value), "\(ctx) must have exactly one of basic, bearer or header")
            return nil
        }
        switch kind {
        case "basic":
            guard let b = fields(inner.value, "basic \(ctx)", allowed: ["user", "password"], required: ["user", "password"]),
                  let user = requiredText(b["user"], "user"), let password = secret(b["password"], "password")
            else { return nil }
            if user.contains(":") {
                error(position(b["user"]!.value), "user of basic \(ctx) must not contain ':'")
                return nil
            }
            return .basic(user: user, password: password)
        case "bearer":
            return secret(inner, "bearer token").map { .bearer($0) }
        default:
            guard let h = fields(inner.value, "header \(ctx)", allowed: ["name", "value"], required: ["name", "value"]),
                  let name = requiredText(h["name"], "header name"), let value = secret(h["value"], "header value")
            else { return nil }
            guard isHeaderName(name) else {
                error(position(h["name"]!.value), "'\(name.prefix(64))' is not a valid HTTP header name")
                return nil
            }
            return .header(name: name, value: value)
        }
    }

    mutating func buildRequests(_ field: Field, _ what: String) -> [Action: RequestTemplate] {
        let allowed = Action.allCases.map(\.rawValue)
        guard let f = fields(field.value, "requests of \(what)", allowed: allowed, required: []) else { return [:] }
        if f.isEmpty {
            error(position(field.value), "requests of \(what) must name at least one of prepare, start, stop")
        }
        var result: [Action: RequestTemplate] = [:]
        for action in Action.allCases {
            guard let entry = f[action.rawValue] else { continue }
            let ctx = "\(action.rawValue) request of \(what)"
            guard let r = fields(entry.value, ctx, allowed: ["method", "url", "headers", "body", "expect"], required: ["url"]) else { continue }
            let method = r["method"].flatMap { requiredText($0, "method") } ?? "GET"
            if let m = r["method"], !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) {
                error(position(m.value), "method '\(method.prefix(20))' of \(ctx) is not one of GET, POST, PUT, PATCH, DELETE")
            }
            guard let url = requiredText(r["url"], "url of \(ctx)") else { continue }
            checkURL(url, at: position(r["url"]!.value), what: "url of \(ctx)", templated: true)
            var headers: [RequestTemplate.Header] = []
            if let h = r["headers"] {
                if case .mapping(let map) = h.value {
                    for (k, v) in map {
                        let name = k.string ?? ""
                        if !isHeaderName(name) { error(position(k), "'\(name.prefix(64))' is not a valid HTTP header name") }
                        guard let value = string(Field(key: k, value: v), "header \(name)") else { continue }
                        if value.contains("\n") || value.contains("\r") {
                            error(position(v), "header \(name) must be a single line")
                        }
                        checkPlaceholders(value, at: position(v))
                        headers.append(.init(name: name, value: value))
                    }
                } else {
                    error(position(h.value), "headers of \(ctx) must be a mapping of header names to values")
                }
            }
            let body = optionalString(r["body"], "body of \(ctx)")
            if let body, let b = r["body"] { checkPlaceholders(body, at: position(b.value)) }
            let expect = r["expect"].flatMap { buildExpectation($0, ctx) }
            result[action] = RequestTemplate(method: method, url: url, headers: headers, body: body, expect: expect)
        }
        return result
    }

    mutating func buildExpectation(_ field: Field, _ ctx: String) -> ResponseExpectation? {
        guard let f = fields(field.value, "expect of \(ctx)", allowed: ["status", "body"], required: []) else { return nil }
        var statuses: [Int]?
        if let s = f["status"] {
            let nodes: [YAMLNode]
            if case .sequence(let seq) = s.value { nodes = Array(seq) } else { nodes = [s.value] }
            statuses = []
            for node in nodes {
                if let code = node.string.flatMap({ Int($0) }), (100...599).contains(code) {
                    statuses?.append(code)
                } else {
                    error(position(node), "status in expect must be an HTTP status code (100-599)")
                }
            }
            if statuses?.isEmpty == true { error(position(s.value), "expect status must list at least one status") }
        }
        var pattern: String?
        if let b = f["body"], let text = requiredText(b, "expect body") {
            do {
                _ = try NSRegularExpression(pattern: text)
                pattern = text
            } catch {
                self.error(position(b.value), "expect body '\(text.prefix(60))' is not a valid regular expression")
            }
        }
        return ResponseExpectation(statuses: statuses, bodyPattern: pattern)
    }

    func isHeaderName(_ name: String) -> Bool {
        let token = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return !name.isEmpty && name.allSatisfy { token.contains($0) }
    }

    /// Reports placeholders that are not known or not closed.
    mutating func checkPlaceholders(_ text: String, at pos: SourcePosition) {
        do {
            _ = try MustacheEscaping.compile(text, as: .text)
        } catch {
            self.error(pos, "template '\(text.prefix(60))' is not valid: \(error)")
            return
        }
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            guard let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex) else {
                error(pos, "placeholder opened with '{{' is never closed with '}}'")
                return
            }
            var name = rest[open.upperBound..<close.lowerBound]
            if name.hasPrefix("{") { name = name.dropFirst() }
            if name.hasPrefix("&") { name = name.dropFirst() }
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            if !knownPlaceholders.contains(trimmed) {
                error(pos, "unknown placeholder {{\(trimmed.prefix(40))}}; known: \(knownPlaceholders.sorted().joined(separator: ", "))")
            }
            rest = rest[close.upperBound...]
            if rest.hasPrefix("}") { rest = rest.dropFirst() }
        }
    }

    /// Refuses a URL that can never be sent (see `URLCheck`), with one diagnostic at the url.
    mutating func checkURL(_ text: String, at pos: SourcePosition, what: String, templated: Bool) {
        if templated { checkPlaceholders(text, at: pos) }
        if let problem = URLCheck.problem(in: text, templated: templated) {
            error(pos, "\(what) \(problem)")
        }
    }

    // MARK: Items and days

    mutating func buildItemList(_ field: Field?, _ what: String, isDaily: Bool) -> [RawItem]? {
        guard let nodes = sequence(field, what) else { return field == nil ? [] : nil }
        var items: [RawItem] = []
        for node in nodes {
            if let item = buildItem(node, isDaily: isDaily) { items.append(item) }
        }
        // A list with a broken item is not used further, so that one typo yields one message.
        return items.count == nodes.count ? items : nil
    }

    mutating func buildItem(_ node: YAMLNode, isDaily: Bool) -> RawItem? {
        let what = isDaily ? "daily item" : "programme item"
        guard let f = fields(node, what, allowed: ["id", "title", "kind", "start", "end", "duration", "location", "online", "targets"],
                             required: ["id", "title", "start"])
        else { return nil }
        let before = diagnostics.count
        let id = slug(f["id"], "id of \(what)")
        let title = requiredText(f["title"], "title")
        let kind = optionalString(f["kind"], "kind")
        let location = optionalString(f["location"], "location")
        let online = f["online"].flatMap { bool($0, "online") } ?? true
        var start: LocalTimeOfDay?
        if let s = f["start"], let text = requiredText(s, "start") {
            start = LocalTimeOfDay(text)
            if start == nil { error(position(s.value), "start '\(text.prefix(40))' is not a time; write HH:MM or HH:MM:SS, optionally with an offset like 10:00+01:00") }
        }
        var end: RawItem.EndSpec?
        var endPosition = SourcePosition.start
        switch (f["end"], f["duration"]) {
        case (let e?, nil):
            endPosition = position(e.value)
            if let text = requiredText(e, "end") {
                if let t = LocalTimeOfDay(text) { end = .time(t, text) } else {
                    error(endPosition, "end '\(text.prefix(40))' is not a time; write HH:MM or HH:MM:SS, optionally with an offset")
                }
            }
        case (nil, let d?):
            endPosition = position(d.value)
            end = duration(d, "duration", allowZero: false).map { .duration($0) }
        case (let e?, _?):
            error(position(e.key), "\(what) has both end and duration; give one")
        case (nil, nil):
            error(position(node), "\(what) needs end or duration")
        }
        var targets: [(String, SourcePosition)]?
        if let t = f["targets"], let list = sequence(t, "targets") {
            targets = []
            for entry in list {
                guard case .scalar(let s) = entry else {
                    error(position(entry), "targets must list target names")
                    continue
                }
                targets?.append((s.string, position(entry)))
            }
            if online, targets?.isEmpty == true {
                error(position(t.value), "online item has no targets; list at least one, or set online: false")
            }
        }
        guard diagnostics.count == before, let id, let title, let start, let end else { return nil }
        return RawItem(id: id, title: title, kind: kind, location: location, online: online, start: start,
                       startPosition: position(f["start"]!.value), end: end, endPosition: endPosition,
                       targets: targets, position: position(node), idPosition: position(f["id"]!.value))
    }

    struct BuiltDay {
        var day: Day
        var datePosition: SourcePosition
        var items: [(item: RawItem, dailyID: String?)]
    }

    mutating func buildDays(_ field: Field?, dailies: [RawItem]?) -> [BuiltDay]? {
        guard let field, let nodes = sequence(field, "days") else { return nil }
        if nodes.isEmpty {
            error(position(field.value), "days must list at least one day")
            return nil
        }
        var days: [BuiltDay] = []
        var ok = true
        for node in nodes {
            guard let f = fields(node, "day", allowed: ["date", "title", "skip_daily", "programme"], required: ["date"]) else {
                ok = false
                continue
            }
            let before = diagnostics.count
            var date: LocalDate?
            if let d = f["date"], let text = requiredText(d, "date") {
                date = LocalDate(text)
                if date == nil { error(position(d.value), "date '\(text.prefix(40))' is not a calendar date; write YYYY-MM-DD") }
            }
            let title = optionalString(f["title"], "title of day")
            var skipped = Set<String>()
            if let s = f["skip_daily"], let list = sequence(s, "skip_daily") {
                let dailyIDs = Set((dailies ?? []).map(\.id))
                for entry in list {
                    let name = entry.string ?? ""
                    if dailies != nil, !dailyIDs.contains(name) {
                        error(position(entry), "skip_daily names '\(name.prefix(64))', which is not a daily item")
                    }
                    skipped.insert(name)
                }
            }
            let programme = buildItemList(f["programme"], "programme", isDaily: false)
            guard diagnostics.count == before, let date, let programme else {
                ok = false
                continue
            }
            var items = programme.map { (item: $0, dailyID: String?.none) }
            for daily in dailies ?? [] where !skipped.contains(daily.id) {
                var copy = daily
                copy.id = "\(daily.id)-\(date)"
                items.append((copy, daily.id))
            }
            days.append(BuiltDay(day: Day(date: date, title: title), datePosition: position(f["date"]!.value), items: items))
        }
        guard ok else { return nil }
        return checkWeek(days)
    }

    /// A schedule file is one week: its days are distinct, in order, and within seven days
    /// of the first, so a mistyped month or year cannot schedule a stream months away.
    /// Returns the days that pass, so a misplaced day does not cause follow-on errors.
    mutating func checkWeek(_ days: [BuiltDay]) -> [BuiltDay] {
        guard let first = days.first?.day.date else { return days }
        let last = first.adding(days: 6)
        var previous: LocalDate?
        var accepted: [BuiltDay] = []
        for day in days {
            let date = day.day.date
            if let previous, date == previous {
                error(day.datePosition, "date \(date) appears twice in days")
            } else if let previous, date < previous {
                error(day.datePosition, "date \(date) comes before the previous day \(previous); list days in order")
            } else if date > last {
                error(day.datePosition, "date \(date) is outside the week \(first) to \(last) that the first day opens; a schedule file covers at most 7 days")
            } else {
                accepted.append(day)
                previous = date
            }
        }
        return accepted
    }

    /// Resolves an item's times on its day and checks its target names.
    mutating func place(_ raw: RawItem, on day: Day, dailyID: String?, zone: TimeZone,
                        allTargets: [String], known: Set<String>) -> Item? {
        let before = diagnostics.count
        let start = resolve(raw.start, text: nil, field: "start", of: raw, on: day.date, zone: zone, at: raw.startPosition)
        var end: Date?
        switch raw.end {
        case .duration(let seconds):
            end = start.map { $0.addingTimeInterval(TimeInterval(seconds)) }
        case .time(let time, let text):
            end = resolve(time, text: text, field: "end", of: raw, on: day.date, zone: zone, at: raw.endPosition)
            if let s = start, let e = end, e <= s {
                error(raw.endPosition, "end \(text) is not after start of '\(raw.id)'; for an item that runs past midnight, give a duration instead")
            }
        }
        var targets: [String] = []
        if let list = raw.targets {
            for (name, pos) in list {
                if !known.contains(name) {
                    // A daily item is checked once, on its first day, not once per day.
                    if dailyID == nil || !diagnostics.contains(where: { $0.line == pos.line && $0.column == pos.column }) {
                        error(pos, "unknown target '\(name.prefix(64))'; targets are: \(allTargets.joined(separator: ", "))")
                    }
                } else if targets.contains(name) {
                    error(pos, "target '\(name)' is listed twice")
                } else {
                    targets.append(name)
                }
            }
        } else {
            targets = allTargets
        }
        guard diagnostics.count == before, let start, let end else { return nil }
        return Item(id: raw.id, title: raw.title, kind: raw.kind, location: raw.location, online: raw.online,
                    day: day.date, start: start, end: end, targets: raw.online ? targets : [],
                    dailyID: dailyID, position: raw.position)
    }

    mutating func resolve(_ time: LocalTimeOfDay, text: String?, field: String, of raw: RawItem, on date: LocalDate,
                          zone: TimeZone, at pos: SourcePosition) -> Date? {
        let result = WallClock.instant(date: date, time: time, zone: zone)
        if case .success(let instant) = result { return instant }
        let full = WallClock.clockText(time.secondsOfDay)
        let clock = time.secondsOfDay % 60 == 0 ? String(full.prefix(5)) : full
        switch result {
        case .success(let instant):
            return instant
        case .failure(.gap):
            error(pos, "\(field) \(clock) of '\(raw.id)' does not exist on \(date) in \(zone.identifier): the clocks jump forward over it; choose another time")
        case .failure(.ambiguous(let offsets)):
            let options = offsets.map { "\"\(clock)\(WallClock.offsetText($0))\"" }.joined(separator: " or ")
            error(pos, "\(field) \(clock) of '\(raw.id)' is ambiguous on \(date) in \(zone.identifier): the clocks fall back and pass it twice; write \(options)")
        case .failure(.offsetNotInForce(let offset)):
            error(pos, "\(field) of '\(raw.id)' gives offset \(WallClock.offsetText(offset)), which \(zone.identifier) does not use at \(clock) on \(date)")
        }
        return nil
    }

    mutating func checkDuplicateIDs(days: [BuiltDay], dailies: [RawItem]) {
        var seen: [String: SourcePosition] = [:]
        for daily in dailies {
            if let first = seen[daily.id] {
                error(daily.idPosition, "duplicate id '\(daily.id)'; first used at line \(first.line)")
            } else {
                seen[daily.id] = daily.idPosition
            }
        }
        for day in days {
            for (item, dailyID) in day.items where dailyID == nil {
                if let first = seen[item.id] {
                    error(item.idPosition, "duplicate id '\(item.id)'; first used at line \(first.line)")
                } else {
                    seen[item.id] = item.idPosition
                }
            }
        }
        for day in days {
            for (item, dailyID) in day.items where dailyID != nil {
                if let first = seen[item.id] {
                    error(first, "id '\(item.id)' is also the id of daily item '\(dailyID!)' on \(day.day.date)")
                }
            }
        }
    }

    /// Two online items that share a target must not be on air at the same time: the platform
    /// would get a start for one while the other is live, and the first stop would end both.
    mutating func checkOverlaps(_ items: [Item], zone: TimeZone) {
        // Positions in `items`, not copies of them: a 10,000-item week must stay small.
        var byTarget: [String: [Int]] = [:]
        for (position, item) in items.enumerated() where item.online {
            for target in item.targets { byTarget[target, default: []].append(position) }
        }
        var reported = Set<String>()
        for (target, list) in byTarget.sorted(by: { $0.key < $1.key }) {
            let sorted = list.sorted { (items[$0].start, items[$0].id) < (items[$1].start, items[$1].id) }
            var live: Item?
            for item in sorted.lazy.map({ items[$0] }) {
                if let current = live, item.start < current.end {
                    let key = "\(current.id)|\(item.id)"
                    if !reported.contains(key) {
                        reported.insert(key)
                        error(item.position, "'\(item.id)' overlaps '\(current.id)' (line \(current.position.line)) on target '\(target)': both online at \(WallClock.localText(item.start, in: zone))")
                    }
                    if item.end > current.end { live = item }
                } else {
                    live = item
                }
            }
        }
    }
}

/// Levenshtein distance, for "did you mean" on unknown keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var previous = row[0]
        row[0] = i
        for j in 1...b.count {
            let saved = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = saved
        }
    }
    return row[b.count]
}
