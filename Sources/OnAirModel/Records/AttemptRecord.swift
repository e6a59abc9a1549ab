import Foundation

/// The record of one attempt, which the daemon journals and `onair history` shows.
/// It never holds a secret: error texts and response lines are scrubbed.
public struct AttemptRecord: Sendable, Hashable, Codable {
    public var job: String
    public var target: String
    public var webhookID: String
    public var send: Int
    public var attempt: Int
    public var startedAt: Date
    public var status: Int?
    public var error: String?
    /// Seconds, as libcurl measured the transfer.
    public var totalTime: Double
    /// `delivered`, `retry` or `failed`.
    public var outcome: String
    /// Why it was retried or failed, with the first line of an unexpected body.
    public var detail: String?

    public init(job: String, target: String, webhookID: String, send: Int, attempt: Int, startedAt: Date,
                status: Int? = nil, error: String? = nil, totalTime: Double = 0, outcome: String = "", detail: String? = nil) {
        self.job = job
        self.target = target
        self.webhookID = webhookID
        self.send = send
        self.attempt = attempt
        self.startedAt = startedAt
        self.status = status
        self.error = error
        self.totalTime = totalTime
        self.outcome = outcome
        self.detail = detail
    }
}
