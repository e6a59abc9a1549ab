import Foundation
import OnAirModel
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
