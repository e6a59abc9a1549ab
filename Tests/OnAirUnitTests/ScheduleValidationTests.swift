import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

@Suite("Schedule validation: every class of problem at its exact line and column")
struct ScheduleValidationTests {
    @Test func baseScheduleIsValid() throws {
        let schedule = try load(baseSchedule)
        #expect(schedule.id == "test-week")
        #expect(schedule.leadTime == 600)
        #expect(schedule.targets.map(\.name) == ["site", "mixer"])
        #expect(schedule.items.map(\.id) == ["opening", "late-show-2021-11-08", "workshop"])
    }

    @Test func yamlSyntaxError() {
        let yaml = replacing(line: 2, with: "title: [unclosed")
        let p = problems(yaml)
        // libyaml notices the unclosed list where the next line begins, and names where it opened.
        #expect(p == ["3:9: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 8)"])
    }

    @Test func tabIndentationIsASyntaxErrorWithPosition() {
        let p = problems("id: x\n\ttitle: y\n")
        #expect(p.count == 1)
        #expect(p.first?.hasPrefix("2:1: YAML syntax error") == true, "\(p)")
    }

    @Test func unknownKeyWithSuggestion() {
        let p = problems(replacing(line: 29, with: "        locaton: Utrecht"))
        #expect(p == ["29:9: unknown key 'locaton' in programme item; did you mean 'location'?"])
    }

    @Test func unknownTopLevelKey() {
        let p = problems(baseSchedule + "\nextra: 1")
        #expect(p.count == 1)
        #expect(p.first?.hasPrefix("39:1: unknown key 'extra' in the schedule") == true, "\(p)")
    }

    @Test func missingRequiredKeys() {
        let p = problems(replacing(line: 25, with: "        # no title"))
        #expect(p == ["24:9: programme item is missing required key 'title'"])
        let top = problems(replacing(line: 3, with: "# no timezone"))
        #expect(top == ["1:1: the schedule is missing required key 'timezone'"])
    }

