import Foundation
import Testing
@testable import OnAirModel
@testable import OnAirScheduleFile
@testable import OnAirDelivery
@testable import OnAirJournal
@testable import OnAirScheduler

@Suite("Time sources")
struct TimeSourceTests {
    private func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }

    @Test func waitsForADurationHoldNoDescriptor() async throws {
        // Each delivery waiting to retry sleeps for its backoff; with a timerfd each, a thousand of
        // them met a service's limit of 1,024 open files and the waits failed (deliveries cut off).
        let time = SystemTime()
        let before = openDescriptors()
        let sleepers = (0..<500).map { _ in Task { try? await time.sleep(for: 5) } }
        try await Task.sleep(nanoseconds: 300_000_000)
        let during = openDescriptors()
        sleepers.forEach { $0.cancel() }
        for sleeper in sleepers { await sleeper.value }
        #expect(during - before < 100, "\(during - before) descriptors held by 500 waits")
    }

    @Test func aWaitForADurationEndsOnCancellation() async {
        let time = SystemTime()
        let started = Date()
        let sleeper = Task { try await time.sleep(for: 30) }
        sleeper.cancel()
        let result = await sleeper.result
        guard case .failure = result else { Issue.record("a cancelled wait did not throw"); return }
        #expect(Date().timeIntervalSince(started) < 5)
    }
}
