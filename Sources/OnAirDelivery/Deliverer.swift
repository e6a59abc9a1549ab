import Foundation
import OnAirModel

/// The end of one send of a job.
public enum DeliveryResult: Sendable, Hashable {
    case delivered(attempts: Int)
    case failed(reason: String, attempts: Int)
    /// Stopped by shutdown before it could finish; the journal keeps it in flight and it is sent
    /// again (same webhook-id) after restart.
    case cancelled(attempts: Int)
    /// A cued first attempt taken back before its instant: nothing was sent.
    case withdrawn
}

/// Gets one send of a job through: attempts, classification, backoff, deadline.
public struct Deliverer: Sendable {
    public var transport: HTTPTransport
    public var builder: RequestBuilder
    public var policy: RetryPolicy
    public var time: TimeSource

    public init(transport: HTTPTransport, builder: RequestBuilder = RequestBuilder(), policy: RetryPolicy = RetryPolicy(),
                time: TimeSource) {
        self.transport = transport
        self.builder = builder
        self.policy = policy
        self.time = time
    }

    /// Opens the connection to `origin` ahead of a call: a HEAD for "/", a safe method on a path
    /// that is not the webhook's, so the platform acts on nothing, while DNS, TCP and TLS are done
    /// before the instant and libcurl keeps the connection open for the call itself. Its answer,
    /// whatever the status, is not a delivery and is not journaled.
    public func warm(origin: String, target: Target) async -> TransferResult {
        let request = HTTPRequest(method: "HEAD", url: origin, timeout: Double(min(target.timeout, 5)), caFile: target.caFile)
        return await transport.perform(request)
    }

    /// Attempts the send until it is delivered, fails for good, or reaches `deadline`.
    /// `firstAttempt` continues a count after a restart; `record` is called after every attempt
    /// (the daemon journals it before going on).
    /// With a `cue`, the first attempt is rendered and signed now and held by the transport until
    /// `cue.at`; withdrawing the cue before then ends the delivery as `.withdrawn`. Until the
    /// transport has let the cue go, every attempt carries it: an attempt that failed before it
    /// reached the transport (a secret that could not be read ahead) is never retried early.
    public func deliver(_ context: DeliveryContext, target: Target, deadline: Date, firstAttempt: Int = 1, cue: Cue? = nil,
                        record: @Sendable (AttemptRecord) async -> Void) async -> DeliveryResult {
        var attempt = firstAttempt
        var failures = 0
        while true {
            if Task.isCancelled { return .cancelled(attempts: attempt - firstAttempt) }
            if cue?.current == .withdrawn { return .withdrawn }
            let made = attempt - firstAttempt + 1
            let attempted = await self.attempt(context, target: target, number: attempt, failures: failures, deadline: deadline, cue: cue)
            if let entry = attempted.record { await record(entry) }
            switch attempted.end {
            case .delivered: return .delivered(attempts: made)
            case .failed(let reason): return .failed(reason: reason, attempts: made)
            case .notSent(let withdrawn): return withdrawn ? .withdrawn : .cancelled(attempts: made - 1)
            case .retry(let next):
                do {
                    try await time.sleep(for: next.timeIntervalSince(time.now()))
                } catch {
                    return .cancelled(attempts: made)
                }
                failures += 1
                attempt += 1
            }
        }
    }

    /// One attempt's end and what it leaves for the journal (nil when nothing was sent).
    public struct Attempted: Sendable {
        public var end: AttemptEnd
        public var record: AttemptRecord?
        public init(end: AttemptEnd, record: AttemptRecord? = nil) {
            self.end = end
            self.record = record
        }
    }

    /// How one attempt ended.
    public enum AttemptEnd: Sendable, Equatable {
        case delivered
        case failed(String)
        /// Nothing left (shut down, or its cue withdrawn): no attempt to record.
        case notSent(withdrawn: Bool)
        /// Failed, and the next attempt is due at this time (before the deadline).
        case retry(Date)
    }

