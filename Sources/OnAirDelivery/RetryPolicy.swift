import Foundation
import OnAirModel

/// Exponential backoff with full jitter (SPEC section 3.2): the first retry waits a uniformly
/// random time up to 0.5 s, each further one up to twice as long, at most 30 s. A Retry-After
/// from the platform takes the place of the bound: OnAir waits at least that long, since coming
/// back earlier would only be refused again, but never less than the bound, so that a platform
/// answering `Retry-After: 0` (or a date in the past) is not hammered with back-to-back attempts.
public struct RetryPolicy: Sendable {
    public var initialBound: Double
    public var maximumBound: Double
    /// A uniformly random number in [0, 1); injected so tests are deterministic.
    public var random: @Sendable () -> Double

    public init(initialBound: Double = 0.5, maximumBound: Double = 30,
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.initialBound = initialBound
        self.maximumBound = maximumBound
        self.random = random
    }

    /// The bound for the retry that follows failure number `failures` (1-based).
    public func bound(afterFailures failures: Int) -> Double {
        min(maximumBound, initialBound * pow(2, Double(max(0, failures - 1))))
    }

    /// Seconds to wait before the next attempt: with a Retry-After of R seconds, max(R, bound);
    /// without one, a uniformly random time up to the bound.
    public func delay(afterFailures failures: Int, retryAfter: Double?) -> Double {
        let bound = bound(afterFailures: failures)
        if let retryAfter { return max(retryAfter, bound) }
        return bound * random()
    }
}
