import ArgumentParser

public struct Migsnap: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "migsnap",
        abstract: "Snapshots before every Alembic migration; atomic, data-preserving rollback.",
        discussion: """
        Run it where `alembic` works: it reads alembic.ini (or -c FILE), the database URL \
        (--url > DATABASE_URL > sqlalchemy.url) and keeps snapshots in .migsnap/ beside the config \
        file. Exit status: 0 success, 1 failed, 2 bad input, 3 verification failed, 4 refused for \
        safety, 64 malformed command line.
        """,
        version: "0.1.0",
        subcommands: [
            UpgradeCommand.self, RollbackCommand.self, SnapshotCommand.self, ListCommand.self, ShowCommand.self, VerifyCommand.self,
            RestoreCommand.self, PruneCommand.self, PinCommand.self, UnpinCommand.self, StatusCommand.self, UnguardCommand.self, CopyCommand.self, HookCommand.self,
        ]
    )

    public init() {}
}
