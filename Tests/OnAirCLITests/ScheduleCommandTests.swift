import Foundation
import Testing

@Suite("onair validate / plan / ics: exit statuses and output")
struct ScheduleCommandTests {
    let secretEnv = ["ONAIR_SITE_SECRET": "demo"]

    @Test func validateValidFileExitsZero() throws {
        let r = try CLI.run(["validate", "config/rv-2021.yaml"], environment: secretEnv)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("valid"))
    }

    @Test func validateInvalidFileExitsOneWithOneLinePerProblem() throws {
        let path = try CLI.temporaryFile("id: Bad\ntitle: x\ntimezone: Nowhere/City\ntargets: {}\ndays: []\n")
        let r = try CLI.run(["validate", path])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines == [
            "\(path):1:5: id 'Bad' is not a valid slug: use lowercase letters, digits and '-' (at most 64)",
            "\(path):3:11: unknown timezone 'Nowhere/City'; use an IANA name such as Europe/Amsterdam",
            "\(path):4:10: targets must name at least one target",
            "\(path):5:7: days must list at least one day",
        ])
        #expect(!r.stderr.contains("Fatal") && !r.stderr.contains("Stack"))
    }

    @Test func unresolvedSecretMakesValidateFailButNotPlan() throws {
        let v = try CLI.run(["validate", "config/rv-2021.yaml"])
        #expect(v.status == 1)
        #expect(v.stderr == "config/rv-2021.yaml:19:13: secret of target 'site': secret env:ONAIR_SITE_SECRET cannot be resolved: environment variable ONAIR_SITE_SECRET is not set\n")
        let p = try CLI.run(["plan", "config/rv-2021.yaml"])
        #expect(p.status == 0)
    }

    @Test func validateJSON() throws {
        let path = try CLI.temporaryFile("id: x\n")
        let r = try CLI.run(["validate", "--json", path])
        #expect(r.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(object?["valid"] as? Bool == false)
        #expect((object?["errors"] as? [[String: Any]])?.count == 4)
    }

    @Test func usageErrorsExitTwo() throws {
        #expect(try CLI.run(["validate"]).status == 2)
        #expect(try CLI.run(["frobnicate"]).status == 2)
        #expect(try CLI.run(["plan", "config/rv-2021.yaml", "--from", "yesterday"]).status == 2)
        #expect(try CLI.run(["--help"]).status == 0)
    }

    @Test func missingBinaryAndEmptyFilesAreOneLineErrors() throws {
        let missing = try CLI.run(["validate", "/nonexistent.yaml"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "/nonexistent.yaml:1:1: cannot read file: no such file\n")
        let binary = try CLI.temporaryFile("")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: binary))
        let b = try CLI.run(["validate", binary])
        #expect(b.status == 1)
        #expect(b.stderr.split(separator: "\n").count == 1)
    }

    @Test func planShowsFiveLateNightShowsAt2030Local1930UTC() throws {
        let r = try CLI.run(["plan", "config/rv-2021.yaml"])
        #expect(r.status == 0)
        let starts = r.stdout.split(separator: "\n").filter { $0.contains("late-night-show") && $0.contains(" start ") }
        #expect(starts.count == 5)
        for line in starts {
            #expect(line.contains(" 20:30:00 "))
            #expect(line.contains("T19:30:00Z"))
        }
    }

    @Test func planFromToAndJSON() throws {
        let r = try CLI.run(["plan", "config/rv-2021.yaml", "--from", "2021-11-10", "--to", "2021-11-10T12:00", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let jobs = try #require(object?["jobs"] as? [[String: Any]])
        #expect(jobs.map { $0["action"] as? String } == ["prepare", "start", "stop"])
        #expect(jobs.first?["utc"] as? String == "2021-11-10T08:50:00Z")
    }

    @Test func icsIsCRLFAndComplete() throws {
        let r = try CLI.run(["ics", "config/rv-2022.yaml"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("BEGIN:VCALENDAR\r\n"))
        #expect(r.stdout.components(separatedBy: "BEGIN:VEVENT").count - 1 == 10)
        #expect(r.stdout.contains("LOCATION:Ministerie van VWS\\, Den Haag\r\n"))
    }
}
