import Foundation
import OnAirModel

/// Builds a `Schedule` from libyaml nodes, collecting every problem with its position rather than
/// stopping at the first. Its parts: field access here, targets and items in their own files.
// MARK: - Building the model from YAML nodes

private let slugAllowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")

func isSlug(_ text: String) -> Bool {
    !text.isEmpty && text.count <= 64 && text.allSatisfy { slugAllowed.contains($0) }
        && !text.hasPrefix("-") && !text.hasSuffix("-")
}

/// An item as written, before it is placed on a day.
struct RawItem {
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
struct Field {
    var key: YAMLNode
    var value: YAMLNode
}

struct ScheduleBuilder {
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
}
