import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

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

    // MARK: URLs that can never be sent (SPEC 3.2)

    /// Replaces the standard target's url (line 7, value at column 10).
    func standardURL(_ yaml: String) -> [String] { problems(replacing(line: 7, with: "    url: \(yaml)")) }

    /// Replaces the templated stop request's url (line 12, value at column 33).
    func templatedURL(_ yaml: String) -> [String] {
        problems(replacing(line: 12, with: "      stop: { method: GET, url: \(yaml) }"))
    }

    @Test func controlCharactersInAStandardURLAreRefused() {
        #expect(standardURL(#""https://example.org/hook\r\nX-Injected: 1""#) ==
            ["7:10: url of target 'site' contains a carriage return (U+000D); a URL must be one line without control characters"])
        #expect(standardURL(#""https://example.org/hook\nX""#) ==
            ["7:10: url of target 'site' contains a line feed (U+000A); a URL must be one line without control characters"])
        #expect(standardURL(#""https://example.org/\thook""#) ==
            ["7:10: url of target 'site' contains a tab (U+0009); a URL must be one line without control characters"])
        #expect(standardURL(#""https://example.org/\x01hook""#) ==
            ["7:10: url of target 'site' contains a control character (U+0001); a URL must be one line without control characters"])
        #expect(standardURL(#""https://example.org/hook\x7f""#) ==
            ["7:10: url of target 'site' contains a control character (U+007F); a URL must be one line without control characters"])
    }

    @Test func controlCharactersInATemplatedURLAreRefused() {
        #expect(templatedURL(#""http://127.0.0.1:8088/api/?Function=Stop\r\nHost: evil""#) ==
            ["12:33: url of stop request of target 'mixer' contains a carriage return (U+000D); a URL must be one line without control characters"])
        #expect(templatedURL(#""http://127.0.0.1:8088/api/?{{item.id}}\n""#) ==
            ["12:33: url of stop request of target 'mixer' contains a line feed (U+000A); a URL must be one line without control characters"])
    }

    @Test func spacesInAURLAreRefused() {
        #expect(standardURL(#""https://example.org/my hook""#) ==
            ["7:10: url of target 'site' contains a space; percent-encode it as %20"])
        #expect(templatedURL(#""http://127.0.0.1:8088/api/?Function=Stop&x=a b""#) ==
            ["12:33: url of stop request of target 'mixer' contains a space; percent-encode it as %20"])
        // Spaces inside a placeholder's braces are template syntax, not part of the URL.
        #expect(templatedURL(#""http://127.0.0.1:8088/api/?title={{ item.title }}""#) == [])
    }

    @Test func portsOutsideOneTo65535AreRefused() {
        #expect(standardURL("http://h:0/") == ["7:10: url of target 'site' has port 0; a port is 1-65535"])
        #expect(standardURL("http://h:99999/") == ["7:10: url of target 'site' has port 99999; a port is 1-65535"])
        #expect(standardURL("http://h:65536") == ["7:10: url of target 'site' has port 65536; a port is 1-65535"])
        #expect(standardURL("http://h:123456789012345678901234567890/x") ==
            ["7:10: url of target 'site' has port 123456789012345678901234567890; a port is 1-65535"])
        #expect(standardURL("http://h:80x/") == ["7:10: url of target 'site' has port '80x'; a port is a number 1-65535"])
        #expect(templatedURL(#""http://127.0.0.1:0/api/?Function=Stop""#) ==
            ["12:33: url of stop request of target 'mixer' has port 0; a port is 1-65535"])
        #expect(standardURL("http://[::1]:70000/hook") == ["7:10: url of target 'site' has port 70000; a port is 1-65535"])
    }

    @Test func validPortsAndIPv6LiteralsAreAccepted() {
        #expect(standardURL("http://h:1/") == [])
        #expect(standardURL("https://example.org:65535/hook?a=1#f") == [])
        #expect(standardURL("http://[::1]:8080/hook") == [])
        #expect(standardURL("http://[2001:db8::1]/hook") == [])
        #expect(templatedURL(#""http://[::1]:8088/api/?Function=Stop&t={{item.title}}""#) == [])
    }

    @Test func emptyHostsAreRefused() {
        #expect(standardURL("http:///hook") == ["7:10: url of target 'site' 'http:///hook' has no host"])
        #expect(standardURL("http://:8080/hook") == ["7:10: url of target 'site' 'http://:8080/hook' has no host"])
        #expect(standardURL("http://[]:8080/hook") == ["7:10: url of target 'site' 'http://[]:8080/hook' has no host"])
        #expect(templatedURL(#""http://:8088/api/?Function=Stop""#) ==
            ["12:33: url of stop request of target 'mixer' 'http://:8088/api/?Function=Stop' has no host"])
    }

    @Test func unescapedPlaceholdersInAURLAreRefused() {
        #expect(templatedURL(#""http://127.0.0.1:8088/api/?Function=Stop&t={{{item.title}}}""#) ==
            ["12:33: url of stop request of target 'mixer' inserts {{{item.title}}} unescaped; write {{item.title}} so that it is percent-encoded"])
        #expect(templatedURL(#""http://127.0.0.1:8088/api/?Function=Stop&t={{& item.title}}""#) ==
            ["12:33: url of stop request of target 'mixer' inserts {{& item.title}} unescaped; write {{item.title}} so that it is percent-encoded"])
    }

    @Test func everyShippedScheduleStillValidates() throws {
        let config = repositoryRoot.appendingPathComponent("config")
        var paths: [String] = []
        for directory in [config, config.appendingPathComponent("platforms")] {
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
            paths += names.map { directory.appendingPathComponent($0).path }
        }
        #expect(paths.count >= 10)
        for path in paths {
            #expect(throws: Never.self, "\(path)") {
                _ = try ScheduleLoader(options: .init(checkEnvironment: false)).load(path: path)
            }
        }
    }

    // MARK: JSON bodies (SPEC 3.1)

    /// The start request rendered for an item with `title`, from a template with these headers and body.
    func renderedBody(title: String, headers: [(String, String)], body: String) throws -> String {
        let template = RequestTemplate(method: "POST", url: "http://127.0.0.1:9/x",
                                       headers: headers.map { .init(name: $0.0, value: $0.1) }, body: body)
        let target = Target(name: "mixer", kind: .templated(requests: [.start: template]))
        var schedule = testSchedule(targets: [target])
        schedule.items[0].title = title
        let item = schedule.items[0]
        let job = try #require(Planner.jobs(for: item, in: schedule).first { $0.action == .start })
        let (request, _) = try RequestBuilder(secrets: SecretResolver(environment: [:]))
            .request(DeliveryContext(schedule: schedule, item: item, job: job), target: target, sendingAt: Date())
        return String(decoding: try #require(request.body), as: UTF8.self)
    }

    func parsedTitle(_ body: String) throws -> String? {
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return object?["title"] as? String
    }

    @Test func quotesAndBackslashesInAJSONBodyAreEscaped() throws {
        let title = #"Plenaire "opening" \ deel 1"#
        let body = try renderedBody(title: title, headers: [("Content-Type", "application/json")],
                                    body: #"{"title": "{{item.title}}"}"#)
        #expect(body == #"{"title": "Plenaire \"opening\" \\ deel 1"}"#)
        #expect(try parsedTitle(body) == title)
    }

    @Test func controlCharactersAndNewlinesInAJSONBodyAreEscaped() throws {
        let title = "Line one\nline two\r\n\ttabbed \u{1}\u{1F} end"
        let body = try renderedBody(title: title, headers: [("Content-Type", "application/json")],
                                    body: #"{"title": "{{item.title}}"}"#)
        #expect(try parsedTitle(body) == title)
    }

    @Test func anyJSONContentTypeIsRecognised() throws {
        let title = #"Plenaire "opening" \ deel 1"#
        for (name, value) in [("content-type", "Application/JSON; charset=utf-8"), ("CONTENT-TYPE", "application/vnd.api+json"),
                              ("Content-Type", " application/problem+JSON ")] {
            let body = try renderedBody(title: title, headers: [("Accept", "text/plain"), (name, value)],
                                        body: #"{"title": "{{item.title}}"}"#)
            #expect(try parsedTitle(body) == title, "\(name): \(value)")
        }
    }

    @Test func bodiesOfOtherContentTypesAreLeftAsTheyAre() throws {
        let title = #"Plenaire "opening" \ deel 1 & <b>"#
        #expect(try renderedBody(title: title, headers: [("Content-Type", "text/plain")], body: "t={{item.title}}") ==
            "t=" + title)
        #expect(try renderedBody(title: title, headers: [("Content-Type", "application/jsonl")], body: "{{item.title}}") == title)
        #expect(try renderedBody(title: title, headers: [], body: "{{item.title}}") == title)
    }

    // MARK: Secret files writable by others (SPEC 3.2)

    /// A fresh directory with a file `name` holding `text` at `mode`; returns the file's path.
    func secretFile(_ name: String = "token", _ text: String = "s3cret\n", mode: Int) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onair-trust-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent(name).path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    @Test func secretFilesWritableByOthersAreRefused() throws {
        for mode in [0o666, 0o620, 0o602, 0o622] {
            let path = try secretFile(mode: mode)
            let octal = "0" + String(mode, radix: 8)
            #expect(throws: SecretError(reference: .file(path),
                                        reason: "file \(path) is group- or world-writable (mode \(octal)); run chmod go-w \(path)")) {
                try SecretResolver(environment: [:]).resolve(.file(path))
            }
        }
    }

    @Test func secretFilesOnlyTheOwnerMayWriteAreRead() throws {
        for mode in [0o600, 0o400, 0o644, 0o640] {
            let path = try secretFile(mode: mode)
            #expect(try SecretResolver(environment: [:]).resolve(.file(path)) == "s3cret")
        }
    }

    @Test func credentialFilesWritableByOthersAreRefused() throws {
        let path = try secretFile("site", mode: 0o646)
        let directory = (path as NSString).deletingLastPathComponent
        #expect(throws: SecretError(reference: .credential("site"),
                                    reason: "file \(path) is group- or world-writable (mode 0646); run chmod go-w \(path)")) {
            try SecretResolver(environment: ["CREDENTIALS_DIRECTORY": directory]).resolve(.credential("site"))
        }
    }

    @Test func validateReportsAWritableSecretFileAtItsPosition() throws {
        let path = try secretFile(mode: 0o666)
        #expect(problems(replacing(line: 8, with: "    secret: file:\(path)")) ==
            ["8:13: secret of target 'site': secret file:\(path) cannot be resolved: file \(path) is group- or world-writable (mode 0666); run chmod go-w \(path)"])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(problems(replacing(line: 8, with: "    secret: file:\(path)")) == [])
    }

    @Test func theChmodHintQuotesAPathAShellWouldSplit() throws {
        let path = try secretFile("my token", mode: 0o666)
        #expect(throws: SecretError(reference: .file(path),
                                    reason: "file \(path) is group- or world-writable (mode 0666); run chmod go-w '\(path)'")) {
            try SecretResolver(environment: [:]).resolve(.file(path))
        }
    }

    // Secrets are read at every attempt: a device, a FIFO or a huge file would stall or swamp each call.
    @Test func aSecretMustBeASmallRegularFile() throws {
        #expect(throws: SecretError(reference: .file("/dev/zero"), reason: "/dev/zero is not a regular file")) {
            try SecretResolver(environment: [:]).resolve(.file("/dev/zero"))
        }
        let fifo = (try secretFile(mode: 0o600) as NSString).deletingLastPathComponent + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: SecretError(reference: .file(fifo), reason: "\(fifo) is not a regular file")) {
            try SecretResolver(environment: [:]).resolve(.file(fifo))   // returns at once: no writer is waited for
        }
        let big = try secretFile("big", String(repeating: "x", count: 64 * 1024 + 1), mode: 0o600)
        #expect(throws: SecretError(reference: .file(big), reason: "file \(big) is larger than 64 KiB; a secret is one line")) {
            try SecretResolver(environment: [:]).resolve(.file(big))
        }
        let limit = try secretFile("limit", String(repeating: "x", count: 64 * 1024), mode: 0o600)
        #expect(try SecretResolver(environment: [:]).resolve(.file(limit)).count == 64 * 1024)
    }
}
