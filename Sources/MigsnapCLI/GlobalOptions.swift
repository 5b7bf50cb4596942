import ArgumentParser
import Foundation
import MigsnapCore
import MigsnapSQLite

/// Where the project, the database and the store are: the same options on every subcommand.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp(
        "The Alembic config file (default: $ALEMBIC_CONFIG, else ./alembic.ini).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp(
        "The database URL, as SQLAlchemy writes it (default: $DATABASE_URL, else sqlalchemy.url in the config file). A password here is visible to other users in `ps`: prefer $DATABASE_URL, or leave it out of the URL and set PGPASSWORD or use ~/.pgpass (PGPASSFILE).",
        valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("The snapshot store: a directory or s3://BUCKET/PREFIX (default: $MIGSNAP_STORE, else store = in [migsnap] of the config file, else .migsnap/ beside it; without a config file, list, verify and prune need one).",
                               valueName: "store"))
    var store: String?

    @Option(help: ArgumentHelp("The retention policy (default: retention.json beside the config file, else the built-in policy).",
                               valueName: "file"))
    var retention: String?

    @Option(help: ArgumentHelp("How to run Alembic (default: $MIGSNAP_ALEMBIC, else `alembic` on PATH), e.g. \"poetry run alembic\".",
                               valueName: "cmd"))
    var alembic: String?

    @Option(help: ArgumentHelp("The version table, if env.py configures another than alembic_version.", valueName: "name"))
    var versionTable: String?

    @Option(help: ArgumentHelp("The schema of the version table, if env.py sets version_table_schema.", valueName: "schema"))
    var versionTableSchema: String?

    @Option(help: ArgumentHelp(
        "Threads that compress and decompress SQLite snapshots (default: $MIGSNAP_THREADS, else all cores).",
        valueName: "n"))
    var threads: Int?

    /// The thread count this run uses: --threads, else $MIGSNAP_THREADS, else all cores. `validate()`
    /// has checked both and put --threads into MIGSNAP_THREADS (which nested runs inherit too).
    static var threads: Int {
        (try? SQLiteEngine.configuredThreads().get()) ?? 1
    }

    mutating func validate() throws {
        if let threads {
            guard (1...64).contains(threads) else {
                throw ValidationError("--threads must be from 1 to 64, not \(threads).")
            }
            setenv("MIGSNAP_THREADS", String(threads), 1)
        }
        if case .failure(let error) = SQLiteEngine.configuredThreads() {
            throw ValidationError("\(error.description).")
        }
    }

    func configuration() throws -> Configuration {
        try Configuration.resolve(ConfigurationInputs(
            configPath: config, url: url, store: store, retention: retention, alembic: alembic,
            versionTable: versionTable, versionTableSchema: versionTableSchema))
    }
}

struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON document on stdout instead of text.")
    var json = false
}

/// For commands that replace the database or delete snapshots.
struct ConfirmOptions: ParsableArguments {
    @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation (required when stdin is not a terminal).")
    var yes = false

    @Flag(name: .long, help: "Print the plan and change nothing.")
    var dryRun = false
}
