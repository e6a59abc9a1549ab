import Foundation
import OnAirModel

/// Targets: standard webhooks, templated requests, authentication and response expectations.
extension ScheduleBuilder {
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
}
