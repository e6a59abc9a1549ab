import Foundation
import Testing
@testable import OnAirCore

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
}
