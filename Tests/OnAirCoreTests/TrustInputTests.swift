import Foundation
import Testing
@testable import OnAirCore

/// Input OnAir does not control (a platform's Retry-After, URLs and titles from a schedule file,
/// secret files on disk) must never make it misbehave (SPEC sections 3.1 and 3.2).
@Suite("Trusting input: Retry-After, URLs, JSON bodies, secret files")
struct TrustInputTests {
    // MARK: Retry-After (SPEC 3.2)

    @Test func retryAfterOfZeroWaitsAtLeastTheBound() {
        let policy = RetryPolicy(random: { 0 })
        #expect(policy.delay(afterFailures: 1, retryAfter: 0) == 0.5)
        #expect(policy.delay(afterFailures: 3, retryAfter: 0) == 2)
        #expect(policy.delay(afterFailures: 9, retryAfter: 0) == 30)
    }

    @Test func retryAfterInThePastWaitsAtLeastTheBound() throws {
        let now = Date(timeIntervalSince1970: 1_445_412_480)  // Wed, 21 Oct 2015 07:28:00 GMT
        let past = try #require(OutcomeClassifier.retryAfterSeconds("Wed, 21 Oct 2015 07:27:00 GMT", now: now))
        #expect(past == 0)
        let policy = RetryPolicy(random: { 0 })
        #expect(policy.delay(afterFailures: 4, retryAfter: past) == 4)
        #expect(policy.delay(afterFailures: 7, retryAfter: past) == 30)
    }

    @Test func retryAfterShorterThanTheBoundWaitsTheBound() {
        #expect(RetryPolicy(random: { 0.5 }).delay(afterFailures: 7, retryAfter: 1) == 30)
    }

    @Test func retryAfterLongerThanTheBoundIsHonoured() {
        let policy = RetryPolicy(random: { 0.999 })
        #expect(policy.delay(afterFailures: 1, retryAfter: 120) == 120)
        #expect(policy.delay(afterFailures: 7, retryAfter: 45) == 45)
    }
}
