import Foundation
import Synchronization
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
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
    /// An idle connection (no request under way) is closed after this long.
    let idleTimeout: TimeAmount

    /// Called once the socket takes connections: the daemon is ready only then.
    let onListening: @Sendable () async -> Void

    public init(daemon: Daemon, socketPath: String, idleTimeout: TimeInterval = 10,
                onListening: @escaping @Sendable () async -> Void = {}) {
        self.daemon = daemon
        self.socketPath = socketPath
        self.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        self.onListening = onListening
    }

    /// Listens until graceful shutdown. A socket that cannot be made ends the daemon with a
    /// `DaemonStartError` (exit 73) naming the path and why, before it has said it is ready.
    public func run() async throws {
        do {
            try await serve()
        } catch let error as DaemonStartError {
            throw error
        } catch {
            throw DaemonStartError(description: "cannot listen on the control socket \(socketPath): \(error)", exitStatus: ExitStatus.cantCreate)
        }
    }

    private func serve() async throws {
        let directory = (socketPath as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let api = ControlAPI(daemon: daemon)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connections = ControlConnections(limit: ControlConnections.limit(forDescriptors: FileDescriptorLimit.raise()))
        let idleTimeout = self.idleTimeout
        // Daemon.start found nobody listening here: a file left is a dead daemon's, and is replaced.
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .childChannelInitializer { channel in
                connections.admit(channel)
                return channel.pipeline.addHandler(IdleStateHandler(allTimeout: idleTimeout)).flatMap {
                    channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                }.flatMap {
                    channel.pipeline.addHandler(ControlHTTPHandler(api: api, connections: connections))
                }
            }
            .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).get()
        chmod(socketPath, 0o660)
        let ours = SocketFileIdentity(path: socketPath)
        daemon.logger.info("control socket listening", metadata: ["socket": "\(socketPath)", "connections": "\(connections.limit)"])
        await onListening()
        try? await gracefulShutdown()
        try? await channel.close()
        try? await group.shutdownGracefully()
        // Only our own socket: another daemon's, bound at this path since, stays.
        if let ours, SocketFileIdentity(path: socketPath) == ours { unlink(socketPath) }
    }
}

/// Which file a path names (device and inode), so the daemon removes the socket it made and not
/// one that replaced it.
struct SocketFileIdentity: Equatable {
    var device: UInt64
    var inode: UInt64

    init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

/// The process's open-file limit: raised to its hard limit at start (the soft limit of 1,024 is
/// a relic of select(2), which nothing here uses), so that calls have descriptors to spare.
enum FileDescriptorLimit {
    static func raise() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, 1 << 30))
    }
}

/// The control socket's open connections, capped so that clients can never take the descriptors
/// that calls to the platforms need (SPEC 3.2). At the cap the oldest idle connection is closed
/// to make room, so a flood of idle clients cannot lock an operator out either; only when every
/// connection is busy with a request is a new one closed at once. Touched only on the control
/// server's single event loop.
final class ControlConnections: Sendable {
    let limit: Int
    private struct State {
        var open: [ObjectIdentifier: (channel: Channel, order: Int)] = [:]
        var busy: Set<ObjectIdentifier> = []
        var counter = 0
    }
    /// Uncontended (one event loop touches it); a mutex rather than `@unchecked Sendable` so the
    /// compiler checks what the comment used to promise.
    private let state = Mutex(State())

    init(limit: Int) { self.limit = limit }

    /// A cap well inside the descriptor limit: an eighth of it, between 16 and 256.
    static func limit(forDescriptors descriptors: Int) -> Int { max(16, min(256, descriptors / 8)) }

    var count: Int { state.withLock { $0.open.count } }

