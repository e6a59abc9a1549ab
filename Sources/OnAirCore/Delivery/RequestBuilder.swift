import Foundation
import Mustache

/// Everything needed to render one send of a job.
public struct DeliveryContext: Sendable {
    public var schedule: Schedule
    public var item: Item
    public var job: PlannedJob
    /// 0 for the scheduled send; 1, 2, … for an operator's manual re-sends.
    public var send: Int
    /// The body's `timestamp`: the scheduled instant, or for a manual send the moment it was accepted.
    public var timestamp: Date

    public init(schedule: Schedule, item: Item, job: PlannedJob, send: Int = 0, timestamp: Date? = nil) {
        self.schedule = schedule
        self.item = item
        self.job = job
        self.send = send
        self.timestamp = timestamp ?? job.instant
    }

    public var webhookID: String { WebhookSigner.webhookID(job: job.id, send: send) }
}

/// Why a request could not be rendered (a secret went missing since validation, say).
public struct RequestBuildError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Renders jobs into HTTP requests: the Standard Webhooks POST for standard targets, the
/// platform's own call for templated ones. Secrets are read at every attempt, so a token file
/// that another tool refreshes is used as it is now.
public struct RequestBuilder: Sendable {
    public var secrets: SecretResolver

    public init(secrets: SecretResolver = SecretResolver()) {
        self.secrets = secrets
        MustacheEscaping.register()
    }

    /// The request for one attempt sent at `sendingAt`, and the secret values it holds (so that
    /// error texts can be scrubbed of them).
    public func request(_ context: DeliveryContext, target: Target, sendingAt: Date) throws -> (HTTPRequest, Redactor) {
        var redactor = Redactor()
        var request: HTTPRequest
        switch target.kind {
        case .standard(let url, let secretRef):
            let body = Self.standardBody(context)
            let id = context.webhookID
            let timestamp = Int(sendingAt.timeIntervalSince1970)
            var headers: [HTTPRequest.Header] = [
                .init("Content-Type", "application/json"),
                .init("webhook-id", id),
                .init("webhook-timestamp", String(timestamp)),
            ]
            if let secretRef {
                let secret = try resolve(secretRef, &redactor)
                headers.append(.init("webhook-signature", WebhookSigner.signature(id: id, timestamp: timestamp, body: body, secret: secret)))
            }
            request = HTTPRequest(method: "POST", url: url, headers: headers, body: body)
        case .templated(let requests):
            guard let template = requests[context.job.action] else {
                throw RequestBuildError(description: "target \(target.name) has no \(context.job.action.rawValue) request")
            }
            let values = Self.placeholders(context)
            let url = try MustacheEscaping.render(template.url, values, as: .url)
            var headers = try template.headers.map {
                HTTPRequest.Header($0.name, try MustacheEscaping.render($0.value, values, as: .headerValue))
            }
            if headers.contains(where: { $0.name.lowercased() == "webhook-id" }) == false {
                headers.append(.init("webhook-id", context.webhookID))
            }
            let bodyKind: MustacheEscaping.Kind = Self.declaresJSON(headers) ? .jsonString : .text
            let body = try template.body.map { Array(try MustacheEscaping.render($0, values, as: bodyKind).utf8) }
            request = HTTPRequest(method: template.method, url: url, headers: headers, body: body)
        }
        request.timeout = Double(target.timeout)
        request.connectTimeout = min(Double(target.timeout), 5)
        request.caFile = target.caFile
        switch target.auth {
        case .basic(let user, let password)?:
            request.basicAuth = .init(user: user, password: try resolve(password, &redactor))
            redactor.add(Data("\(user):\(redactor.secrets.last ?? "")".utf8).base64EncodedString())
        case .bearer(let token)?:
            request.headers.append(.init("Authorization", "Bearer " + (try resolve(token, &redactor))))
        case .header(let name, let value)?:
            request.headers.append(.init(name, try resolve(value, &redactor)))
        case nil:
            break
        }
        return (request, redactor)
    }

    private func resolve(_ reference: SecretReference, _ redactor: inout Redactor) throws -> String {
        do {
            let value = try secrets.resolve(reference)
            redactor.add(value)
            return value
        } catch {
            throw RequestBuildError(description: error.description)
        }
    }

    /// The JSON body of SPEC section 3, keys in the documented order, absent optionals as null.
    public static func standardBody(_ context: DeliveryContext) -> [UInt8] {
        let item = context.item
        let day = context.schedule.day(item.day)
        var json = "{\"type\":" + JSON.string(context.job.action.eventType)
        json += ",\"timestamp\":" + JSON.string(WallClock.utcText(context.timestamp))
        json += ",\"data\":{\"event\":" + JSON.string(context.schedule.id)
        json += ",\"item\":" + JSON.string(item.id)
        json += ",\"title\":" + JSON.string(item.title)
        json += ",\"kind\":" + JSON.optional(item.kind)
        json += ",\"day\":" + JSON.string(item.day.description)
        json += ",\"day_title\":" + JSON.optional(day?.title)
        json += ",\"start\":" + JSON.string(WallClock.utcText(item.start))
        json += ",\"end\":" + JSON.string(WallClock.utcText(item.end))
        json += ",\"location\":" + JSON.optional(item.location)
        json += "}}"
        return Array(json.utf8)
    }

