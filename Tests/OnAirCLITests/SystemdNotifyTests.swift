import Foundation
import Testing
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
import OnAirDaemon
import OnAirTestSupport

/// A datagram socket playing systemd's notify socket: records every message with its arrival.
final class NotifyListener: @unchecked Sendable {
    let address: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [(at: Date, text: String)] = []
    private var open = true

    /// `abstract`: bind in the abstract namespace and hand out `@name`.
    init(abstract: Bool) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        self.fd = fd
        let name = abstract ? "onair-test-\(UUID().uuidString.prefix(8))"
                            : FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8)).sock").path
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if abstract { bytes.insert(0, at: 0) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw CocoaError(.fileWriteUnknown) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.address = abstract ? "@" + String(name) : String(name)
        start()
    }

    private func start() {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while lock.withLock({ open }) {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 {
                    let text = String(decoding: buffer[0..<n], as: UTF8.self)
                    lock.withLock { received.append((Date(), text)) }
                }
            }
        }
    }

    deinit {
        lock.withLock { open = false }
        close(fd)
    }

    var messages: [(at: Date, text: String)] { lock.withLock { received } }
    func texts() -> [String] { messages.map(\.text) }
}

@Suite("sd_notify and the watchdog", .serialized)
struct SystemdNotifyTests {
    func launch(_ rig: ControlRig, notify: String, watchdogUsec: Int?) throws -> Process {
        rig.stop()
        var env = ["NOTIFY_SOCKET": notify]
        if let watchdogUsec { env["WATCHDOG_USEC"] = String(watchdogUsec) }
        let process = try startDaemon(config: rig.config, state: rig.state, socket: rig.socket, environment: env)
        rig.daemon = process
        return process
    }

    @Test(arguments: [false, true])
    func readyStatusReloadWatchdogAndStopping(abstract: Bool) throws {
        let rig = try ControlRig(items: [("a", 600, 60)])
        let listener = try NotifyListener(abstract: abstract)
        let daemon = try launch(rig, notify: listener.address, watchdogUsec: 1_000_000)
        #expect(rig.waitUntil(10) { listener.texts().contains { $0.hasPrefix("READY=1") } })
        let ready = listener.texts().first { $0.hasPrefix("READY=1") } ?? ""
        #expect(ready.contains("\nSTATUS=on air: nothing; next: a start at "), "\(ready)")

        // Pings every half interval (0.5 s): about six in three seconds.
        let before = listener.messages.filter { $0.text == "WATCHDOG=1" }.count
        Thread.sleep(forTimeInterval: 3)
        let pings = listener.messages.filter { $0.text == "WATCHDOG=1" }.count - before
        #expect((4...8).contains(pings), "\(pings) pings in 3 s")

        // Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
        let count = listener.messages.count
        #expect(try rig.onair("reload").status == 0)
        #expect(rig.waitUntil(3) { listener.texts().dropFirst(count).contains("READY=1") })
        let reload = Array(listener.texts().dropFirst(count)).filter { $0 != "WATCHDOG=1" && !$0.hasPrefix("STATUS=") }
        #expect(reload.first?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true, "\(reload)")
        #expect(reload.contains("READY=1"))

        // SIGTERM: STOPPING=1.
        daemon.terminate()
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)
        #expect(listener.texts().contains("STOPPING=1"))
    }

    // That a wedged loop stops the pings is tested without a debug hook in the binary:
    // OnAirUnitTests' "a loop that cannot turn stops ticking" wedges it on a held journal write.

    /// Found reading the notifier: the pings were timed on the wall clock, so a clock stepped back by
    /// more than the watchdog interval stopped them and systemd would restart the daemon mid-show.
    /// They now follow elapsed time only.
    @Test func watchdogPingsFollowElapsedTimeNotTheWallClock() throws {
        let listener = try NotifyListener(abstract: true)
        let notifier = SdNotifier(environment: ["NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "2000000"])
        let t0 = ContinuousClock.now
        #expect(notifier.loopTurned(now: t0), "the first turn pings")
        #expect(!notifier.loopTurned(now: t0 + .milliseconds(500)), "half an interval (1 s) has not passed")
        #expect(notifier.loopTurned(now: t0 + .milliseconds(950)))
        #expect(!notifier.loopTurned(now: t0 + .milliseconds(1200)))
        #expect(notifier.loopTurned(now: t0 + .milliseconds(1900)))
    }

    @Test func nothingIsSentWithoutNotifySocket() {
        let notifier = SdNotifier(environment: [:])
        #expect(!notifier.isActive)
        #expect(notifier.watchdogInterval == nil)
        #expect(!notifier.send("READY=1"))
        let other = SdNotifier(environment: ["NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"], pid: 2)
        #expect(other.watchdogInterval == nil, "a watchdog meant for another pid is ignored")
        let mine = SdNotifier(environment: ["NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "2"], pid: 2)
        #expect(mine.watchdogInterval == 2)
    }
}
