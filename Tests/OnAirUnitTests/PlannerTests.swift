import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

@Suite("Planning: daily items, skip_daily, job order and ids")
struct PlannerTests {
    @Test func dailyItemsAreRepeatedExceptWhereSkipped() throws {
        let schedule = try load(baseSchedule)
        let ids = schedule.items.map(\.id)
        #expect(ids.contains("late-show-2021-11-08"))
        #expect(!ids.contains("late-show-2021-11-09"))
        let show = try #require(schedule.item(id: "late-show-2021-11-08"))
        #expect(show.dailyID == "late-show")
        #expect(show.start == utc("2021-11-08T19:30:00Z"))
        #expect(show.end == utc("2021-11-08T20:30:00Z"))
    }

    @Test func jobsInFiringOrderWithStableIDs() throws {
        let jobs = Planner.plan(try load(baseSchedule))
        #expect(jobs.map(\.id.description) == [
            "test-week/opening/prepare/site",
            "test-week/opening/start/mixer",
            "test-week/opening/start/site",
            "test-week/opening/stop/mixer",
            "test-week/opening/stop/site",
            "test-week/late-show-2021-11-08/prepare/site",
            "test-week/late-show-2021-11-08/start/site",
            "test-week/late-show-2021-11-08/stop/site",
        ])
        // The mixer has no prepare request, so it receives no prepare; the on-site workshop yields nothing.
        let prepare = jobs[0]
        #expect(prepare.instant == utc("2021-11-08T08:50:00Z"))
        #expect(prepare.deadline == utc("2021-11-08T09:00:00Z"))
        #expect(jobs[1].deadline == utc("2021-11-08T10:30:00Z"))
        #expect(jobs[3].deadline == utc("2021-11-08T11:30:00Z"))
        #expect(JobID("test-week/opening/start/site") == jobs[2].id)
    }

    @Test func idsDoNotDependOnTimes() throws {
        let moved = replacing(line: 27, with: "        start: \"10:15\"")
        #expect(Planner.plan(try load(moved)).map(\.id) == Planner.plan(try load(baseSchedule)).map(\.id))
    }

    @Test func stopGoesBeforeStartAtTheSameInstant() throws {
        // The workshop goes online on site right after the opening ends.
        let yaml = baseSchedule.replacingOccurrences(of: "    start: \"20:30\"", with: "    start: \"11:30\"")
        let jobs = Planner.plan(try load(yaml)).filter { $0.instant == utc("2021-11-08T10:30:00Z") }
        #expect(jobs.map(\.action) == [.stop, .stop, .start])
    }

    @Test func noLeadTimeMeansNoPrepare() throws {
        let jobs = Planner.plan(try load(replacing(line: 4, with: "lead_time: 0")))
        #expect(!jobs.contains { $0.action == .prepare })
    }

    @Test func fromAndToNarrowThePlan() throws {
        let schedule = try load(baseSchedule)
        let jobs = Planner.plan(schedule, from: utc("2021-11-08T09:00:00Z"), to: utc("2021-11-08T19:30:00Z"))
        #expect(jobs.count == 5)
        #expect(jobs.first?.action == .start)
        #expect(jobs.last?.action == .prepare)
    }

    @Test func rvEditionsValidateAndHaveFiveLateNightShows() throws {
        let env = ["ONAIR_SITE_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        let loader = ScheduleLoader(options: .init(secrets: SecretResolver(environment: env)))
        for (file, firstDay) in [("rv-2021.yaml", "2021-11-08"), ("rv-2022.yaml", "2022-11-07")] {
            let schedule = try loader.load(path: repositoryRoot.appendingPathComponent("config/\(file)").path)
            #expect(schedule.days.count == 5)
            #expect(schedule.days.first?.date == LocalDate(firstDay))
            let starts = Planner.plan(schedule).filter { $0.action == .start && $0.itemID.hasPrefix("late-night-show-") }
            #expect(starts.count == 5)
            for job in starts {
                #expect(WallClock.localText(job.instant, in: schedule.timeZone).hasSuffix(" 20:30:00"))
                #expect(WallClock.utcText(job.instant).hasSuffix("T19:30:00Z"))
            }
        }
    }

    @Test func planTableGroupsTargets() throws {
        let schedule = try load(baseSchedule)
        let table = PlanReport(schedule: schedule, jobs: Planner.plan(schedule)).table()
        #expect(table.contains("2021-11-08 10:00:00       2021-11-08T09:00:00Z  opening               start    mixer,site"), "\(table)")
        let json = PlanReport(schedule: schedule, jobs: Planner.plan(schedule)).json()
        let decoded = try JSONDecoder().decode(PlanReport.Document.self, from: Data(json.utf8))
        #expect(decoded.jobs.count == 8)
        #expect(decoded.jobs[1].local == "2021-11-08 10:00:00+01:00")
    }
}