    /// Whether the headers say the body is JSON (`application/json` or any `…+json`, parameters
    /// such as `; charset=utf-8` allowed), so that placeholders in it must be JSON-escaped.
    static func declaresJSON(_ headers: [HTTPRequest.Header]) -> Bool {
        guard let value = headers.last(where: { $0.name.lowercased() == "content-type" })?.value else { return false }
        let mediaType = value.prefix { $0 != ";" }.trimmingCharacters(in: .whitespaces).lowercased()
        return mediaType == "application/json" || mediaType.hasSuffix("+json")
    }

    /// The values templated requests can use; see `knownPlaceholders`.
    static func placeholders(_ context: DeliveryContext) -> [String: Any] {
        let item = context.item
        let day = context.schedule.day(item.day)
        return [
            "item": ["id": item.id, "title": item.title, "kind": item.kind ?? "", "location": item.location ?? "",
                     "start": WallClock.utcText(item.start), "end": WallClock.utcText(item.end)],
            "day": ["date": item.day.description, "title": day?.title ?? ""],
            "event": ["id": context.schedule.id, "title": context.schedule.title],
            "action": context.job.action.rawValue,
            "scheduled_at": WallClock.utcText(context.timestamp),
            "webhook_id": context.webhookID,
        ]
    }
}

/// Mustache rendering with the escaping each part of a request needs (SPEC section 3.1):
/// placeholders in a URL are percent-encoded, in a header value stripped of line breaks, in a
/// JSON body JSON-escaped (an item titled `Plenaire "opening"` must not break the body), in any
/// other body left as they are.
public enum MustacheEscaping {
    public enum Kind: String, Sendable {
        case url = "ONAIR_URL"
        case headerValue = "ONAIR_HEADER"
        /// Inside a JSON string: the template supplies the quotes, the value is escaped.
        case jsonString = "ONAIR_JSON"
        case text = "TEXT"
    }

    struct URLComponentEscaping: MustacheContentType {
        static let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        func escapeText(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: Self.allowed) ?? ""
        }
    }

    struct HeaderValueEscaping: MustacheContentType {
        func escapeText(_ text: String) -> String {
            String(text.map { $0.isNewline ? " " : $0 })
        }
    }

    struct JSONStringEscaping: MustacheContentType {
        func escapeText(_ text: String) -> String { JSON.escaped(text) }
    }

    private static let registration: Void = {
        MustacheContentTypes.register(URLComponentEscaping(), named: Kind.url.rawValue)
        MustacheContentTypes.register(HeaderValueEscaping(), named: Kind.headerValue.rawValue)
        MustacheContentTypes.register(JSONStringEscaping(), named: Kind.jsonString.rawValue)
    }()

    public static func register() { _ = registration }

    /// Parses a template as the given kind; throws for a syntax error.
    public static func compile(_ text: String, as kind: Kind) throws -> MustacheTemplate {
        register()
        return try MustacheTemplate(string: "{{% CONTENT_TYPE: \(kind.rawValue)}}" + text)
    }

    public static func render(_ text: String, _ values: [String: Any], as kind: Kind) throws -> String {
        do {
            return try compile(text, as: kind).render(values)
        } catch {
            throw RequestBuildError(description: "template '\(text.prefix(80))' cannot be rendered: \(error)")
        }
    }
}

/// Removes secret values from text that leaves the delivery engine (error messages, response
/// lines), since a platform or libcurl may echo what it was sent.
public struct Redactor: Sendable {
    public private(set) var secrets: [String] = []

    public init() {}

    public mutating func add(_ secret: String) {
        if secret.count >= 3 { secrets.append(secret) }
    }

    public func scrub(_ text: String) -> String {
        var out = text
        for secret in secrets.sorted(by: { $0.count > $1.count }) {
            out = out.replacingOccurrences(of: secret, with: "***")
        }
        return out
    }
}

/// Minimal JSON text helpers for bodies whose key order is part of the contract.
public enum JSON {
    /// `text` as a quoted JSON string.
    public static func string(_ text: String) -> String {
        "\"" + escaped(text) + "\""
    }

    /// `text` escaped for use between the quotes of a JSON string (RFC 8259 section 7): quote,
    /// backslash and every control character are escaped, everything else is kept.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    public static func optional(_ text: String?) -> String {
        text.map(string) ?? "null"
    }
}
