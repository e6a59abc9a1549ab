import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

@Suite("config/platforms recipes")
struct PlatformRecipeTests {
    static let expected = ["vmix", "obs", "nginx-rtmp", "icecast", "mediamtx", "ffplayout", "youtube"]
    static let directory = repositoryRoot.appendingPathComponent("config/platforms")

    @Test(arguments: expected)
    func recipeValidatesAndIsDocumented(name: String) throws {
        let path = Self.directory.appendingPathComponent("\(name).yaml").path
        // Secrets live on the machine the daemon runs on; here the file itself is checked: keys,
        // URLs, templates, placeholders, expect expressions, auth forms (a literal secret fails).
        let schedule = try ScheduleLoader(options: .init(checkEnvironment: false)).load(path: path)
        let templated = schedule.targets.filter { if case .templated = $0.kind { return true } else { return false } }
        #expect(!templated.isEmpty, "\(name) uses the platform's own API")
        #expect(!Planner.plan(schedule).isEmpty)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("#"), "\(name) starts with a comment explaining its calls")
        let guide = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/platforms.md"), encoding: .utf8)
        #expect(guide.contains("config/platforms/\(name).yaml"), "docs/platforms.md covers \(name)")
    }

    @Test func everyRecipeIsOneOfTheExpected() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".yaml") }
        #expect(Set(files.map { String($0.dropLast(5)) }) == Set(Self.expected))
    }
}
