import Foundation
import Testing
import Synchronization
import OnAirTestSupport
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

private let classifiedAt = Date(timeIntervalSince1970: 1_636_362_000)

@Suite("Signing and rendering")
struct SigningTests {
    @Test func standardWebhooksTestVector() {
        // Published by the Standard Webhooks specification.
        let signature = WebhookSigner.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                                body: Array(#"{"test": 2432232314}"#.utf8),
                                                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(WebhookSigner.verify(header: "v1,bogus " + signature, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                     body: Array(#"{"test": 2432232314}"#.utf8), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        #expect(!WebhookSigner.verify(header: signature, id: "msg_other", timestamp: 1_614_265_330,
                                      body: Array(#"{"test": 2432232314}"#.utf8), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
    }

    @Test func plainSecretsUseTheirUTF8Bytes() {
        #expect(WebhookSigner.key(for: "abc") == Array("abc".utf8))
        #expect(WebhookSigner.key(for: "whsec_AAEC") == [0, 1, 2])
    }

    @Test func webhookIDsAreStablePerSendAndDistinctOtherwise() {
        let job = JobID(event: "rv-2021", item: "zorg-plenary", action: .start, target: "site")
        #expect(WebhookSigner.webhookID(job: job, send: 0) == WebhookSigner.webhookID(job: job, send: 0))
        var ids = Set<String>()
        for action in Action.allCases {
            for target in ["site", "mixer"] {
                for send in 0..<2 {
                    ids.insert(WebhookSigner.webhookID(job: JobID(event: "rv-2021", item: "zorg-plenary", action: action, target: target), send: send))
                }
            }
        }
        ids.insert(WebhookSigner.webhookID(job: JobID(event: "rv-2022", item: "zorg-plenary", action: .start, target: "site"), send: 0))
        #expect(ids.count == 13)
        #expect(WebhookSigner.webhookID(job: job, send: 0).hasPrefix("msg_"))
    }

    @Test func bodyHasTheDocumentedShapeWithNulls() throws {
        let schedule = testSchedule(targets: [Target(name: "site", kind: .standard(url: "http://x", secret: nil))])
        let item = schedule.items[0]
        let job = Planner.jobs(for: item, in: schedule).first { $0.action == .start }!
        let body = String(decoding: RequestBuilder.standardBody(DeliveryContext(schedule: schedule, item: item, job: job)), as: UTF8.self)
        #expect(body == #"{"type":"stream.start","timestamp":"2021-11-08T09:00:00Z","data":{"event":"rv-2021","item":"zorg-plenary","title":"Plenaire opening","kind":"plenary","day":"2021-11-08","day_title":"Radicale vernieuwing zorg","start":"2021-11-08T09:00:00Z","end":"2021-11-08T10:30:00Z","location":null}}"#)
    }

    @Test func retryAfterParsing() {
        let now = Date(timeIntervalSince1970: 1_445_412_480)  // Wed, 21 Oct 2015 07:28:00 GMT
        #expect(OutcomeClassifier.retryAfterSeconds("120", now: now) == 120)
        #expect(OutcomeClassifier.retryAfterSeconds("Wed, 21 Oct 2015 07:28:30 GMT", now: now) == 30)
        #expect(OutcomeClassifier.retryAfterSeconds("Wed, 21 Oct 2015 07:27:00 GMT", now: now) == 0)
        #expect(OutcomeClassifier.retryAfterSeconds("soon", now: now) == nil)
    }

    @Test func backoffBoundsDoubleToThirtySecondsWithFullJitter() {
        let policy = RetryPolicy(random: { 0.999_999 })
        #expect(policy.bound(afterFailures: 1) == 0.5)
        #expect(policy.bound(afterFailures: 2) == 1)
        #expect(policy.bound(afterFailures: 7) == 30)
        #expect(policy.bound(afterFailures: 40) == 30)
        #expect(RetryPolicy(random: { 0 }).delay(afterFailures: 5, retryAfter: nil) == 0)
        #expect(abs(policy.delay(afterFailures: 3, retryAfter: nil) - 2) < 0.001)
        #expect(policy.delay(afterFailures: 1, retryAfter: 7) == 7)
    }

    @Test func classification() {
        func response(_ status: Int, _ body: String = "") -> TransferResult {
            TransferResult(kind: .response(HTTPResponse(status: status, body: Array(body.utf8))), totalTime: 0)
        }
        #expect(OutcomeClassifier.classify(response(204), expect: nil, now: classifiedAt) == .delivered)
        #expect(OutcomeClassifier.classify(response(408), expect: nil, now: classifiedAt) == .retryable(reason: "HTTP 408", retryAfter: nil))
        #expect(OutcomeClassifier.classify(response(503), expect: nil, now: classifiedAt) == .retryable(reason: "HTTP 503", retryAfter: nil))
        #expect(OutcomeClassifier.classify(response(404), expect: nil, now: classifiedAt) == .permanent(reason: "HTTP 404"))
        #expect(OutcomeClassifier.classify(response(302), expect: nil, now: classifiedAt) == .permanent(reason: "HTTP 302: redirects are not followed"))
        let expect = ResponseExpectation(statuses: [200], bodyPattern: "<return>1</return>")
        #expect(OutcomeClassifier.classify(response(200, "<return>1</return>"), expect: expect, now: classifiedAt) == .delivered)
        #expect(OutcomeClassifier.classify(response(200, "  <return>0</return>\nmore"), expect: expect, now: classifiedAt)
            == .retryable(reason: "unexpected response: HTTP 200: <return>0</return>", retryAfter: nil))
        #expect(OutcomeClassifier.classify(response(204), expect: expect, now: classifiedAt) == .permanent(reason: "HTTP 204 is not among the expected statuses"))
        #expect(OutcomeClassifier.classify(TransferResult(kind: .failure(code: 7, message: "Failed to connect"), totalTime: 0), expect: nil, now: classifiedAt)
            == .retryable(reason: "Failed to connect", retryAfter: nil))
    }
}

@Suite("Delivery through libcurl against a real loopback receiver", .serialized)
struct DeliveryTests {
    let client = CurlClient()

    func deliver(_ target: Target, schedule: Schedule? = nil, action: Action = .start, deadlineIn: Double = 10,
                 env: [String: String] = ["SITE_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]) async -> (DeliveryResult, [AttemptRecord]) {
        let schedule = schedule ?? testSchedule(targets: [target])
        let item = schedule.items[0]
        let job = Planner.jobs(for: item, in: schedule).first { $0.action == action && $0.target == target.name }!
        let deliverer = Deliverer(transport: client, builder: RequestBuilder(secrets: SecretResolver(environment: env)), policy: fastPolicy, time: SystemTime())
        let records = Records()
        let result = await deliverer.deliver(DeliveryContext(schedule: schedule, item: item, job: job), target: target,
                                             deadline: Date().addingTimeInterval(deadlineIn)) { await records.add($0) }
        return (result, await records.all)
    }

    // The engine holds a cued call on its own thread and lets it go at the instant, never before.
    @Test func aCuedCallLeavesAtItsInstantNotBefore() async throws {
        let receiver = try Receiver()
        var results: [TransferResult] = []
        var instants: [Date] = []
        for _ in 0..<5 {
            let at = Date().addingTimeInterval(0.3)
            instants.append(at)
            var request = HTTPRequest(method: "POST", url: receiver.base + "/ok/site", body: Array("{}".utf8))
            request.cue = Cue(at: at)
            results.append(await client.perform(request))
        }
        let calls = receiver.calls()
        #expect(calls.count == 5)
        for (call, at) in zip(calls, instants) {
            #expect(call.arrival >= at.timeIntervalSince1970, "arrived \(at.timeIntervalSince1970 - call.arrival) s early")
            #expect(call.arrival - at.timeIntervalSince1970 < 0.25, "arrived \(call.arrival - at.timeIntervalSince1970) s late")
        }
        for result in results { guard case .response(let r) = result.kind, r.status == 200 else { Issue.record("\(result.kind)"); continue } }
    }

    @Test func aWithdrawnCueNeverReachesThePlatform() async throws {
        let receiver = try Receiver()
        var request = HTTPRequest(method: "POST", url: receiver.base + "/ok/site", body: Array("{}".utf8))
        let cue = Cue(at: Date().addingTimeInterval(30))
        request.cue = cue
        let client = self.client
        let sending = Task { await client.perform(request) }
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(cue.withdraw())
        let result = await sending.value    // let go at once, not at its instant 30 s away
        guard case .notSent = result.kind else { Issue.record("withdrawn call gave \(result.kind)"); return }
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(receiver.calls().isEmpty)
    }

    @Test func signedCallWithEveryHeader() async throws {
        let receiver = try Receiver()
        let target = Target(name: "site", kind: .standard(url: receiver.base + "/ok/site", secret: .environment("SITE_SECRET")))
        let (result, records) = await deliver(target)
        #expect(result == .delivered(attempts: 1))
        let got = try #require(receiver.requests().first)
        #expect(got.method == "POST")
        #expect(got.headers["content-type"] == "application/json")
        #expect(got.headers["user-agent"] == "onair/\(OnAirVersion.current)")
        let id = try #require(got.headers["webhook-id"])
        let timestamp = try #require(Int(got.headers["webhook-timestamp"] ?? ""))
        #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 5)
        #expect(WebhookSigner.verify(header: got.headers["webhook-signature"] ?? "", id: id, timestamp: timestamp,
                                     body: Array(got.body.utf8), secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let json = try JSONSerialization.jsonObject(with: Data(got.body.utf8)) as? [String: Any]
        #expect(json?["type"] as? String == "stream.start")
        #expect((json?["data"] as? [String: Any])?["location"] is NSNull)
        #expect(records.map(\.outcome) == ["delivered"])
        #expect(records.first?.status == 200)
        #expect(records.first?.webhookID == id)
    }

    @Test func serverErrorsAreRetriedWithTheSameWebhookID() async throws {
        let receiver = try Receiver()
        let target = Target(name: "site", kind: .standard(url: receiver.base + "/flaky/2/500", secret: .environment("SITE_SECRET")))
        let (result, records) = await deliver(target)
        #expect(result == .delivered(attempts: 3))
        #expect(records.map(\.outcome) == ["retry", "retry", "delivered"])
        #expect(records.map(\.status) == [500, 500, 200])
        #expect(records.map(\.attempt) == [1, 2, 3])
        let ids = Set(receiver.requests().compactMap { $0.headers["webhook-id"] })
        #expect(ids.count == 1)
    }

    @Test func retryAfterIsHonoured() async throws {
        let receiver = try Receiver()
        let target = Target(name: "site", kind: .standard(url: receiver.base + "/retry-after/1/1", secret: nil))
        let (result, _) = await deliver(target)
        #expect(result == .delivered(attempts: 2))
        let arrivals = receiver.requests().map(\.arrival)
        #expect(arrivals.count == 2)
        #expect(arrivals[1] - arrivals[0] >= 0.95)
    }

    @Test func clientErrorsAndRedirectsFailAtOnce() async throws {
        let receiver = try Receiver()
        for path in ["/status/404", "/redirect", "/status/400"] {
            let target = Target(name: "site", kind: .standard(url: receiver.base + path, secret: nil))
            let (result, records) = await deliver(target)
            #expect(records.count == 1, "\(path)")
            guard case .failed = result else { Issue.record("\(path) not failed: \(result)"); continue }
        }
        #expect(receiver.requests().map(\.path) == ["/status/404", "/redirect", "/status/400"])  // the redirect was not followed
    }

    @Test func timeoutIsRetriedUntilTheDeadline() async throws {
        let receiver = try Receiver()
        let target = Target(name: "site", kind: .standard(url: receiver.base + "/hang/3", secret: nil), timeout: 1)
        let started = Date()
        let (result, records) = await deliver(target, deadlineIn: 2.5)
        guard case .failed(let reason, let attempts) = result else { Issue.record("\(result)"); return }
        #expect(attempts >= 2)
        #expect(reason.contains("gave up"))
        #expect(records.first?.error?.lowercased().contains("timeout") == true || records.first?.error?.lowercased().contains("timed out") == true)
        #expect(Date().timeIntervalSince(started) < 4.5)
    }

    @Test func closedConnectionAndRefusedConnectionAreRetried() async throws {
        let receiver = try Receiver()
        let closing = Target(name: "site", kind: .standard(url: receiver.base + "/close", secret: nil))
        let (r1, rec1) = await deliver(closing, deadlineIn: 0.5)
        guard case .failed = r1 else { Issue.record("\(r1)"); return }
        #expect(rec1.count >= 2)
        #expect(rec1.allSatisfy { $0.status == nil || $0.status == 0 })
        let refused = Target(name: "site", kind: .standard(url: "http://127.0.0.1:1/hook", secret: nil))
        let (r2, rec2) = await deliver(refused, deadlineIn: 0.5)
        guard case .failed = r2 else { Issue.record("\(r2)"); return }
        #expect(rec2.count >= 2)
        #expect(rec2.first?.outcome == "retry")
    }

    @Test func callsForOneItemAndTargetStayInOrderUnderRetries() async throws {
        let receiver = try Receiver()
        let flaky = Target(name: "site", kind: .templated(requests: [
            .start: RequestTemplate(method: "POST", url: receiver.base + "/flaky/3/503/start"),
            .stop: RequestTemplate(method: "POST", url: receiver.base + "/ok/stop"),
        ]))
        let other = Target(name: "other", kind: .standard(url: receiver.base + "/ok/other", secret: nil))
        let schedule = testSchedule(targets: [flaky, other])
        let item = schedule.items[0]
        let deliverer = Deliverer(transport: client, builder: RequestBuilder(secrets: SecretResolver(environment: [:])), policy: fastPolicy, time: SystemTime())
        let lanes = DeliveryLanes()
        var tasks: [Task<Void, Never>] = []
        for job in Planner.jobs(for: item, in: schedule) {
            let target = schedule.target(named: job.target)!
            tasks.append(lanes.enqueue(.init(item: item.id, target: job.target)) {
                _ = await deliverer.deliver(DeliveryContext(schedule: schedule, item: item, job: job), target: target,
                                            deadline: Date().addingTimeInterval(10)) { _ in }
            })
        }
        for task in tasks { await task.value }
        let paths = receiver.requests().map(\.path)
        #expect(paths.filter { $0.hasSuffix("/start") }.count == 4, "\(paths)")
        // The stop to the flaky target waits for its start; the other target is not held up by it.
        let lastStart = try #require(paths.lastIndex(of: "/flaky/3/503/start"), "\(paths)")
        let stop = try #require(paths.firstIndex(of: "/ok/stop"), "\(paths)")
        let otherFirst = try #require(paths.firstIndex(of: "/ok/other"), "\(paths)")
        #expect(lastStart < stop)
        #expect(otherFirst < lastStart)
    }

    @Test func httpsWithTheCAFromCaFile() async throws {
        let receiver = try Receiver(tls: true)
        let trusted = Target(name: "site", kind: .standard(url: receiver.base + "/ok/tls", secret: nil), caFile: receiver.caFile)
        let (ok, _) = await deliver(trusted)
        #expect(ok == .delivered(attempts: 1))
        let untrusted = Target(name: "site", kind: .standard(url: receiver.base + "/ok/tls", secret: nil))
        let (refused, records) = await deliver(untrusted, deadlineIn: 0.3)
        guard case .failed = refused else { Issue.record("self-signed certificate accepted: \(refused)"); return }
        #expect(records.first?.outcome == "retry")  // an operator may be fixing the certificate
        #expect(records.first?.error?.lowercased().contains("certificate") == true, "\(records.first?.error ?? "")")
        #expect(receiver.requests().count == 1)
    }

    @Test func aWarmedUpConnectionCarriesTheCallOverTLS() async throws {
        let receiver = try Receiver(tls: true)
        let target = Target(name: "site", kind: .standard(url: receiver.base + "/ok/site", secret: .environment("SITE_SECRET")),
                            caFile: receiver.caFile)
        let origin = try #require(target.origin(for: .start))
        #expect(origin == receiver.base + "/")
        let warm = await Deliverer(transport: client, time: SystemTime()).warm(origin: origin, target: target)
        guard case .response(let response) = warm.kind else { Issue.record("warm-up failed: \(warm.kind)"); return }
        #expect(response.status == 200)
        #expect(warm.newConnections == 1)
        let (result, _) = await deliver(target)
        #expect(result == .delivered(attempts: 1))
        let got = receiver.requests()
        #expect(got.map { "\($0.method) \($0.path)" } == ["HEAD /", "POST /ok/site"])
        #expect(got.count == 2 && got[0].peer == got[1].peer, "the call did not reuse the warmed connection")
    }

    @Test func callsBeyondTheTransferLimitWaitTheirTurnAndAllComplete() async throws {
        let receiver = try Receiver()
        let limited = CurlClient(maxTransfers: 2)
        let started = Date()
        let statuses = await withTaskGroup(of: Int.self) { group in
            for i in 0..<10 {
                group.addTask {
                    let result = await limited.perform(HTTPRequest(method: "GET", url: receiver.base + "/hang/0.3/\(i)", timeout: 10))
                    if case .response(let response) = result.kind { return response.status }
                    return 0
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let elapsed = Date().timeIntervalSince(started)
        #expect(statuses == Array(repeating: 200, count: 10))
        // Two at a time, 0.3 s each: five rounds.
        #expect(elapsed >= 1.4 && elapsed < 8, "\(elapsed) s")
    }

    @Test func aSlowPlatformDoesNotHoldUpACallToAnother() async throws {
        let slow = try Receiver(), fast = try Receiver()
        let client = CurlClient(maxConnectionsPerHost: 2, maxTransfers: 4)
        let hanging = (0..<6).map { i in
            Task { await client.perform(HTTPRequest(method: "GET", url: slow.base + "/hang/2/\(i)", timeout: 10)) }
        }
        try await Task.sleep(nanoseconds: 200_000_000)
        let started = Date()
        let result = await client.perform(HTTPRequest(method: "GET", url: fast.base + "/ok/fast", timeout: 10))
        let took = Date().timeIntervalSince(started)
        guard case .response(let response) = result.kind else { Issue.record("\(result.kind)"); return }
        #expect(response.status == 200)
        #expect(took < 1, "a call to an idle platform waited \(took) s behind a slow one")
        for call in hanging { _ = await call.value }
    }

    @Test func aClientDroppedBeforeItsThreadRunsIsNoCrash() async {
        // The worker thread once reached the client through an unowned reference: a client released
        // before its thread started (a test that never used it) aborted the process.
        for _ in 0..<300 { _ = CurlClient() }
        let client = CurlClient()
        let result = await client.perform(HTTPRequest(method: "GET", url: "http://127.0.0.1:9/", timeout: 1))
        guard case .failure = result.kind else { Issue.record("port 9 answered"); return }
    }

    /// Review finding: an answer's closure may hold the last reference to the client (the
    /// scheduler holds its deliverer, which holds the client). Its deinit then shuts the engine
    /// down on the engine's own thread, which waited for itself to end and hung for good.
    @Test func aClientReleasedInsideItsOwnAnswerDoesNotHangItsThread() async {
        final class Holder: @unchecked Sendable { var client: CurlClient? }
        let holder = Holder()
        holder.client = CurlClient()
        let callerReturned = DispatchSemaphore(value: 0)
        let released = Mutex(false)
        holder.client!.perform(HTTPRequest(method: "GET", url: "http://127.0.0.1:9/", timeout: 1)) { _ in
            callerReturned.wait()    // the caller's own reference is gone: this is the last one
            holder.client = nil
            released.withLock { $0 = true }
        }
        callerReturned.signal()
        var ended = false
        for _ in 0..<1000 where !ended {
            try? await Task.sleep(for: .milliseconds(10))
            ended = released.withLock { $0 }
        }
        #expect(ended, "the client's deinit on its own thread never returned")
    }

    /// Review finding: classifying an answer (a recipe's body pattern over 64 KiB, a Retry-After
    /// date) ran on libcurl's one thread and held up every other call. Such an answer now reaches
    /// the caller unclassified; one whose classifying is arithmetic is concluded at once.
    @Test func onlyAnswersThatAreCheapToClassifyAreConcludedOnTheTransportsThread() async throws {
        let entry = AttemptRecord(job: "t/show/start/site", target: "site", webhookID: "msg_x", send: 0, attempt: 1, startedAt: Date(),
                                  status: nil, error: nil, totalTime: 0, outcome: "", detail: nil)
        let plain = Deliverer.Prepared(request: nil, redactor: Redactor(), expect: nil, entry: entry)
        let patterned = Deliverer.Prepared(request: nil, redactor: Redactor(), expect: ResponseExpectation(bodyPattern: "\\bok\\b"), entry: entry)
        let ok = TransferResult(kind: .response(HTTPResponse(status: 200, body: Array("ok".utf8))), totalTime: 0.001)
        let busySeconds = TransferResult(kind: .response(HTTPResponse(status: 503, retryAfter: "5")), totalTime: 0.001)
        let busyUntil = TransferResult(kind: .response(HTTPResponse(status: 503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT")), totalTime: 0.001)
        #expect(Deliverer.isCheapToConclude(plain, ok) && Deliverer.isCheapToConclude(plain, busySeconds))
        #expect(!Deliverer.isCheapToConclude(patterned, ok), "a body pattern is matched by the receiver of the reply")
        #expect(!Deliverer.isCheapToConclude(plain, busyUntil), "an HTTP-date is parsed by the receiver of the reply")

        // And through the real transport: whatever the reply's form, concluding it gives the answer.
        let receiver = try Receiver()
        let target = Target(name: "site", kind: .standard(url: receiver.base + "/ok/site", secret: .environment("SITE_SECRET")))
        let schedule = testSchedule(targets: [target])
        let item = schedule.items[0]
        let job = Planner.jobs(for: item, in: schedule).first { $0.action == .start }!
        let deliverer = Deliverer(transport: client, builder: RequestBuilder(secrets: SecretResolver(environment: ["SITE_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])),
                                  policy: fastPolicy, time: SystemTime())
        let reply = await withCheckedContinuation { continuation in
            deliverer.attempt(DeliveryContext(schedule: schedule, item: item, job: job), target: target, number: 1, failures: 0,
                              deadline: Date().addingTimeInterval(10), cue: nil) { continuation.resume(returning: $0) }
        }
        let attempted = deliverer.conclude(reply)
        #expect(attempted.end == Deliverer.AttemptEnd.delivered)
        #expect(attempted.record?.status == 200)
    }

    @Test func originsForWarmUpNeverCarryCredentialsOrTemplates() {
        #expect(URLOrigin.of("https://user:pw@live.example.org:8443/hooks?x=1") == "https://live.example.org:8443/")
        #expect(URLOrigin.of("HTTP://10.0.0.5:8088/api/?Function=Start&title={{item.title}}") == "http://10.0.0.5:8088/")
        #expect(URLOrigin.of("http://{{item.id}}.example.org/hook") == nil)
        #expect(URLOrigin.of("ftp://example.org/") == nil)
    }

    @Test func templatedRequestsExpandAndEncodePlaceholders() async throws {
        let receiver = try Receiver()
        let target = Target(name: "mixer", kind: .templated(requests: [
            .start: RequestTemplate(method: "PUT", url: receiver.base + "/ok/api?title={{item.title}}&day={{day.date}}&a={{action}}",
                                    headers: [.init(name: "X-Item", value: "{{item.id}}")],
                                    body: #"{"title":"{{item.title}}","at":"{{scheduled_at}}"}"#),
        ]))
        let schedule = testSchedule(targets: [target])
        var renamed = schedule
        renamed.items[0].title = "Zorg & welzijn: één plenair"
        let (result, _) = await deliver(target, schedule: renamed)
        #expect(result == .delivered(attempts: 1))
        let got = try #require(receiver.requests().first)
        #expect(got.method == "PUT")
        #expect(got.path == "/ok/api?title=Zorg%20%26%20welzijn%3A%20%C3%A9%C3%A9n%20plenair&day=2021-11-08&a=start")
        #expect(got.headers["x-item"] == "zorg-plenary")
        #expect(got.body == #"{"title":"Zorg & welzijn: één plenair","at":"2021-11-08T09:00:00Z"}"#)
    }

    @Test func unexpectedBodyIsRetriedThenAccepted() async throws {
        let receiver = try Receiver()
        let target = Target(name: "radio", kind: .templated(requests: [
            .start: RequestTemplate(method: "GET", url: receiver.base + "/body/2/%3Creturn%3E1%3C%2Freturn%3E",
                                    expect: ResponseExpectation(statuses: [200], bodyPattern: "<return>1</return>")),
        ]))
        let (result, records) = await deliver(target)
        #expect(result == .delivered(attempts: 3))
        #expect(records.first?.detail == "unexpected response: HTTP 200: nothing")
    }

    @Test func unexpectedBodyUntilTheDeadlineIsReportedWithItsFirstLine() async throws {
        let receiver = try Receiver()
        let target = Target(name: "rtmp", kind: .templated(requests: [
            .start: RequestTemplate(method: "GET", url: receiver.base + "/body/1000/ok",
                                    expect: ResponseExpectation(statuses: [200], bodyPattern: "^[1-9]")),
        ]))
        let (result, records) = await deliver(target, deadlineIn: 0.6)
        guard case .failed(let reason, let attempts) = result else { Issue.record("\(result)"); return }
        #expect(attempts >= 2, "retried like a 5xx")
        #expect(reason.hasPrefix("unexpected response: HTTP 200: nothing; gave up"))
        #expect(records.last?.outcome == "failed")
        #expect(records.last?.status == 200)
    }

    @Test func everyAuthFormOnTheWireAndNeverInRecords() async throws {
        let receiver = try Receiver()
        let env = ["PW": "s3cr3t-pass", "TOKEN": "tok-123456", "KEY": "key-abcdef"]
        let forms: [(TargetAuth, String, String)] = [
            (.basic(user: "admin", password: .environment("PW")), "authorization", "Basic " + Data("admin:s3cr3t-pass".utf8).base64EncodedString()),
            (.bearer(.environment("TOKEN")), "authorization", "Bearer tok-123456"),
            (.header(name: "X-Api-Key", value: .environment("KEY")), "x-api-key", "key-abcdef"),
        ]
        for (auth, header, expected) in forms {
            let target = Target(name: "p", kind: .templated(requests: [.start: RequestTemplate(method: "GET", url: receiver.base + "/status/401/\(header)")]), auth: auth)
            let (result, records) = await deliver(target, env: env)
            guard case .failed = result else { Issue.record("\(result)"); continue }
            #expect(receiver.requests().last?.headers[header] == expected)
            let dump = String(describing: records) + String(describing: result)
            for secret in env.values { #expect(!dump.contains(secret)) }
        }
    }
}
