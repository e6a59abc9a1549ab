import Foundation

/// The three things OnAir asks a platform to do for an online item, in the order they happen.
public enum Action: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case prepare, start, stop

    /// Order of execution for one item and target.
    public var rank: Int {
        switch self {
        case .prepare: 0
        case .start: 1
        case .stop: 2
        }
    }

    public static func < (a: Action, b: Action) -> Bool { a.rank < b.rank }

    /// The `type` of the webhook body.
    public var eventType: String { "stream.\(rawValue)" }
}

/// Where a secret comes from. A schedule never holds a secret itself, only a reference to it,
/// so that the file can be shared, reviewed and committed.
public enum SecretReference: Sendable, Hashable, CustomStringConvertible {
    case environment(String)
    case file(String)
    /// A systemd credential: a file named NAME in `$CREDENTIALS_DIRECTORY` (LoadCredential=).
    case credential(String)

    /// Parses `env:NAME`, `file:PATH` or `credential:NAME`; nil for anything else (a literal).
    public init?(_ text: String) {
        if text.hasPrefix("env:"), text.count > 4 {
            self = .environment(String(text.dropFirst(4)))
        } else if text.hasPrefix("file:"), text.count > 5 {
            self = .file(String(text.dropFirst(5)))
        } else if text.hasPrefix("credential:"), text.count > 11,
                  !text.dropFirst(11).contains("/") {
            self = .credential(String(text.dropFirst(11)))
        } else {
            return nil
        }
    }

    /// The reference as written; safe to print, it holds no secret.
    public var description: String {
        switch self {
        case .environment(let n): "env:\(n)"
        case .file(let p): "file:\(p)"
        case .credential(let n): "credential:\(n)"
        }
    }
}

/// How a target proves who is calling.
public enum TargetAuth: Sendable, Hashable {
    case basic(user: String, password: SecretReference)
    case bearer(SecretReference)
    case header(name: String, value: SecretReference)
}

/// What counts as success for a templated request, beyond the transport succeeding.
public struct ResponseExpectation: Sendable, Hashable {
    /// Accepted statuses; nil means any 2xx.
    public var statuses: [Int]?
    /// A regular expression that must match somewhere in the first 64 KiB of the body.
    public var bodyPattern: String?

    public init(statuses: [Int]? = nil, bodyPattern: String? = nil) {
        self.statuses = statuses
        self.bodyPattern = bodyPattern
    }
}

/// One platform call of a templated target. `url`, header values and `body` may hold
/// `{{placeholders}}` that are expanded per job.
public struct RequestTemplate: Sendable, Hashable {
    public var method: String
    public var url: String
    public var headers: [Header]
    public var body: String?
    public var expect: ResponseExpectation?

    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(method: String, url: String, headers: [Header] = [], body: String? = nil, expect: ResponseExpectation? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.expect = expect
    }
}

/// A platform OnAir calls.
public struct Target: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// Signed JSON POST in the Standard Webhooks format.
        case standard(url: String, secret: SecretReference?)
        /// The platform's own HTTP API, one request per action; an action without a request
        /// is not sent to this target.
        case templated(requests: [Action: RequestTemplate])
    }

    public var name: String
    public var kind: Kind
    public var auth: TargetAuth?
    /// Whole-request timeout in seconds.
    public var timeout: Int
    public var caFile: String?
    public var position: SourcePosition

    public init(name: String, kind: Kind, auth: TargetAuth? = nil, timeout: Int = 10, caFile: String? = nil,
                position: SourcePosition = .start) {
        self.name = name
        self.kind = kind
        self.auth = auth
        self.timeout = timeout
        self.caFile = caFile
        self.position = position
    }

    /// Where the call for `action` goes, as `scheme://host[:port]/`, so that its connection can be
    /// opened before the instant; nil when the target takes no such call or its host is templated.
    public func origin(for action: Action) -> String? {
        switch kind {
        case .standard(let url, _): return URLOrigin.of(url)
        case .templated(let requests): return requests[action].flatMap { URLOrigin.of($0.url) }
        }
    }

    /// Whether this target receives a call for `action`.
    public func handles(_ action: Action) -> Bool {
        switch kind {
        case .standard: true
        case .templated(let requests): requests[action] != nil
        }
    }
}

/// One programme item on one day, with its times resolved to instants. Daily items appear
/// once per day they happen, with the id `ID-YYYY-MM-DD`.
public struct Item: Sendable, Hashable {
    public var id: String
    public var title: String
    public var kind: String?
    public var location: String?
    public var online: Bool
    public var day: LocalDate
    public var start: Date
    public var end: Date
    public var targets: [String]
    /// The id of the daily item this one repeats, if it is one.
    public var dailyID: String?
    public var position: SourcePosition

    public init(id: String, title: String, kind: String? = nil, location: String? = nil, online: Bool = true,
                day: LocalDate, start: Date, end: Date, targets: [String], dailyID: String? = nil,
                position: SourcePosition = .start) {
        self.id = id
        self.title = title
        self.kind = kind
        self.location = location
        self.online = online
        self.day = day
        self.start = start
        self.end = end
        self.targets = targets
        self.dailyID = dailyID
        self.position = position
    }
}

/// One day of the event.
public struct Day: Sendable, Hashable {
    public var date: LocalDate
    public var title: String?
    public init(date: LocalDate, title: String?) {
        self.date = date
        self.title = title
    }
}

/// A validated week schedule: every time resolved, every reference checked.
public struct Schedule: Sendable, Hashable {
    public var id: String
    public var title: String
    public var theme: String?
    public var timeZone: TimeZone
    /// Seconds before an item's start that `prepare` fires; 0 means no prepare call.
    public var leadTime: Int
    public var targets: [Target]
    public var days: [Day]
    /// Every item of the week (programme and daily), sorted by start.
    public var items: [Item]

    public init(id: String, title: String, theme: String? = nil, timeZone: TimeZone, leadTime: Int = 0,
                targets: [Target], days: [Day], items: [Item]) {
        self.id = id
        self.title = title
        self.theme = theme
        self.timeZone = timeZone
        self.leadTime = leadTime
        self.targets = targets
        self.days = days
        self.items = items
    }

    public func target(named name: String) -> Target? { targets.first { $0.name == name } }
    public func item(id: String) -> Item? { items.first { $0.id == id } }
    public func day(_ date: LocalDate) -> Day? { days.first { $0.date == date } }
}
