import FlyingFox
import FlyingSocks
import Foundation

/// The receiver of `onair demo`: a local HTTP server that prints each call as a platform would
/// see it, and whether its Standard Webhooks signature verifies.
public final class DemoReceiver: Sendable {
    private let server: HTTPServer
    public let port: UInt16
    private let secret: String
    private let counter = Counter()

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

    public init(secret: String, output: @escaping @Sendable (String) -> Void) async throws {
        let port = try Self.freePort()
        self.port = port
        self.secret = secret
        let counter = self.counter
        server = HTTPServer(address: try sockaddr_in.inet(ip4: "127.0.0.1", port: port), logger: .disabled, handler: ClosureHTTPHandler { request in
            let body = Array(try await request.bodyData)
            let arrival = Date()
            var line = "\(WallClock.localText(arrival, in: .current).suffix(8)).\(String(format: "%03d", Int(arrival.timeIntervalSince1970 * 1000) % 1000))  "
            line += "\(request.method.rawValue) \(request.path)"
            if request.method == .HEAD {
                // Not a call: the daemon opening its connection ahead of the next instant.
                output(line + "  (connection warm-up ahead of the next call; not counted)")
                return FlyingFox.HTTPResponse(statusCode: .ok)
            }
            if let id = request.headers[HTTPHeader("webhook-id")], let signature = request.headers[HTTPHeader("webhook-signature")] {
                let timestamp = Int(request.headers[HTTPHeader("webhook-timestamp")] ?? "") ?? 0
                let ok = WebhookSigner.verify(header: signature, id: id, timestamp: timestamp, body: body, secret: secret)
                await counter.add(signed: true, verified: ok)
                if let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                   let type = json["type"] as? String, let data = json["data"] as? [String: Any] {
                    line += "  \(type) \(data["item"] as? String ?? "?") \"\(data["title"] as? String ?? "")\""
                    if let scheduled = json["timestamp"] as? String, let instant = ISO8601DateFormatter().date(from: scheduled) {
                        line += String(format: "  +%.0f ms after its instant", arrival.timeIntervalSince(instant) * 1000)
                    }
                }
                line += "  webhook-id=\(id)  signature \(ok ? "verified" : "INVALID")"
            } else {
                await counter.add(signed: false, verified: false)
                if let query = request.query.first(where: { $0.name == "Function" }) { line += "?Function=\(query.value)" }
                if let title = request.query.first(where: { $0.name == "title" }) { line += "  title \"\(title.value)\"" }
                line += "  (platform API call: templated, not signed)"
            }
            output(line)
            return FlyingFox.HTTPResponse(statusCode: .ok, body: Data("ok\n".utf8))
        })
        let server = self.server
        Task { try? await server.run() }
        try await server.waitUntilListening()
    }

    /// Calls received, how many carried a signature, and how many of those verified.
    public func tally() async -> (calls: Int, signed: Int, verified: Int) {
        (await counter.calls, await counter.signed, await counter.verified)
    }

    public func stop() async { await server.stop() }

    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
                guard bind(fd, raw, length) == 0 else { return -1 }
                return getsockname(fd, raw, &length)
            }
        }
        guard bound == 0 else { throw RequestBuildError(description: "no free port") }
        return UInt16(bigEndian: address.sin_port)
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
