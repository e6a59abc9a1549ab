import Foundation
import Synchronization
import OnAirModel
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
