import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirDelivery
@testable import OnAirScheduler

/// "An answer came", the firing machine's event for deliveries: what a journaled answer does next
/// and what it writes, without a transport or a journal.
@Suite("The answer rule, without I/O")
struct AnswerRuleTests {
    let t0 = utc("2021-11-08T20:30:00Z")

    func facts(_ end: Deliverer.AttemptEnd, made: Int = 1) -> AnswerRule.Facts {
        AnswerRule.Facts(end: end, made: made, withdrawn: false, cancelled: false, stopping: false, latestLaunch: true, wanted: true)
    }

    @Test func aFailedAttemptIsRetriedOnlyWhileEverythingStillWantsIt() {
        let due = t0.addingTimeInterval(4)
        #expect(AnswerRule.next(after: facts(.retry(due))) == .retry(due: due))
        var cancelled = facts(.retry(due), made: 3)
        cancelled.cancelled = true
        var stopping = facts(.retry(due), made: 3)
        stopping.stopping = true
        var superseded = facts(.retry(due), made: 3)
        superseded.latestLaunch = false
        var settled = facts(.retry(due), made: 3)
        settled.wanted = false
        for f in [cancelled, stopping, superseded, settled] {
            #expect(AnswerRule.next(after: f) == .end(.cancelled(attempts: 3)), "cut off: in flight on disk, sent again after restart")
        }
        var withdrawn = facts(.retry(due))
        withdrawn.withdrawn = true
        #expect(AnswerRule.next(after: withdrawn) == .end(.withdrawn), "its cue taken back: nothing was sent")
    }

    @Test func deliveredFailedAndNotSentEndTheDelivery() {
        #expect(AnswerRule.next(after: facts(.delivered, made: 2)) == .end(.delivered(attempts: 2)))
        #expect(AnswerRule.next(after: facts(.failed("HTTP 400"), made: 2)) == .end(.failed(reason: "HTTP 400", attempts: 2)))
        #expect(AnswerRule.next(after: facts(.notSent(withdrawn: false), made: 2)) == .end(.cancelled(attempts: 1)))
        #expect(AnswerRule.next(after: facts(.notSent(withdrawn: true))) == .end(.withdrawn))
    }

    @Test func theEndIsWrittenOnlyForTheJobsCurrentSendAndNeverOverAnOperatorsRecord() {
        let id = JobID(event: "t", item: "show", action: .stop, target: "site")
        let inflight = JobRecord(id: id, state: .inflight, send: 1, instant: t0, deadline: t0.addingTimeInterval(3600), updatedAt: t0)
        let now = t0.addingTimeInterval(9)
        guard case .write(let failed) = AnswerRule.outcome(of: .failed(reason: "HTTP 503 until the deadline", attempts: 9), send: 1,
                                                           record: inflight, now: now) else {
            Issue.record("a failed delivery writes its end")
            return
        }
        #expect(failed.state == .failed && failed.detail == "HTTP 503 until the deadline" && failed.updatedAt == now)
        #expect(AnswerRule.outcome(of: .delivered(attempts: 1), send: 0, record: inflight, now: now) == .none, "an older send")
        #expect(AnswerRule.outcome(of: .delivered(attempts: 1), send: 1, record: nil, now: now) == .none)
        #expect(AnswerRule.outcome(of: .withdrawn, send: 1, record: inflight, now: now) == .none)
        #expect(AnswerRule.outcome(of: .cancelled(attempts: 1), send: 1, record: inflight, now: now) == .settled, "cut off: stays in flight")
        var delivered = inflight
        delivered.state = .delivered
        #expect(AnswerRule.outcome(of: .delivered(attempts: 1), send: 1, record: delivered, now: now) == .settled,
                "on disk already with its attempt")
        var stoppedByHand = inflight
        stoppedByHand.state = .cancelled
        #expect(AnswerRule.outcome(of: .failed(reason: "x", attempts: 1), send: 1, record: stoppedByHand, now: now) == .settled)
        guard case .write(let written) = AnswerRule.outcome(of: .delivered(attempts: 2), send: 1, record: inflight, now: now) else {
            Issue.record("a delivery whose attempt's write failed writes its end")
            return
        }
        #expect(written.state == .delivered && written.detail == nil)
    }
}
