import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
import NIOCore
import NIOHTTP1
import NIOPosix

/// The receiver of `onair demo`: a local HTTP server that prints each call as a platform would
/// see it, and whether its Standard Webhooks signature verifies. SwiftNIO, like the control socket.
public final class DemoReceiver: Sendable {
    public let port: UInt16
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    private let counter: Counter

    actor Counter {
        var calls = 0
        var signed = 0
        var verified = 0
        func add(signed isSigned: Bool, verified ok: Bool) {
            calls += 1
            if isSigned { signed += 1 }
            if ok { verified += 1 }
        }
    }

    /// A request as it arrived: what `describe` needs to print it.
    struct Received: Sendable {
        var method: String
        var uri: String
        var headers: [String: String]
        var body: [UInt8]
        var arrival: Date
    }

    public init(secret: String, output: @escaping @Sendable (String) -> Void) async throws {
        let counter = Counter()
        self.counter = counter
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let handle: @Sendable (Received) async -> Void = { request in
            let (line, signed, verified) = Self.describe(request, secret: secret)
            if let signed { await counter.add(signed: signed, verified: verified) }
            output(line)
        }
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(DemoHTTPHandler(handle: handle))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = UInt16(channel.localAddress?.port ?? 0)
    }

    /// The line printed for one request, and for a call whether it was signed and verified
    /// (nil for a warm-up, which is not counted).
    static func describe(_ request: Received, secret: String) -> (line: String, signed: Bool?, verified: Bool) {
        let arrival = request.arrival
        var line = "\(WallClock.localText(arrival, in: .current).suffix(8)).\(String(format: "%03d", Int(arrival.timeIntervalSince1970 * 1000) % 1000))  "
        let components = URLComponents(string: request.uri)
        line += "\(request.method) \(components?.path ?? request.uri)"
        if request.method == "HEAD" {
            // Not a call: the daemon opening its connection ahead of the next instant.
            return (line + "  (connection warm-up ahead of the next call; not counted)", nil, false)
        }
        if let id = request.headers["webhook-id"], let signature = request.headers["webhook-signature"] {
            let timestamp = Int(request.headers["webhook-timestamp"] ?? "") ?? 0
            let ok = WebhookSigner.verify(header: signature, id: id, timestamp: timestamp, body: request.body, secret: secret)
            if let json = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any],
               let type = json["type"] as? String, let data = json["data"] as? [String: Any] {
                line += "  \(type) \(data["item"] as? String ?? "?") \"\(data["title"] as? String ?? "")\""
                if let scheduled = json["timestamp"] as? String, let instant = ISO8601DateFormatter().date(from: scheduled) {
                    line += String(format: "  +%.0f ms after its instant", arrival.timeIntervalSince(instant) * 1000)
                }
            }
            line += "  webhook-id=\(id)  signature \(ok ? "verified" : "INVALID")"
            return (line, true, ok)
        }
        let query = components?.queryItems ?? []
        if let function = query.first(where: { $0.name == "Function" })?.value { line += "?Function=\(function)" }
        if let title = query.first(where: { $0.name == "title" })?.value { line += "  title \"\(title)\"" }
        line += "  (platform API call: templated, not signed)"
        return (line, false, false)
    }

    /// Calls received, how many carried a signature, and how many of those verified.
    public func tally() async -> (calls: Int, signed: Int, verified: Int) {
        (await counter.calls, await counter.signed, await counter.verified)
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// One connection to the demo receiver: collects a request, prints it, answers 200 "ok".
private final class DemoHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let handle: @Sendable (DemoReceiver.Received) async -> Void
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(handle: @escaping @Sendable (DemoReceiver.Received) async -> Void) { self.handle = handle }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body = []
        case .body(var buffer):
            if body.count < 1 << 20 { body += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        case .end:
            guard let head else { return }
            self.head = nil
            var headers: [String: String] = [:]
            for (name, value) in head.headers { headers[name.lowercased()] = value }
            let request = DemoReceiver.Received(method: head.method.rawValue, uri: head.uri, headers: headers, body: body,
                                                arrival: Date())
            let channel = context.channel, handle = self.handle
            let promise = context.eventLoop.makePromise(of: Void.self)
            promise.completeWithTask { await handle(request) }
            promise.futureResult.whenComplete { _ in
                let isHead = head.method == .HEAD
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: isHead ? "0" : "3")
                headers.add(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
                channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers)), promise: nil)
                if !isHead { channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: "ok\n"))), promise: nil) }
                let done = channel.writeAndFlush(HTTPServerResponsePart.end(nil))
                if !head.isKeepAlive { done.whenComplete { _ in channel.close(promise: nil) } }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// The demo's schedule: a few plenaries, an on-site workshop and a Late Night Show, all within
/// `span` seconds from `now`, sent to the demo receiver as a standard target and a templated one.
public enum DemoSchedule {
    public static func yaml(port: UInt16, now: Date, span: TimeInterval = 120) -> String {
        let zone = TimeZone.current.identifier == "GMT" ? "UTC" : TimeZone.current.identifier
        let tz = TimeZone(identifier: zone) ?? TimeZone(identifier: "UTC")!
        let unit = span / 12  // 10 s for the default two minutes
        let items: [(id: String, title: String, kind: String, start: Double, length: Double, online: Bool)] = [
            ("opening-plenary", "Plenaire opening — Samen doorbreken we muren", "plenary", 1, 3, true),
            ("site-visit", "Werkbezoek (alleen op locatie)", "workshop", 1.5, 3, false),
            ("closing-plenary", "Plenaire afsluiting", "plenary", 5, 2.5, true),
            ("late-night-show", "RV Late Night Show", "show", 8.5, 3, true),
        ]
        var days: [LocalDate: [String]] = [:]
        for item in items {
            let start = now.addingTimeInterval(item.start * unit).rounded()
            let local = WallClock.local(start, in: tz)
            var lines = [
                "      - id: \(item.id)",
                "        title: \(JSON.string(item.title))",
                "        kind: \(item.kind)",
                "        start: \"\(WallClock.clockText(local.secondsOfDay))\(WallClock.offsetText(local.offset))\"",
                "        duration: \(DurationText.format(Int((item.length * unit).rounded())))",
                "        location: Utrecht",
            ]
            if !item.online { lines.append("        online: false") }
            days[local.date, default: []] += lines
        }
        var out = """
        # Generated by `onair demo`: the whole week compressed into \(Int(span)) seconds.
        id: onair-demo
        title: OnAir demo week
        theme: Samen doorbreken we muren
        timezone: \(zone)
        lead_time: \(DurationText.format(max(1, Int(unit / 2))))
        targets:
          site:
            url: http://127.0.0.1:\(port)/hooks/onair
            secret: env:ONAIR_DEMO_SECRET
          mixer:
            requests:
              start: { method: GET, url: "http://127.0.0.1:\(port)/api/?Function=StartStreaming&title={{item.title}}" }
              stop: { method: GET, url: "http://127.0.0.1:\(port)/api/?Function=StopStreaming" }
        days:

        """
        for (date, lines) in days.sorted(by: { $0.key < $1.key }) {
            out += "  - date: \(date)\n    title: Demo day\n    programme:\n" + lines.joined(separator: "\n") + "\n"
        }
        return out
    }
}

extension Date {
    func rounded() -> Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.up)) }
}
