import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler

/// One line of `onair history`: an attempt at a call, or a job that was missed (its moment
/// passed while the daemon was down, held or could not write its journal) and so was never sent.
/// A missed job is in history because an operator asking "what happened to the 20:30 start?"
/// must find the answer there, not only in `status`.
public struct HistoryEntry: Codable, Sendable, Equatable {
    public var job: String
    public var target: String
    public var webhook_id: String
    public var send: Int
    public var attempt: Int
    public var at: String
    /// `at` in the schedule's zone, labelled (`2021-11-08 20:30:00 +01:00`).
    public var at_local: String?
    public var status: Int?
    public var error: String?
    public var total_ms: Int
    /// `delivered`, `retry`, `failed`, or `missed` (no call was made).
    public var outcome: String
    public var detail: String?

    public init(_ a: AttemptRecord, zone: TimeZone) {
        job = a.job
        target = a.target
        webhook_id = a.webhookID
        send = a.send
        attempt = a.attempt
        at = WallClock.utcText(a.startedAt)
        at_local = WallClock.labelledText(a.startedAt, in: zone)
        status = a.status
        error = a.error
        total_ms = Int((a.totalTime * 1000).rounded())
        outcome = a.outcome
        detail = a.detail
    }

    /// A missed job, at the moment it was recorded as missed.
    public init(missed r: JobRecord, zone: TimeZone) {
        job = r.id.description
        target = r.id.target
        webhook_id = WebhookSigner.webhookID(job: r.id, send: r.send)
        send = r.send
        attempt = 0
        at = WallClock.utcText(r.updatedAt)
        at_local = WallClock.labelledText(r.updatedAt, in: zone)
        status = nil
        error = nil
        total_ms = 0
        outcome = "missed"
        detail = r.reason(in: zone)
    }

    /// Attempts and missed jobs of the journal (of one item, or all), newest first.
    public static func read(_ journal: any JournalStore, item: String?, limit: Int, zone: TimeZone) async throws -> [HistoryEntry] {
        let attempts = try await journal.attempts(item: item, limit: limit)
        let missed = try await journal.jobRecords(in: .missed, item: item)
        var entries = attempts.map { (at: $0.startedAt, entry: HistoryEntry($0, zone: zone)) }
        entries += missed.map { (at: $0.updatedAt, entry: HistoryEntry(missed: $0, zone: zone)) }
        // Stable: attempts keep the journal's order among themselves.
        let ordered = entries.enumerated().sorted { a, b in a.element.at != b.element.at ? a.element.at > b.element.at : a.offset < b.offset }
        return ordered.prefix(limit).map(\.element.entry)
    }
}
