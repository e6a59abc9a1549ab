import Foundation
import Synchronization
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
#if canImport(Glibc)
import Glibc
#endif

/// sd_notify without libsystemd: one datagram per message to `$NOTIFY_SOCKET` (a path, or `@`
/// for the abstract namespace), addressed with the exact address length. Without the variable
/// nothing is sent, so the daemon behaves the same outside systemd.
public final class SdNotifier: Sendable {
    private let socketPath: String?
    /// Half of `$WATCHDOG_USEC` (when the watchdog is meant for this process), in seconds.
    public let watchdogInterval: TimeInterval?
    /// When the watchdog was last pinged, on the monotonic clock: a wall clock stepped back (NTP, an
    /// operator) must not stop the pings and have systemd restart the daemon mid-show.
    private let state = Mutex((lastPing: ContinuousClock.Instant?.none, lastStatus: ""))

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: pid_t = getpid()) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        if let usec = environment["WATCHDOG_USEC"].flatMap(Double.init), usec > 0, path != nil,
           environment["WATCHDOG_PID"].map({ pid_t($0) == pid }) ?? true {
            watchdogInterval = usec / 1_000_000 / 2
        } else {
            watchdogInterval = nil
        }
    }

    public var isActive: Bool { socketPath != nil }

    /// Sends one message such as `READY=1` or `STATUS=...`; returns whether it went out.
    @discardableResult
    public func send(_ message: String) -> Bool {
        guard let path = socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }  // abstract namespace: a leading NUL, no terminator
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let sent = message.withCString { text in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent >= 0
    }

    /// READY=1 with a status line.
    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }

    /// RELOADING=1 with MONOTONIC_USEC, as systemd 253+ expects and 252 accepts.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        send("RELOADING=1\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)")
    }

    public func stopping() { send("STOPPING=1") }

    /// Updates STATUS= when it changed.
    public func status(_ text: String) {
        let changed = state.withLock { s -> Bool in
            defer { s.lastStatus = text }
            return s.lastStatus != text
        }
        if changed { send("STATUS=\(text)") }
    }

    /// Called from the scheduling loop on every turn: pings the watchdog when half its interval has
    /// passed, so a loop that stops turning stops the pings and systemd restarts the service.
    /// Returns whether it pinged.
    @discardableResult
    public func loopTurned(now: ContinuousClock.Instant = .now) -> Bool {
        guard let interval = watchdogInterval else { return false }
        let due = state.withLock { s -> Bool in
            if let last = s.lastPing, now - last < .milliseconds(Int64(interval * 900)) { return false }
            s.lastPing = now
            return true
        }
        if due { send("WATCHDOG=1") }
        return due
    }
}
