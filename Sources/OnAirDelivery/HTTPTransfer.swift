import Foundation
import OnAirModel

/// One HTTP call, fully rendered: what goes on the wire, and how long it may take.
public struct HTTPRequest: Sendable {
    public struct Header: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public struct BasicCredentials: Sendable {
        public var user: String
        public var password: String
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
    }

    public var method: String
    public var url: String
    public var headers: [Header]
    public var body: [UInt8]?
    /// Whole request, in seconds.
    public var timeout: Double
    public var connectTimeout: Double
    /// CA bundle used instead of the system's, as `curl --cacert`.
    public var caFile: String?
    public var basicAuth: BasicCredentials?
    /// Speak HTTP over this Unix domain socket instead of TCP (the control socket).
    public var unixSocket: String?
    /// The response body is read up to this many bytes (64 KiB for platforms, more for the CLI).
    public var maximumResponseBytes: Int = CurlClient.maximumBodySize
    /// Held by the transport until `cue.at`, and not sent at all if withdrawn before then.
    public var cue: Cue?

    public init(method: String, url: String, headers: [Header] = [], body: [UInt8]? = nil, timeout: Double = 10,
                connectTimeout: Double? = nil, caFile: String? = nil, basicAuth: BasicCredentials? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout ?? min(timeout, 5)
        self.caFile = caFile
        self.basicAuth = basicAuth
    }
}

/// What came back from a platform.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// The first 64 KiB of the body at most.
    public var body: [UInt8]
    /// The raw `Retry-After` header, if any.
    public var retryAfter: String?

    public init(status: Int, body: [UInt8] = [], retryAfter: String? = nil) {
        self.status = status
        self.body = body
        self.retryAfter = retryAfter
    }

    /// The first line of the body, trimmed and cut to 200 characters, for history.
    public var firstLine: String {
        let text = String(decoding: body.prefix(4096), as: UTF8.self)
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return String(line.trimmingCharacters(in: .whitespaces).prefix(200))
    }
}

/// The result of one transfer: a response, or the transport error that prevented one.
public struct TransferResult: Sendable {
    public enum Kind: Sendable {
        case response(HTTPResponse)
        /// `code` is libcurl's CURLcode; `message` its error text.
        case failure(code: Int, message: String)
        /// The call never left: withdrawn before its instant, or the transport was shutting down
        /// before it began. Nothing reached the platform.
        case notSent(reason: String)
    }

    public var kind: Kind
    /// Seconds from start to end as libcurl measured it (CURLINFO_TOTAL_TIME_T).
    public var totalTime: Double
    /// Connections libcurl had to open for this transfer (CURLINFO_NUM_CONNECTS): 0 when it went
    /// out on a connection that was already open, which is what warming up is for.
    public var newConnections: Int

    public init(kind: Kind, totalTime: Double, newConnections: Int = 0) {
        self.kind = kind
        self.totalTime = totalTime
        self.newConnections = newConnections
    }
}

/// What a transport calls with a request's answer.
public typealias TransferAnswer = @Sendable (TransferResult) -> Void

/// Anything that performs HTTP requests: libcurl in production.
public protocol HTTPTransport: Sendable {
    func perform(_ request: HTTPRequest) async -> TransferResult
    /// The same, with the answer handed to `answer` (on the transport's own thread; keep it short)
    /// rather than to a suspended caller: a call on the wire is then a closure of a few hundred
    /// bytes, not a task holding its frames (SPEC 4's storm has hundreds on the wire at once).
    func perform(_ request: HTTPRequest, answer: @escaping TransferAnswer)
}

extension HTTPTransport {
    /// For transports that only answer suspended callers (test doubles): a task waits for them.
    public func perform(_ request: HTTPRequest, answer: @escaping TransferAnswer) {
        Task { answer(await perform(request)) }
    }
}
