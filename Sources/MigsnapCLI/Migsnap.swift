import ArgumentParser
import Foundation
import MigsnapCore

public struct Migsnap: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "migsnap",
        abstract: "Snapshots before every Alembic migration; atomic, data-preserving rollback.",
        discussion: """
        Run it where `alembic` works: it reads alembic.ini (or -c FILE), the database URL \
        (--url > DATABASE_URL > sqlalchemy.url) and keeps snapshots in .migsnap/ beside the config \
        file, or in a bucket (--store s3://BUCKET/PREFIX, credentials the AWS way), encrypted to \
        age recipients when MIGSNAP_AGE_RECIPIENTS is set. Exit status: 0 success, 1 failed, 2 bad input, 3 verification failed, 4 refused for \
        safety, 64 malformed command line.
        """,
        version: "0.1.0",
        subcommands: [
            UpgradeCommand.self, RollbackCommand.self, SnapshotCommand.self, ListCommand.self, ShowCommand.self, VerifyCommand.self,
            RestoreCommand.self, PruneCommand.self, PinCommand.self, UnpinCommand.self, StatusCommand.self, UnguardCommand.self, CopyCommand.self, HookCommand.self, DiffCommand.self,
        ]
    )

    public init() {}

    /// argument-parser's `help` prints the root help and exits 0 for a topic it does not know;
    /// a script that typed `migsnap help bogus` deserves to hear that it is not a command. A
    /// mistyped command (`rolback`) gets the one it most likely meant, as a mistyped option does.
    public static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let commands = configuration.subcommands.map { command in command._commandName }
        let typed = arguments.first == "help" ? arguments.dropFirst().first(where: { !$0.hasPrefix("-") }) : arguments.first
        if let typed, !typed.hasPrefix("-"), typed != "help", !commands.contains(typed) {
            let suggestion = UserText.closest(to: typed.lowercased(), among: commands, within: 2).map { "Did you mean `\($0)`? " } ?? ""
            Terminal.error("There is no command \(UserText.quoted(typed)).",
                           hint: "\(suggestion)`migsnap help` lists the commands: \(commands.joined(separator: ", ")).")
            Self.exit(withError: ExitCode.validationFailure)
        }
        main(nil)
    }
}