    func admit(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        let (admitted, toClose) = state.withLock { s -> (Bool, Channel?) in
            var evicted: Channel?
            if s.open.count >= limit {
                guard let idle = s.open.filter({ !s.busy.contains($0.key) }).min(by: { $0.value.order < $1.value.order }) else {
                    return (false, nil)
                }
                s.open[idle.key] = nil
                evicted = idle.value.channel
            }
            s.counter += 1
            s.open[id] = (channel, s.counter)
            return (true, evicted)
        }
        toClose?.close(promise: nil)
        guard admitted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            state.withLock { s in
                s.open[id] = nil
                s.busy.remove(id)
            }
        }
    }

    func setBusy(_ channel: Channel, _ isBusy: Bool) {
        let id = ObjectIdentifier(channel)
        state.withLock { s in
            if isBusy { s.busy.insert(id) } else { s.busy.remove(id) }
        }
    }

    func isBusy(_ channel: Channel) -> Bool { state.withLock { $0.busy.contains(ObjectIdentifier(channel)) } }
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
    private let connections: ControlConnections
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var refused = false
    private var peer: PeerCredentials?

    init(api: ControlAPI, connections: ControlConnections) {
        self.api = api
        self.connections = connections
    }

    /// Idle (no request under way) past the timeout: closed. A request being answered (a manual
    /// start waits for the platform) keeps its connection.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            if !connections.isBusy(context.channel) { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

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
            // Busy only once the request is whole (.end): a client that sends a head and never
            // its body stays idle, so it times out and can be evicted at the cap.
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
            connections.setBusy(context.channel, true)
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
            let connections = self.connections
            promise.futureResult.whenSuccess { reply in
                connections.setBusy(channel, false)
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
            guard let n = Self.number(query("n"), default: 10, in: 1...1000) else { return Self.refuse(400, "n must be a number from 1 to 1000") }
            let report = await status(nextCount: n)
            return Self.json(["jobs": report.next])
        case ("GET", ["v1", "history"]):
            guard let limit = Self.number(query("limit"), default: 50, in: 1...10_000) else {
                return Self.refuse(400, "limit must be a number from 1 to 10000")
            }
            return await history(item: query("item"), limit: limit)
        case ("POST", ["v1", "hold"]):
            return await Self.answer { () async throws(Scheduler.Refusal) in
                try await scheduler.hold(by: who)
                return "held: no job fires until resume"
            }
        case ("POST", ["v1", "resume"]):
            return await Self.answer { () async throws(Scheduler.Refusal) in
                try await scheduler.resume(by: who)
                return "resumed: due jobs follow the recovery rules"
            }
        case ("POST", ["v1", "reload"]):
            switch await daemon.reload() {
            case .success(let schedule):
                return Self.json(Answer(ok: true, message: "schedule \(schedule.id) in force: \(Planner.plan(schedule).count) jobs"))
            case .failure(let error):
                return Self.json(Answer(ok: false, error: "reload refused; the running schedule stays in force",
                                        errors: error.diagnostics.map(\.description)), status: 422)
            }
        case ("POST", _) where parts.count == 4 && parts[0] == "v1" && parts[1] == "items":
            return await itemCommand(item: parts[2], verb: parts[3], query: request.query, who: who)
        default:
            return Self.refuse(404, "no such endpoint: \(request.method.prefix(10)) \(request.path.prefix(100))")
        }
    }

    /// A query parameter that must be a whole number in `range`; nil when it is given but is not
    /// one (the request is then answered 400, never served with a default).
    static func number(_ text: String?, default value: Int, in range: ClosedRange<Int>) -> Int? {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else { return nil }
        return n
    }

    /// 200 with the message, or the refusal with its status: 404 unknown item, 409 refused by a
    /// rule, 503 when the journal could not take the change (nothing changed).
    static func answer(_ body: () async throws(Scheduler.Refusal) -> String) async -> Reply {
        do {
            return json(Answer(ok: true, message: try await body()))
        } catch {
            switch error.kind {
            case .unknown: return refuse(404, error.description)
            case .refused: return refuse(409, error.description)
            case .journal: return refuse(503, error.description)
            }
        }
    }

    private func itemCommand(item: String, verb: String, query: [String: String], who: String) async -> Reply {
        let scheduler = daemon.scheduler
        switch verb {
        case "start", "stop":
            do {
                let outcome = try await scheduler.sendNow(item: item, action: verb == "start" ? .start : .stop,
                                                          again: verb == "stop" || query["again"] == "true", by: who)
                // 502: the command was carried out, but a platform did not take the call.
                return outcome.delivered ? Self.json(Answer(ok: true, message: outcome.message))
                                         : Self.json(Answer(ok: false, error: outcome.message), status: 502)
            } catch {
                return await Self.answer { () throws(Scheduler.Refusal) in throw error }
            }
        case "skip":
            return await Self.answer { () async throws(Scheduler.Refusal) in try await scheduler.skip(item: item, who: who) }
        case "extend", "delay":
            guard let text = query["by"], let seconds = DurationText.seconds(text), seconds > 0 else {
                return Self.refuse(400, "by must be a duration such as 10m")
            }
            return await Self.answer { () async throws(Scheduler.Refusal) in
                verb == "extend" ? try await scheduler.extend(item: item, by: seconds, who: who)
                                 : try await scheduler.delay(item: item, by: seconds, who: who)
            }
        default:
            return Self.refuse(404, "no such action '\(verb.prefix(20))'")
        }
    }

    /// Attempts of the journal, newest first; an item the schedule does not know is a 404.
    private func history(item: String?, limit: Int) async -> Reply {
        let zone = await daemon.scheduler.schedule.timeZone
        if let item, await daemon.scheduler.schedule.item(id: item) == nil {
            return Self.refuse(404, "unknown item '\(item.prefix(100))'")
        }
        do {
            return Self.json(["attempts": try await HistoryEntry.read(daemon.journal, item: item, limit: limit, zone: zone)])
        } catch {
            return Self.refuse(500, "cannot read the journal: \(error)")
        }
    }

    func status(nextCount: Int = 10) async -> StatusReport {
        let snapshot = await daemon.scheduler.snapshot(nextCount: nextCount)
        let events = (try? await daemon.journal.events(limit: 200)) ?? []
        return StatusReport.make(.init(snapshot: snapshot, records: snapshot.records, events: events,
                                       overrides: await daemon.scheduler.currentOverrides, now: daemon.time.now(), pid: getpid(),
                                       startedAt: daemon.startedAt, scheduleFile: daemon.options.configPath))
    }
}

