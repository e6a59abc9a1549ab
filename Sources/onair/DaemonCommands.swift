import ArgumentParser
import Foundation
import Logging
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirDaemon

/// Where state and the control socket live, so that several daemons can run side by side.
/// A relative path given on the command line is taken from the working directory and made
/// absolute at once, so the daemon's lock, socket and log lines all name one place.
struct Locations: ParsableArguments {
    @Option(help: "State directory (default: $STATE_DIRECTORY or /var/lib/onair).", transform: Locations.absolute)
    var state: String = ProcessInfo.processInfo.environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) } ?? "/var/lib/onair"

    @Option(help: "Control socket (default: $RUNTIME_DIRECTORY/control.sock or /run/onair/control.sock).", transform: Locations.absolute)
    var socket: String = (ProcessInfo.processInfo.environment["RUNTIME_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) } ?? "/run/onair") + "/control.sock"

    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true))
            .standardizedFileURL.path
    }
}

enum Logs {
    static let bootstrap: Void = {
        LoggingSystem.bootstrap { ConsoleLogHandler(label: $0) }
    }()

    static func logger(_ label: String = "onair") -> Logger {
        _ = bootstrap
        return Logger(label: label)
    }
}

/// Starts the daemon, or prints why it cannot and exits with its status (78 for a bad schedule).
func startDaemon(config: String, state: String, socket: String? = nil, warmUp: Double = 2, logger: Logger) async throws -> Daemon {
    do {
        return try await Daemon.start(options: .init(configPath: config, stateDirectory: state, socketPath: socket, warmUpLead: warmUp),
                                      logger: logger)
    } catch let error as DaemonStartError {
        Terminal.error(error.description)
        throw ExitCode(error.exitStatus)
    }
}

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the scheduler in the foreground (systemd runs this).",
        discussion: "Exit status 0 after SIGTERM/SIGINT, 78 when the schedule is invalid, 73/74 when the state directory, the control socket or the journal cannot be used, 75 when another daemon uses the state directory or the control socket. SIGHUP reloads the schedule."
    )

    @Option(help: "The schedule file (YAML).") var config: String
    @OptionGroup var locations: Locations
    @Option(help: ArgumentHelp("Seconds before a call that its platform's connection is opened (0: never).",
                               discussion: "A HEAD request for / on the platform's host, so DNS, TCP and TLS are done before the instant."))
    var warmUp: Double = 2

    @Option(help: "Seconds after which an idle control connection is closed.")
    var controlIdleTimeout: Double = 10

    func validate() throws {
        guard warmUp >= 0 && warmUp <= 60 else { throw ValidationError("--warm-up must be between 0 and 60 seconds") }
        guard controlIdleTimeout >= 0.1 && controlIdleTimeout <= 3600 else {
            throw ValidationError("--control-idle-timeout must be between 0.1 and 3600 seconds")
        }
    }

    func run() async throws {
        let logger = Logs.logger()
        let daemon = try await startDaemon(config: config, state: locations.state, socket: locations.socket, warmUp: warmUp, logger: logger)
        let (config, state) = (self.config, locations.state)
        // Ready (the log line, and READY=1 to systemd) once the control socket takes connections:
        // `systemctl start onair && onair status` must find it listening.
        let control = ControlServer(daemon: daemon, socketPath: locations.socket, idleTimeout: controlIdleTimeout) {
            logger.info("ready", metadata: ["schedule": "\(config)", "state": "\(state)", "version": "\(OnAirVersion.current)"])
            await daemon.announceReady()
        }
        do {
            try await daemon.run(extraServices: [control])
        } catch let error as DaemonStartError {
            Terminal.error(error.description)
            throw ExitCode(error.exitStatus)
        }
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "See OnAir work: the daemon on a generated week compressed into two minutes, with a local receiver that prints what a platform gets."
    )

    @Option(help: "Seconds the demo week lasts.") var span: Double = 120
    @Option(help: "Keep the demo's files here instead of a temporary directory.") var directory: String?

    func validate() throws {
        guard span >= 12 && span <= 3600 else { throw ValidationError("--span must be between 12 and 3600 seconds") }
    }

    func run() async throws {
        let dir = directory ?? (NSTemporaryDirectory() + "onair-demo-\(getpid())")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let secret = "whsec_" + Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        setenv("ONAIR_DEMO_SECRET", secret, 1)
        let receiver = try await DemoReceiver(secret: secret) { line in
            FileHandle.standardOutput.write(Data(("platform received  " + line + "\n").utf8))
        }
        let configPath = dir + "/schedule.yaml"
        try DemoSchedule.yaml(port: receiver.port, now: Date(), span: span).write(toFile: configPath, atomically: true, encoding: .utf8)
        Terminal.out("OnAir demo: schedule \(configPath), state \(dir)/state, receiver http://127.0.0.1:\(receiver.port)")
        let schedule = try loadSchedule(configPath, checkEnvironment: true)
        Terminal.out(PlanReport(schedule: schedule, jobs: Planner.plan(schedule)).table())

        let logger = Logs.logger()
        let daemon = try await startDaemon(config: configPath, state: dir + "/state", logger: logger)
        // Stop once every job is done.
        let total = Planner.plan(schedule).count
        Task {
            while true {
                try? await Task.sleep(nanoseconds: 250_000_000)
                let snapshot = await daemon.scheduler.snapshot()
                if snapshot.records.values.filter({ $0.state.isFinal }).count >= total { break }
            }
            try? await Task.sleep(nanoseconds: 300_000_000)
            kill(getpid(), SIGTERM)
        }
        try await daemon.run()
        let (calls, signed, verified) = await receiver.tally()
        await receiver.stop()
        let records = await daemon.scheduler.snapshot().records.values
        let delivered = records.filter { $0.state == .delivered }.count
        Terminal.out("demo done: \(delivered) of \(total) jobs delivered; the receiver got \(calls) calls, \(signed) signed webhooks of which \(verified) verified")
        if delivered != total || verified != signed || calls != total { throw ExitCode(ExitStatus.failed) }
    }
}