    @Test func missingEndAndDuration() {
        let q = problems(replacing(line: 28, with: "        online: true"))
        #expect(q == ["24:9: programme item needs end or duration"])
        let dup = problems(replacing(line: 28, with: "        kind: x"))
        // Reported where the key repeats; the first value counts, so the rest of the file is still checked.
        #expect(dup == ["24:9: programme item needs end or duration",
                        "28:9: duplicate key 'kind' in the same mapping (first at line 26, column 9)"])
    }

    @Test func badSlugs() {
        #expect(problems(replacing(line: 1, with: "id: Test_Week")) ==
            ["1:5: id 'Test_Week' is not a valid slug: use lowercase letters, digits and '-' (at most 64)"])
        #expect(problems(replacing(line: 24, with: "      - id: Opening!")) ==
            ["24:13: id of programme item 'Opening!' is not a valid slug: use lowercase letters, digits and '-' (at most 64)"])
        #expect(problems(replacing(line: 6, with: "  Site:")).first?.hasPrefix("6:3: target name 'Site' is not a valid slug") == true)
    }

    @Test func duplicateIDs() {
        let p = problems(replacing(line: 34, with: "      - id: opening"))
        #expect(p == ["34:13: duplicate id 'opening'; first used at line 24"])
    }

    @Test func programmeIDCollidingWithADailyInstance() {
        let p = problems(replacing(line: 24, with: "      - id: late-show-2021-11-08"))
        #expect(p.contains("24:13: id 'late-show-2021-11-08' is also the id of daily item 'late-show' on 2021-11-08"), "\(p)")
    }

    @Test func unknownTimezone() {
        #expect(problems(replacing(line: 3, with: "timezone: Europe/Amsterdm")) ==
            ["3:11: unknown timezone 'Europe/Amsterdm'; use an IANA name such as Europe/Amsterdam"])
    }

    @Test func unknownTargetName() {
        #expect(problems(replacing(line: 19, with: "    targets: [site, youtube]")) ==
            ["19:21: unknown target 'youtube'; targets are: site, mixer"])
    }

    @Test func badURLsAndSchemes() {
        #expect(problems(replacing(line: 7, with: "    url: ftp://example.org/hook")) ==
            ["7:10: url of target 'site' uses scheme 'ftp'; only http and https are allowed"])
        #expect(problems(replacing(line: 7, with: "    url: not a url")) ==
            ["7:10: url of target 'site' 'not a url' is not a valid URL"])
        #expect(problems(replacing(line: 7, with: "    url: https://user:pw@example.org/hook")) ==
            ["7:10: url of target 'site' must not carry credentials; use auth: with a secret reference"])
        let templated = problems(replacing(line: 12, with: "      stop: { method: GET, url: \"file:///etc/passwd\" }"))
        #expect(templated == ["12:33: url of stop request of target 'mixer' uses scheme 'file'; only http and https are allowed"])
    }

    @Test func unknownPlaceholder() {
        let p = problems(replacing(line: 12, with: "      stop: { method: GET, url: \"http://h/x?{{item.name}}\" }"))
        #expect(p.count == 1)
        #expect(p.first?.hasPrefix("12:33: unknown placeholder {{item.name}}") == true, "\(p)")
    }

    @Test func endNotAfterStart() {
        #expect(problems(replacing(line: 28, with: "        end: \"09:30\"")) ==
            ["28:14: end 09:30 is not after start of 'opening'; for an item that runs past midnight, give a duration instead"])
        #expect(problems(replacing(line: 28, with: "        end: \"10:00\"")).count == 1)
    }

    @Test func overlappingOnlineItemsSharingATarget() {
        var yaml = replacing(line: 27, with: "        start: \"20:00\"")
        yaml = replacing(line: 28, with: "        end: \"21:00\"", in: yaml)
        let p = problems(yaml)
        #expect(p == ["14:5: 'late-show-2021-11-08' overlaps 'opening' (line 24) on target 'site': both online at 2021-11-08 20:30:00"])
    }

    @Test func overlapOnDifferentTargetsOrOnSiteIsAllowed() throws {
        var yaml = replacing(line: 27, with: "        start: \"20:00\"")
        yaml = replacing(line: 28, with: "        end: \"21:00\"", in: yaml)
        _ = try load(replacing(line: 29, with: "        targets: [mixer]", in: yaml))
        _ = try load(replacing(line: 29, with: "        online: false", in: yaml))
    }

    @Test func badDurations() {
        #expect(problems(replacing(line: 18, with: "    duration: 60")) ==
            ["18:15: duration '60' is not a duration; write it like 90s, 10m, 1h30m or 2h"])
        #expect(problems(replacing(line: 4, with: "lead_time: 10 minutes")).count == 1)
    }

    @Test func badTimes() {
        #expect(problems(replacing(line: 27, with: "        start: \"25:00\"")) ==
            ["27:16: start '25:00' is not a time; write HH:MM or HH:MM:SS, optionally with an offset like 10:00+01:00"])
    }

    @Test func datesOutsideTheWeek() {
        #expect(problems(replacing(line: 30, with: "  - date: 2021-11-15")) ==
            ["30:11: date 2021-11-15 is outside the week 2021-11-08 to 2021-11-14 that the first day opens; a schedule file covers at most 7 days"])
        #expect(problems(replacing(line: 30, with: "  - date: 2021-11-08")) == ["30:11: date 2021-11-08 appears twice in days"])
        #expect(problems(replacing(line: 30, with: "  - date: 2021-11-07")) ==
            ["30:11: date 2021-11-07 comes before the previous day 2021-11-08; list days in order"])
        #expect(problems(replacing(line: 30, with: "  - date: 2021-02-30")) ==
            ["30:11: date '2021-02-30' is not a calendar date; write YYYY-MM-DD"])
    }

    @Test func unresolvableAndLiteralSecrets() {
        #expect(problems(baseSchedule, env: [:]) ==
            ["8:13: secret of target 'site': secret env:SITE_SECRET cannot be resolved: environment variable SITE_SECRET is not set"])
        #expect(problems(replacing(line: 8, with: "    secret: hunter2")) ==
            ["8:13: secret of target 'site' must be a reference (env:NAME, file:PATH or credential:NAME), never the secret itself"])
        #expect(problems(replacing(line: 8, with: "    secret: file:/nonexistent/secret")) ==
            ["8:13: secret of target 'site': secret file:/nonexistent/secret cannot be resolved: file /nonexistent/secret cannot be read: No such file or directory"])
        #expect(problems(replacing(line: 8, with: "    secret: credential:site")) ==
            ["8:13: secret of target 'site': secret credential:site cannot be resolved: CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)"])
        // plan and ics do not need secrets
        #expect(throws: Never.self) { try load(baseSchedule, env: [:], checkEnvironment: false) }
    }

    @Test func literalPasswordInAuthIsRefusedWithItsLine() {
        let yaml = replacing(line: 10, with: "    auth: { basic: { user: admin, password: hackme } }\n    requests:")
        #expect(problems(yaml) ==
            ["10:45: password must be a reference (env:NAME, file:PATH or credential:NAME), never the secret itself"])
    }

    @Test func badExpectRegex() {
        let yaml = replacing(line: 12, with: "      stop: { url: \"http://h/x\", expect: { status: [200], body: \"(unclosed\" } }")
        #expect(problems(yaml) == ["12:65: expect body '(unclosed' is not a valid regular expression"])
    }

    @Test func skipDailyMustNameADailyItem() {
        #expect(problems(replacing(line: 32, with: "    skip_daily: [late-shw]")) ==
            ["32:18: skip_daily names 'late-shw', which is not a daily item"])
    }

    @Test func everyProblemIsReportedNotJustTheFirst() {
        var yaml = replacing(line: 3, with: "timezone: Mars/Olympus")
        yaml = replacing(line: 7, with: "    url: gopher://x", in: yaml)
        yaml = replacing(line: 29, with: "        locaton: x", in: yaml)
        let p = problems(yaml)
        #expect(p.count == 3, "\(p)")
        #expect(p.map { $0.split(separator: ":").first! } == ["3", "7", "29"])
    }
}