    /// One attempt: built, signed, sent and classified; its record is returned, not journaled here,
    /// so the caller can journal many answers in one write (`deliver` journals each before going on).
    public func attempt(_ context: DeliveryContext, target: Target, number: Int, failures: Int, deadline: Date,
                        cue: Cue?) async -> Attempted {
        let reply = await withCheckedContinuation { continuation in
            attempt(context, target: target, number: number, failures: failures, deadline: deadline, cue: cue) {
                continuation.resume(returning: $0)
            }
        }
        return conclude(reply)
    }

    /// An attempt's answer as it arrived: concluded already where that is arithmetic, otherwise left
    /// for `conclude(_:)` wherever the caller likes. Classifying may match a recipe's body pattern
    /// against 64 KiB or parse a date, which must not happen on the transport's one thread: it
    /// would hold up every other call, cued ones at their instants among them.
    ///
    /// Thousands wait for the journal at once in a storm: the rare unclassified payload is boxed, so
    /// a reply is the size of its conclusion.
    public struct Reply: Sendable {
        enum Kind: Sendable {
            case ended(Attempted)
            indirect case answered(Prepared, TransferResult?, failures: Int, deadline: Date, zone: TimeZone)
        }
        var kind: Kind

        /// An attempt concluded already (or not sent).
        public static func ended(_ attempted: Attempted) -> Reply { Reply(kind: .ended(attempted)) }

        static func answered(_ prepared: Prepared, _ result: TransferResult?, failures: Int, deadline: Date, zone: TimeZone) -> Reply {
            Reply(kind: .answered(prepared, result, failures: failures, deadline: deadline, zone: zone))
        }

        /// The conclusion, once there is one.
        public var concluded: Attempted? {
            if case .ended(let attempted) = kind { return attempted }
            return nil
        }
    }

    /// What is told an attempt's answer: on the transport's thread, or the caller's when nothing
    /// was sent, so it must be short (the scheduler's puts it in its inbox).
    public typealias AttemptAnswer = @Sendable (Reply) -> Void

    /// What an attempt's answer makes of it: delivered, failed for good, retried at a time, or not sent.
    public func conclude(_ reply: Reply) -> Attempted {
        switch reply.kind {
        case .ended(let attempted): attempted
        case .answered(let prepared, let result, let failures, let deadline, let zone):
            conclude(prepared, result: result, failures: failures, deadline: deadline, zone: zone)
        }
    }

    /// The same attempt with nothing suspended while it is on the wire: built and signed here
    /// (`prepare`), handed to the transport with a closure, and its answer told to `answer` as it
    /// arrives, for the caller to `conclude`. The scheduler sends this way: a call on the wire holds
    /// its request and a closure, not the frames of a suspended task (11 KB a call: SPEC 4's storm
    /// has hundreds on the wire at once, a burst a thousand). The closure given to the transport
    /// holds values only, not the deliverer: the transport's thread never keeps its own client alive.
    public func attempt(_ context: DeliveryContext, target: Target, number attempt: Int, failures: Int, deadline: Date,
                        cue: Cue?, answer: @escaping AttemptAnswer) {
        // The cue's state is read once: a withdrawal between two reads must not turn a held call
        // into one sent at once. Waiting: the transport holds it (and sees a later withdrawal);
        // released: a retry after the instant goes at once.
        let cueState = cue?.current
        if cueState == .withdrawn { return answer(.ended(Attempted(end: .notSent(withdrawn: true)))) }
        let cued = cueState == .waiting ? cue : nil
        let prepared = prepare(context, target: target, number: attempt, cued: cued)
        let zone = context.schedule.timeZone
        guard let request = prepared.request else {
            return answer(.answered(prepared, nil, failures: failures, deadline: deadline, zone: zone))
        }
        // What the answer is concluded with, without the request: thousands of answers may wait
        // for the journal at once, and the rendered request is the transport's once handed over.
        var kept = prepared
        kept.request = nil
        transport.perform(request) { [kept] result in
            if case .notSent = result.kind {
                answer(.ended(Attempted(end: .notSent(withdrawn: cued?.current == .withdrawn))))
            } else if Self.isCheapToConclude(kept, result) {
                // Status, scrubbing and the retry's time: microseconds, done at once so the answer
                // waits as its small conclusion, not as the request's rendering and the body.
                answer(.ended(self.conclude(kept, result: result, failures: failures, deadline: deadline, zone: zone)))
            } else {
                answer(.answered(kept, result, failures: failures, deadline: deadline, zone: zone))
            }
        }
    }

