import ArgumentParser
import Foundation
import OnAirModel
import OnAirScheduleFile
import OnAirDelivery
import OnAirJournal
import OnAirDaemon

/// The `onair` command. Exit statuses follow SPEC section 2: 0 done, 1 refused or failed,
/// 2 usage error (argument-parser's own 64 is mapped to 2).
struct Onair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onair",
        abstract: "Runs the online side of a multi-day hybrid event: timed, signed, journaled webhook calls.",
        version: OnAirVersion.current,
        subcommands: [DaemonCommand.self, ValidateCommand.self, PlanCommand.self, IcsCommand.self, StatusCommand.self,
                      NextCommand.self, HistoryCommand.self, StartCommand.self, StopCommand.self, ExtendCommand.self,
                      DelayCommand.self, SkipCommand.self, HoldCommand.self, ResumeCommand.self, ReloadCommand.self,
                      DemoCommand.self]
    )
}

@main
enum Entry {
    static func main() async {
        do {
            var command = try Onair.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(with: error)
        }
    }

    static func exit(with error: Error) -> Never {
        let code = Onair.exitCode(for: error)
        let message = Onair.fullMessage(for: error)
        if code == .success {
            if !message.isEmpty { print(message) }
            Foundation.exit(0)
        }
        if !message.isEmpty { Terminal.error(message) }
        Foundation.exit(code == .validationFailure ? ExitStatus.usage : code.rawValue)
    }
}

enum Terminal {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") || text.isEmpty ? text : text + "\n").utf8))
    }
}
