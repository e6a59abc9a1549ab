import Foundation
import OnAirModel
import OnAirDelivery
import OnAirJournal

/// A transport that answers 200 at once and remembers each call with the manual clock's time.
/// For scheduler logic only; delivery itself is tested against a real receiver.
public final class RecordingTransport: HTTPTransport, @unchecked Sendable {
    public struct Call {
        public var method: String
        public var url: String
        public var at: Date
        public var webhookID: String
        public var type: String
        public var item: String
    }

    private let lock = NSLock()
    private var log: [Call] = []
    private var status = 200
    private let gate = Gate()
    public let time: TimeSource

    public init(time: TimeSource) { self.time = time }

    /// The HTTP status every call is answered with from now on (200 at first).
    public func answer(_ status: Int) { lock.withLock { self.status = status } }

    public var calls: [Call] { lock.withLock { log } }

    /// From now on calls stay "on the wire" (unanswered, deaf to cancellation like a libcurl
    /// transfer) until `release()`.
    public func holdCalls() { gate.close() }

    /// Calls currently held on the wire.
    public var onTheWire: Int { gate.waiting }

    public func release() { gate.open() }

    /// Answers the calls on the wire now; the ones that come after stay on the wire.
    public func answerHeldCalls() { gate.letThrough() }

    public func perform(_ request: HTTPRequest) async -> TransferResult {
        // A cued call waits for its instant on the manual clock, as libcurl's engine does on the
        // real one, and is not sent at all when withdrawn first.
        if let cue = request.cue {
            while cue.current == .waiting && time.now() < cue.at { try? await Task.sleep(nanoseconds: 1_000_000) }
            guard cue.release() else { return TransferResult(kind: .notSent(reason: "withdrawn"), totalTime: 0) }
        }
        await gate.pass()
        let json = request.body.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        let data = json?["data"] as? [String: Any]
        let call = Call(method: request.method, url: request.url, at: time.now(),
                        webhookID: request.headers.first { $0.name == "webhook-id" }?.value ?? "",
                        type: json?["type"] as? String ?? "", item: data?["item"] as? String ?? "")
        let status = lock.withLock { () -> Int in
            log.append(call)
            return self.status
        }
        return TransferResult(kind: .response(HTTPResponse(status: status)), totalTime: 0)
    }
}
