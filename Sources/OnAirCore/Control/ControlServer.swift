import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// The control API: HTTP/1.1 with JSON on a Unix domain socket (mode 0660), so the `onair`
/// command and `curl --unix-socket` can watch and steer the daemon. See docs/control-api.md.
/// Served by SwiftNIO on an event loop of its own, so the scheduler never waits for a client;
/// who is connected is read from the socket itself (SO_PEERCRED).
public struct ControlServer: Service {
    let daemon: Daemon
    let socketPath: String

    public init(daemon: Daemon, socketPath: String) {
        self.daemon = daemon
        self.socketPath = socketPath
    }

    public func run() async throws {
        let directory = (socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let api = ControlAPI(daemon: daemon)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(ControlHTTPHandler(api: api))
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).get()
        chmod(socketPath, 0o660)
        daemon.logger.info("control socket listening", metadata: ["socket": "\(socketPath)"])
        try? await gracefulShutdown()
        try? await channel.close()
        try? await group.shutdownGracefully()
        unlink(socketPath)
    }
}

/// `struct ucred` of <sys/socket.h> (Glibc's module hides it behind _GNU_SOURCE): same fields,
/// same layout, as getsockopt(SO_PEERCRED) fills it.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// One HTTP connection on the control socket: collects a request, answers it through ControlAPI.
final class ControlHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: ControlAPI
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var refused = false
    private var peer: PeerCredentials?

    init(api: ControlAPI) { self.api = api }

    func channelActive(context: ChannelHandlerContext) {
        if let provider = context.channel as? SocketOptionProvider {
            let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
                level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: 17))  // SO_PEERCRED
            future.whenSuccess { [self] credentials in peer = credentials }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            bodyBytes = 0
            refused = false
            if let length = requestHead.headers.first(name: "content-length").flatMap(Int.init), length > ControlAPI.maximumBody {
                refuseTooLarge(context)
            }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > ControlAPI.maximumBody && !refused { refuseTooLarge(context) }
        case .end:
            guard let head, !refused else { return }
            self.head = nil
            let components = URLComponents(string: head.uri)
            var query: [String: String] = [:]
            for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            let request = ControlAPI.Request(method: head.method.rawValue, path: components?.path ?? head.uri, query: query,
                                             headers: headers, peerUID: peer.map { $0.uid }, peerPID: peer.map { $0.pid })
            let keepAlive = head.isKeepAlive
            let version = head.version
            let channel = context.channel
            let api = self.api
            let promise = context.eventLoop.makePromise(of: ControlAPI.Reply.self)
            promise.completeWithTask { await api.handle(request) }
            promise.futureResult.whenSuccess { reply in
                Self.write(reply, version: version, keepAlive: keepAlive && !reply.close, on: channel)
            }
        }
    }

    /// No endpoint takes a body: a large one is answered 413 and the connection closed, unread.
    private func refuseTooLarge(_ context: ChannelHandlerContext) {
        refused = true
        var reply = ControlAPI.refuse(413, "request body too large (at most \(ControlAPI.maximumBody) bytes)")
        reply.close = true
        Self.write(reply, version: head?.version ?? .http1_1, keepAlive: false, on: context.channel)
    }

    static func write(_ reply: ControlAPI.Reply, version: HTTPVersion, keepAlive: Bool, on channel: Channel) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(reply.body.count))
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let status = HTTPResponseStatus(statusCode: reply.status)
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: reply.body))), promise: nil)
        let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
        if !keepAlive { done.whenComplete { _ in channel.close(promise: nil) } }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Routes one control request. Every answer is JSON: `{"ok":true,"message":…}`, a report, or
/// `{"ok":false,"error":…}` with 400 (bad request), 404 (unknown item or path), 409 (refused),
/// 422 (reload refused).
struct ControlAPI {
    let daemon: Daemon

    /// One request as the transport hands it over.
    struct Request: Sendable {
        var method: String
        /// The path without the query.
        var path: String
        var query: [String: String]
        var headers: [String: String]
        /// Who is connected, from the socket itself (SO_PEERCRED), when the transport knows.
        var peerUID: UInt32?
        var peerPID: Int32?
    }

    struct Reply: Sendable {
        var status: Int
        var body: Data
        var close = false
    }

    struct Answer: Encodable {
        var ok: Bool
        var message: String?
        var error: String?
        var errors: [String]?
    }

    static func json(_ value: some Encodable, status: Int = 200) -> Reply {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Reply(status: status, body: data + Data("\n".utf8))
    }

    static func refuse(_ status: Int, _ message: String) -> Reply {
        json(Answer(ok: false, error: message), status: status)
    }

    /// Who asked, for the journal: the uid the kernel reports for the connection, and the name
    /// the client gives (not verified) when it gives one.
    static func who(_ request: Request) -> String {
        let claimed = request.headers["x-onair-user"].map { String($0.prefix(64)) }
        switch (request.peerUID, claimed) {
        case (let uid?, let name?): return "uid \(uid) (\(name))"
        case (let uid?, nil): return "uid \(uid)"
        case (nil, let name?): return "\(name) (unverified)"
        case (nil, nil): return "an unknown client"
        }
    }

