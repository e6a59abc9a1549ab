import Foundation
import OnAirTestSupport
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

/// A one-item schedule whose targets are given; times around `start`.
func testSchedule(targets: [Target], start: Date = Date(timeIntervalSince1970: 1_636_362_000), leadTime: Int = 0,
                  location: String? = nil) -> Schedule {
    let item = Item(id: "zorg-plenary", title: "Plenaire opening", kind: "plenary", location: location,
                    day: LocalDate("2021-11-08")!, start: start, end: start.addingTimeInterval(5400),
                    targets: targets.map(\.name))
    return Schedule(id: "rv-2021", title: "RV", timeZone: TimeZone(identifier: "Europe/Amsterdam")!, leadTime: leadTime,
                    targets: targets, days: [Day(date: LocalDate("2021-11-08")!, title: "Radicale vernieuwing zorg")],
                    items: [item])
}

/// Collects attempt records from a delivery.
actor Records {
    var all: [AttemptRecord] = []
    func add(_ r: AttemptRecord) { all.append(r) }
}

let fastPolicy = RetryPolicy(initialBound: 0.05, maximumBound: 0.2)
