import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

@Suite("Reading YAML through libyaml's events")
struct YAMLReaderTests {
    @Test func scalarsKeepTheirPositionAndWhetherTheyWerePlain() throws {
        let document = try YAMLReader.read("a: null\nb: \"null\"\nc:\n  - x\n  - 'y'\n")
        guard case .mapping(let root) = document.root else { Issue.record("root is not a mapping"); return }
        #expect(root.map { $0.key.string } == ["a", "b", "c"])
        guard case .scalar(let a) = root[0].value, case .scalar(let b) = root[1].value,
              case .sequence(let c) = root[2].value else { Issue.record("wrong shapes"); return }
        #expect(a.isPlain && !b.isPlain)
        #expect((b.mark.line, b.mark.column) == (2, 4))
        #expect(c.map(\.string) == ["x", "y"])
        #expect((c[1].mark.line, c[1].mark.column) == (5, 5))
    }

    @Test func aliasesStandForTheirAnchoredNode() throws {
        let yaml = replacing(line: 19, with: "    targets: &everywhere [site, mixer]")
            + "\n      - { id: closing, title: Closing, start: \"16:00\", duration: 30m, targets: *everywhere }\n"
        let schedule = try load(yaml)
        let closing = schedule.items.first { $0.id == "closing" }
        #expect(closing?.targets == ["site", "mixer"])
    }

    @Test func anAliasWithoutAnchorIsReportedWhereItStands() {
        #expect(problems(replacing(line: 19, with: "    targets: *nowhere")) ==
            ["19:14: YAML error: alias '*nowhere' names no anchor defined before it"])
    }

    @Test func absurdNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let p = problems("id: x\ntitle: \(deep)\n")
        #expect(p == ["2:71: nested more than 64 levels deep; a schedule needs far fewer"])
    }

    @Test func aSecondDocumentIsRefusedWhereItBegins() {
        #expect(problems(baseSchedule + "\n---\nid: other\n") ==
            ["39:1: a schedule file holds one YAML document; a second one starts here"])
    }

    @Test func aControlCharacterIsReportedAtItsPlace() {
        let p = problems("id: x\ntitle: caf\u{e9} \u{01}\n")
        #expect(p.count == 1)
        #expect(p.first?.hasPrefix("2:13: cannot read YAML: control characters are not allowed") == true, "\(p)")
    }

    @Test func anAliasCannotNestDeeperThanWrittenNodesMay() {
        // 40 levels under an anchor, used 40 levels down: 80 levels once written out.
        let deep = String(repeating: "[", count: 40) + "x" + String(repeating: "]", count: 40)
        let yaml = "id: x\nanchor: &deep \(deep)\ntitle: " + String(repeating: "[", count: 40) + "*deep" + String(repeating: "]", count: 40) + "\n"
        #expect(problems(yaml) == ["3:48: alias '*deep' nests more than 64 levels deep"])
    }

    @Test func aliasesThatMultiplyAreRefusedNotExpanded() {
        // Each level lists the one before ten times: 10^7 nodes from a few hundred bytes.
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...7 {
            yaml += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let started = Date()
        let p = problems(yaml)
        #expect(p.count == 1)
        #expect(p.first?.contains("aliases expand to more than 1000000 nodes") == true, "\(p)")
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func anEmptyFileOnDiskIsOneLineNotACrash() throws {
        let path = temporaryDirectory() + "/empty.yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        do {
            _ = try ScheduleLoader(options: .init(checkEnvironment: false)).load(path: path)
            Issue.record("an empty file loaded")
        } catch {
            #expect(error.diagnostics.map(\.message) == ["empty file; a schedule needs at least id, title, timezone, targets and days"])
        }
    }
}