@Suite("Hostile input: never a crash, always one clear line")
struct HostileInputTests {
    @Test func emptyFile() {
        #expect(problems("") == ["1:1: empty file; a schedule needs at least id, title, timezone, targets and days"])
        #expect(problems("# only a comment\n").count == 1)
    }

    @Test func notAMapping() {
        #expect(problems("- a\n- b\n") == ["1:1: the schedule must be a mapping of keys to values, not a list"])
        #expect(problems("just text") == ["1:1: the schedule must be a mapping of keys to values, not the value 'just text'"])
    }

    @Test func binaryData() {
        let loader = ScheduleLoader(options: .init(checkEnvironment: false))
        #expect(throws: ScheduleError.self) { try loader.parse(data: Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0xFF, 0xFE]), file: "x.png") }
        do {
            _ = try loader.parse(data: Data("id: x\ntitle: \u{0}\n".utf8), file: "n.yaml")
            Issue.record("NUL accepted")
        } catch {
            #expect(error.description == "n.yaml:2:1: contains a NUL byte; is this a binary file?")
        }
        do {
            _ = try loader.parse(data: Data([0x69, 0x64, 0x3A, 0x0A, 0x61, 0xC3, 0x28]), file: "u.yaml")
            Issue.record("invalid UTF-8 accepted")
        } catch {
            #expect(error.description == "u.yaml:2:2: not UTF-8 text; a schedule file must be UTF-8 YAML")
        }
    }

    @Test func deeplyNestedInput() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let p = problems("id: " + deep)
        #expect(p.count == 1)
        let blockDeep = (0..<5000).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n")
        #expect(problems(blockDeep).count == 1)
    }

    @Test func hugeFileIsRefusedBeforeParsing() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("huge-\(UUID()).yaml").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: ScheduleLoader.maximumFileSize + 1))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: ScheduleError.self) { try ScheduleLoader().load(path: path) }
    }

    @Test func missingFileAndDirectory() {
        do {
            _ = try ScheduleLoader().load(path: "/nonexistent/x.yaml")
            Issue.record("missing file accepted")
        } catch {
            #expect(error.description == "/nonexistent/x.yaml:1:1: cannot read file: no such file")
        }
        do {
            _ = try ScheduleLoader().load(path: "/tmp")
            Issue.record("directory accepted")
        } catch {
            #expect(error.description == "/tmp:1:1: is a directory, not a schedule file")
        }
    }

    @Test func wrongTypesEverywhere() {
        let wrong = "id: x\ntitle: X\ntimezone: UTC\ntargets: [site]\ndays: {}\n"
        #expect(problems(wrong) == [
            "4:10: targets must be a mapping of target names to targets, not a list",
            "5:7: days must be a list, not a mapping",
        ])
        #expect(problems(replacing(line: 38, with: "        online: yes")) == ["38:17: online must be true or false, not 'yes'"])
    }
}
