import ArgumentParser
import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirDaemon

/// Loads a schedule for a command, printing its diagnostics and failing with exit 1 when it is invalid.
func loadSchedule(_ path: String, checkEnvironment: Bool) throws -> Schedule {
    do {
        return try ScheduleLoader(options: .init(checkEnvironment: checkEnvironment)).load(path: path)
    } catch {
        Terminal.error(error.description)
        throw ExitCode(ExitStatus.failed)
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a schedule file; every problem is printed as FILE:LINE:COL: message.",
        discussion: "Exit status 0 when the file is valid, 1 when it is not. Secrets and ca_file are resolved as the daemon would."
    )

    @Argument(help: "The schedule file (YAML).") var file: String
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let loader = ScheduleLoader(options: .init(checkEnvironment: true))
        do {
            let schedule = try loader.load(path: file)
            let jobs = Planner.plan(schedule)
            if json {
                Terminal.out(#"{"valid":true,"file":\#(JSON.string(file)),"items":\#(schedule.items.count),"jobs":\#(jobs.count)}"#)
            } else {
                Terminal.out("\(file): valid: \(schedule.title), \(schedule.days.count) days, \(schedule.items.count) items, \(jobs.count) jobs")
            }
        } catch {
            if json {
                let rows = error.diagnostics.map {
                    #"{"file":\#(JSON.string($0.file)),"line":\#($0.line),"column":\#($0.column),"message":\#(JSON.string($0.message))}"#
                }
                Terminal.out(#"{"valid":false,"file":\#(JSON.string(file)),"errors":[\#(rows.joined(separator: ","))]}"#)
            } else {
                Terminal.error(error.description)
            }
            throw ExitCode(ExitStatus.failed)
        }
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show every job the schedule yields, in time order, local and UTC, without running anything.",
        discussion: "--from and --to take YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] in the schedule's timezone, or with an offset/Z. --from is inclusive, --to exclusive."
    )

    @Argument(help: "The schedule file (YAML).") var file: String
    @Option(help: "Only jobs at or after this time.") var from: String?
    @Option(help: "Only jobs before this time.") var to: String?
    @Flag(help: "Print the jobs as JSON, one entry per target.") var json = false

    func validate() throws {
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, TimeArgument.parse(value, zone: .gmt) == nil {
                throw ValidationError("\(name) '\(value)' is not a time; write YYYY-MM-DD or YYYY-MM-DDTHH:MM")
            }
        }
    }

    func run() throws {
        let schedule = try loadSchedule(file, checkEnvironment: false)
        let fromDate = try from.map { try TimeArgument.instant($0, zone: schedule.timeZone, option: "--from") }
        let toDate = try to.map { try TimeArgument.instant($0, zone: schedule.timeZone, option: "--to") }
        let report = PlanReport(schedule: schedule, jobs: Planner.plan(schedule, from: fromDate, to: toDate))
        Terminal.out(json ? report.json() : report.table())
    }
}

struct IcsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ics",
        abstract: "Write the programme (online and on-site items) as an iCalendar (RFC 5545) file to stdout."
    )

    @Argument(help: "The schedule file (YAML).") var file: String

    func run() throws {
        let schedule = try loadSchedule(file, checkEnvironment: false)
        FileHandle.standardOutput.write(Data(ICalendar.render(schedule, stamp: Date()).utf8))
    }
}

/// Times given on the command line, read in the schedule's own timezone unless they carry an offset.
enum TimeArgument {
    static func parse(_ text: String, zone: TimeZone) -> Result<Date, WallClockProblem>? {
        let datePart = String(text.prefix(10))
        guard let date = LocalDate(datePart) else { return nil }
        var rest = text.dropFirst(10)
        if rest.isEmpty { return WallClock.instant(date: date, time: LocalTimeOfDay(secondsOfDay: 0), zone: zone) }
        guard rest.first == "T" || rest.first == " " else { return nil }
        rest = rest.dropFirst()
        guard let time = LocalTimeOfDay(String(rest)) else { return nil }
        if let offset = time.explicitOffset {
            let wall = Double(date.dayNumber * 86_400 + time.secondsOfDay)
            return .success(Date(timeIntervalSince1970: wall - Double(offset)))
        }
        return WallClock.instant(date: date, time: time, zone: zone)
    }

    static func instant(_ text: String, zone: TimeZone, option: String) throws -> Date {
        switch parse(text, zone: zone) {
        case .success(let date)?: return date
        case .failure(.gap)?:
            throw ValidationError("\(option) '\(text)' does not exist in \(zone.identifier) (the clocks jump over it)")
        case .failure?:
            throw ValidationError("\(option) '\(text)' is ambiguous in \(zone.identifier); add an offset such as +01:00")
        case nil:
            throw ValidationError("\(option) '\(text)' is not a time")
        }
    }
}
