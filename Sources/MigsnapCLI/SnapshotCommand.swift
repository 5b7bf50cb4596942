import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct SnapshotCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "snapshot",
            abstract: "Take a snapshot of the database now, keyed to its current Alembic revisions.",
            discussion: """
            The snapshot is a consistent online copy (SQLite: the backup API; PostgreSQL: pg_dump \
            in the same MVCC snapshot as the revision read), compressed, checksummed and stored \
            0600 in the store. SQLite snapshots are blocked gzip (1 MiB members, compressed on \
            --threads cores, plain gzip for gunzip). Prints the new snapshot's id.
            """)

        @OptionGroup var location: StoreOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var threads: ThreadsOptions
        @Option(name: .customLong("tag"), help: ArgumentHelp("Tag the snapshot (repeatable); keep_tags in the retention policy keeps tagged snapshots.", valueName: "tag"))
        var tags: [String] = []
        @Flag(help: "Pin the snapshot: prune never removes it.")
        var pin = false
        @Option(help: ArgumentHelp("A note stored in the manifest.", valueName: "text"))
        var note: String?
        @Flag(name: .shortAndLong, help: "Print only the new id on stdout.")
        var quiet = false
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database)
                let engine = try context.liveEngine()
                let lock = try context.store.lock(purpose: "snapshot")
                let manifest = try TakeSnapshot.run(
                    engine: engine, store: context.store, versionTable: context.config.versionTable,
                    request: SnapshotRequest(reason: .manual, tags: tags, pinned: pin, note: note),
                    progress: context.progress())
                withExtendedLifetime(lock) {}
                if output.json {
                    try Terminal.printJSON(manifest)
                } else if quiet {
                    Terminal.out(manifest.id)
                } else {
                    Terminal.out("Snapshot \(manifest.id) of \(manifest.database) at \(Revisions.describe(manifest.revisions)): "
                        + "\(Format.bytes(manifest.rawBytes)) stored as \(Format.bytes(manifest.storedBytes)).")
                }
            }
        }
    }
}
