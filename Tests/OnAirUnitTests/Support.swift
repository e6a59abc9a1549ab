import Foundation
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

/// Loads schedule text with a fixed environment, so secret checks do not depend on the machine.
func load(_ yaml: String, env: [String: String] = ["SITE_SECRET": "s3cret"], checkEnvironment: Bool = true) throws(ScheduleError) -> Schedule {
    let loader = ScheduleLoader(options: .init(checkEnvironment: checkEnvironment, secrets: SecretResolver(environment: env)))
    return try loader.parse(text: yaml, file: "t.yaml")
}

/// The diagnostics of schedule text, as `LINE:COL: message` strings (the file name is always t.yaml).
func problems(_ yaml: String, env: [String: String] = ["SITE_SECRET": "s3cret"]) -> [String] {
    do {
        _ = try load(yaml, env: env)
        return []
    } catch {
        return error.diagnostics.map { "\($0.line):\($0.column): \($0.message)" }
    }
}

/// The root of the repository, for the example files under config/.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A small valid schedule; tests change single lines of it. Line numbers matter: keep it stable.
let baseSchedule = """
id: test-week
title: Test week
timezone: Europe/Amsterdam
lead_time: 10m
targets:
  site:
    url: https://example.org/hook
    secret: env:SITE_SECRET
  mixer:
    requests:
      start: { method: GET, url: "http://127.0.0.1:8088/api/?Function=Start&title={{item.title}}" }
      stop: { method: GET, url: "http://127.0.0.1:8088/api/?Function=Stop" }
daily:
  - id: late-show
    title: Late Show
    kind: show
    start: "20:30"
    duration: 60m
    targets: [site]
days:
  - date: 2021-11-08
    title: Day one
    programme:
      - id: opening
        title: Opening
        kind: plenary
        start: "10:00"
        end: "11:30"
        location: Utrecht
  - date: 2021-11-09
    title: Day two
    skip_daily: [late-show]
    programme:
      - id: workshop
        title: Workshop
        start: "14:00"
        duration: 1h30m
        online: false
"""

/// `baseSchedule` with one line replaced (1-based line number).
func replacing(line: Int, with text: String, in yaml: String = baseSchedule) -> String {
    var lines = yaml.components(separatedBy: "\n")
    lines[line - 1] = text
    return lines.joined(separator: "\n")
}

func utc(_ text: String) -> Date {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: text)!
}