    /// No endpoint takes a body; a large one is refused unread and the connection closed, so
    /// that reading it cannot take time from the scheduler.
    static let maximumBody = 64 * 1024

    func handle(_ request: Request) async -> Reply {
        if let length = request.headers["content-length"].flatMap(Int.init), length > Self.maximumBody {
            var reply = Self.refuse(413, "request body too large (at most \(Self.maximumBody) bytes)")
            reply.close = true
            return reply
        }
        let parts = request.path.split(separator: "/").map(String.init)
        let who = Self.who(request)
        func query(_ name: String) -> String? { request.query[name] }
        let scheduler = daemon.scheduler
        switch (request.method, parts) {
        case ("GET", ["v1", "status"]):
            return Self.json(await status())
        case ("GET", ["v1", "next"]):
            let n = query("n").flatMap(Int.init) ?? 10
            guard (1...1000).contains(n) else { return Self.refuse(400, "n must be between 1 and 1000") }
            let report = await status(nextCount: n)
            return Self.json(["jobs": report.next])
        case ("GET", ["v1", "history"]):
            let limit = query("limit").flatMap(Int.init) ?? 50
            guard (1...10_000).contains(limit) else { return Self.refuse(400, "limit must be between 1 and 10000") }
            do {
                return Self.json(["attempts": try await daemon.journal.attempts(item: query("item"), limit: limit).map(HistoryEntry.init)])
            } catch {
                return Self.refuse(500, "cannot read the journal: \(error)")
            }
        case ("POST", ["v1", "hold"]):
            await scheduler.hold(by: who)
            return Self.json(Answer(ok: true, message: "held: no job fires until resume"))
        case ("POST", ["v1", "resume"]):
            await scheduler.resume(by: who)
            return Self.json(Answer(ok: true, message: "resumed: due jobs follow the recovery rules"))
        case ("POST", ["v1", "debug", "stall"]) where ProcessInfo.processInfo.environment["ONAIR_DEBUG_STALL"] == "1":
            let seconds = min(60, query("seconds").flatMap(Double.init) ?? 5)
            Task { await scheduler.stall(seconds: seconds) }
            return Self.json(Answer(ok: true, message: "scheduler stalls for \(seconds) s"))
        case ("POST", ["v1", "reload"]):
            switch await daemon.reload() {
            case .success(let schedule):
                return Self.json(Answer(ok: true, message: "schedule \(schedule.id) in force: \(Planner.plan(schedule).count) jobs"))
            case .failure(let error):
                return Self.json(Answer(ok: false, error: "reload refused; the running schedule stays in force",
                                        errors: error.diagnostics.map(\.description)), status: 422)
            }
        case ("POST", _) where parts.count == 4 && parts[0] == "v1" && parts[1] == "items":
            let item = parts[2], verb = parts[3]
            do {
                let message: String
                switch verb {
                case "start": message = try await scheduler.sendNow(item: item, action: .start, again: query("again") == "true", by: who)
                case "stop": message = try await scheduler.sendNow(item: item, action: .stop, again: true, by: who)
                case "skip": message = try await scheduler.skip(item: item, who: who)
                case "extend", "delay":
                    guard let text = query("by"), let seconds = DurationText.seconds(text), seconds > 0 else {
                        return Self.refuse(400, "by must be a duration such as 10m")
                    }
                    message = verb == "extend" ? try await scheduler.extend(item: item, by: seconds, who: who)
                                               : try await scheduler.delay(item: item, by: seconds, who: who)
                default:
                    return Self.refuse(404, "no such action '\(verb.prefix(20))'")
                }
                return Self.json(Answer(ok: true, message: message))
            } catch {
                return Self.refuse(error.unknown ? 404 : 409, error.description)
            }
        default:
            return Self.refuse(404, "no such endpoint: \(request.method.prefix(10)) \(request.path.prefix(100))")
        }
    }

    func status(nextCount: Int = 10) async -> StatusReport {
        let snapshot = await daemon.scheduler.snapshot(nextCount: nextCount)
        let events = (try? await daemon.journal.events(limit: 200)) ?? []
        return StatusReport.make(snapshot: snapshot, records: snapshot.records, events: events,
                                 overrides: await daemon.scheduler.currentOverrides, now: Date(), running: true,
                                 pid: getpid(), startedAt: daemon.startedAt, scheduleFile: daemon.options.configPath)
    }
}

/// One attempt as `onair history` shows it.
public struct HistoryEntry: Codable, Sendable {
    public var job: String
    public var target: String
    public var webhook_id: String
    public var send: Int
    public var attempt: Int
    public var at: String
    public var status: Int?
    public var error: String?
    public var total_ms: Int
    public var outcome: String
    public var detail: String?

    public init(_ a: AttemptRecord) {
        job = a.job
        target = a.target
        webhook_id = a.webhookID
        send = a.send
        attempt = a.attempt
        at = WallClock.utcText(a.startedAt)
        status = a.status
        error = a.error
        total_ms = Int((a.totalTime * 1000).rounded())
        outcome = a.outcome
        detail = a.detail
    }
}
