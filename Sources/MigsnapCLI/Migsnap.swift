import ArgumentParser

public struct Migsnap: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "migsnap",
        abstract: "Snapshots before every Alembic migration; atomic, data-preserving rollback.",
        version: "0.1.0",
        subcommands: []
    )

    public init() {}
}