    /// Whether classifying `result` is only arithmetic: no recipe's body pattern to match (a regular
    /// expression over up to 64 KiB) and no HTTP-date in Retry-After to parse. Those are left to
    /// the receiver of the reply, off the transport's thread.
    static func isCheapToConclude(_ prepared: Prepared, _ result: TransferResult) -> Bool {
        guard prepared.expect?.bodyPattern == nil else { return false }
        if case .response(let response) = result.kind, let wait = response.retryAfter {
            return Int(wait.trimmingCharacters(in: .whitespaces)) != nil
        }
        return true
    }

    /// An attempt ready to leave: its request (nil when it could not be built), what scrubs
    /// secrets from its texts, what it expects back, and its record so far.
    public struct Prepared: Sendable {
        var request: HTTPRequest?
        var redactor: Redactor
        var expect: ResponseExpectation?
        var entry: AttemptRecord
        var buildError: String?
    }

    @inline(never)
    func prepare(_ context: DeliveryContext, target: Target, number attempt: Int, cued: Cue?) -> Prepared {
        let expect: ResponseExpectation? = {
            if case .templated(let requests) = target.kind { return requests[context.job.action]?.expect }
            return nil
        }()
        let started = cued?.at ?? time.now()
        let entry = AttemptRecord(job: context.job.id.description, target: target.name, webhookID: context.webhookID,
                                  send: context.send, attempt: attempt, startedAt: started, status: nil, error: nil,
                                  totalTime: 0, outcome: "", detail: nil)
        do {
            var (request, redactor) = try builder.request(context, target: target, sendingAt: started)
            request.cue = cued
            return Prepared(request: request, redactor: redactor, expect: expect, entry: entry)
        } catch {
            return Prepared(request: nil, redactor: Redactor(), expect: expect, entry: entry, buildError: "\(error)")
        }
    }

    /// What the answer (`result`; nil when the request could not be built) makes of the attempt.
    @inline(never)
    func conclude(_ prepared: Prepared, result: TransferResult?, failures: Int, deadline: Date, zone: TimeZone) -> Attempted {
        var entry = prepared.entry
        let redactor = prepared.redactor
        let outcome: AttemptOutcome
        if let result {
            entry.totalTime = result.totalTime
            switch result.kind {
            case .response(let response): entry.status = response.status
            case .failure(_, let message): entry.error = redactor.scrub(message)
            case .notSent: return Attempted(end: .notSent(withdrawn: false))
            }
            switch OutcomeClassifier.classify(result, expect: prepared.expect, now: time.now()) {
            case .retryable(let reason, let after): outcome = .retryable(reason: redactor.scrub(reason), retryAfter: after)
            case .permanent(let reason): outcome = .permanent(reason: redactor.scrub(reason))
            case .delivered: outcome = .delivered
            }
        } else {
            // A secret that vanished since validation: an operator can fix it, so keep trying.
            let error = prepared.buildError ?? "the request could not be built"
            outcome = .retryable(reason: error, retryAfter: nil)
            entry.error = error
        }
        entry.outcome = outcome.label
        switch outcome {
        case .delivered:
            return Attempted(end: .delivered, record: entry)
        case .permanent(let reason):
            entry.detail = reason
            return Attempted(end: .failed(reason), record: entry)
        case .retryable(let reason, let retryAfter):
            let wait = policy.delay(afterFailures: failures + 1, retryAfter: retryAfter)
            let next = time.now().addingTimeInterval(wait)
            if next >= deadline {
                entry.outcome = "failed"
                entry.detail = "\(reason); gave up: deadline \(WallClock.labelledText(deadline, in: zone)) reached"
                return Attempted(end: .failed(entry.detail!), record: entry)
            }
            entry.detail = reason
            return Attempted(end: .retry(next), record: entry)
        }
    }
}
