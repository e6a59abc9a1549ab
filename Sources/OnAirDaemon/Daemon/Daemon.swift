import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirScheduler
import Logging
import ServiceLifecycle
import UnixSignals

/// Why the daemon could not start. `exitStatus` follows sysexits: 78 for a bad schedule, so
/// systemd's RestartPreventExitStatus= stops it from restarting in a loop.
public struct DaemonStartError: Error, CustomStringConvertible {
    public var description: String
    public var exitStatus: Int32
}

/// Runs a week: loads the schedule, recovers the journal, fires jobs, reloads on SIGHUP and
/// shuts down gracefully on SIGTERM/SIGINT.
public final class Daemon: Sendable {
    public struct Options: Sendable {
        public var configPath: String
        public var stateDirectory: String
        /// The control socket this daemon will serve, checked at start so a second daemon never
        /// takes over a live one's (nil: none, as in tests that drive the scheduler directly).
        public var socketPath: String?
        /// How long SIGTERM waits for calls in flight before journaling them as cut off.
        public var shutdownGrace: TimeInterval
        /// How long before its call a platform's connection is opened (0: not at all).
        public var warmUpLead: TimeInterval

        public init(configPath: String, stateDirectory: String, socketPath: String? = nil, shutdownGrace: TimeInterval = 5,
                    warmUpLead: TimeInterval = 2) {
            self.configPath = configPath
            self.stateDirectory = stateDirectory
            self.socketPath = socketPath
            self.shutdownGrace = shutdownGrace
            self.warmUpLead = warmUpLead
        }
    }

    public let options: Options
    public let scheduler: Scheduler
    /// The journal behind its protocol: nothing above the scheduler needs to know it is SQLite.
    public let journal: any JournalStore
    public let logger: Logger
    public let client: CurlClient?
    private let loader: ScheduleLoader
    public let startedAt: Date
    public let notifier: SdNotifier
    public let time: TimeSource
    /// Held for the life of the daemon: one daemon per state directory, and per control socket.
    private let locks: [DaemonLock]

    /// Loads and validates the schedule, opens the journal and recovers; nothing fires yet.
    public static func start(options: Options, logger: Logger, time: TimeSource = SystemTime(),
                             transport: HTTPTransport? = nil, policy: RetryPolicy = RetryPolicy()) async throws -> Daemon {
        let loader = ScheduleLoader(options: .init(checkEnvironment: true))
        let schedule: Schedule
        do {
            schedule = try loader.load(path: options.configPath)
        } catch {
            throw DaemonStartError(description: error.description, exitStatus: ExitStatus.config)
        }
        // Before anything is written: a second daemon on the same state or socket changes nothing.
        let lock = try DaemonLock.acquire(options.stateDirectory)
        let socketLock = try options.socketPath.map { (socket) throws(DaemonStartError) in try DaemonLock.acquire(socket: socket) }
        if let socket = options.socketPath, case .listening(let pid) = ControlSocketProbe.probe(socket) {
            throw DaemonStartError(description: "control socket \(socket) is in use by another onair daemon"
                                   + (pid.map { " (pid \($0))" } ?? "") + "; this one exits and changes nothing",
                                   exitStatus: ExitStatus.tempFail)
        }
        let journal: SQLiteJournal
        do {
            journal = try SQLiteJournal(directory: options.stateDirectory)
        } catch {
            throw DaemonStartError(description: "cannot open the journal in \(options.stateDirectory): \(error)", exitStatus: ExitStatus.cantCreate)
        }
        let client = transport == nil ? CurlClient() : nil
        let deliverer = Deliverer(transport: transport ?? client!, builder: RequestBuilder(), policy: policy, time: time)
        let scheduler = Scheduler(schedule: schedule, journal: journal, deliverer: deliverer, time: time, logger: logger,
                                  warmUpLead: options.warmUpLead)
        do {
            try await scheduler.recover()
            try await journal.save(settings: [JournalSetting.scheduleFile: options.configPath])
        } catch {
            throw DaemonStartError(description: "cannot read the journal: \(error)", exitStatus: ExitStatus.ioError)
        }
        let notifier = SdNotifier()
        if let interval = notifier.watchdogInterval {
            await scheduler.setTick(every: interval) { status in
                notifier.loopTurned()
                notifier.status(status)
            }
        } else if notifier.isActive {
            await scheduler.setTick(every: 3600) { status in notifier.status(status) }
        }
        return Daemon(options: options, scheduler: scheduler, journal: journal, logger: logger, client: client, loader: loader,
                      startedAt: time.now(), notifier: notifier, time: time, locks: [lock] + (socketLock.map { [$0] } ?? []))
    }

    private init(options: Options, scheduler: Scheduler, journal: any JournalStore, logger: Logger, client: CurlClient?,
                 loader: ScheduleLoader, startedAt: Date, notifier: SdNotifier, time: TimeSource, locks: [DaemonLock]) {
        self.time = time
        self.locks = locks
        self.notifier = notifier
        self.options = options
        self.scheduler = scheduler
        self.journal = journal
        self.logger = logger
        self.client = client
        self.loader = loader
        self.startedAt = startedAt
    }

    /// Re-reads the schedule file: in force when valid, refused whole (the running one stays)
    /// when not. Returns when the outcome is settled.
    @discardableResult
    public func reload() async -> Result<Schedule, ScheduleError> {
        notifier.reloading()
        defer { notifier.send("READY=1") }
        do {
            let schedule = try loader.load(path: options.configPath)
            try await scheduler.reload(schedule, file: options.configPath)
            notifier.status(await scheduler.statusLine())
            return .success(schedule)
        } catch {
            await scheduler.reloadRefused(error)
            notifier.status("reload refused (\(error.diagnostics.count) problems); " + (await scheduler.statusLine()))
            return .failure(error)
        }
    }

    /// Tells systemd the daemon is ready: schedule loaded, journal recovered.
    public func announceReady() async {
        notifier.ready(status: await scheduler.statusLine())
    }

    /// Runs until SIGTERM or SIGINT, reloading on SIGHUP. `extraServices` run alongside
    /// (the control socket).
    public func run(extraServices: [any Service] = []) async throws {
        let services: [any Service] = [SchedulerService(daemon: self), ReloadOnHangup(daemon: self)] + extraServices
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        client?.shutdown()
    }
}

/// The scheduling loop as a service: runs until graceful shutdown, then drains.
struct SchedulerService: Service {
    let daemon: Daemon

    func run() async throws {
        let scheduler = daemon.scheduler
        async let loop: Void = scheduler.run()
        try? await gracefulShutdown()
        daemon.notifier.stopping()
        daemon.logger.info("shutting down: no new jobs; waiting for calls in flight", metadata: ["grace": "\(daemon.options.shutdownGrace)s"])
        await scheduler.shutdown(grace: daemon.options.shutdownGrace)
        await loop
    }
}

/// SIGHUP re-reads the schedule, as `onair reload` does.
struct ReloadOnHangup: Service {
    let daemon: Daemon

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            daemon.logger.info("SIGHUP: reloading the schedule")
            await daemon.reload()
        }
    }
}
