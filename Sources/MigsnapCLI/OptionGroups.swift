import ArgumentParser
import Foundation
import MigsnapCore
import MigsnapSQLite

// Each command includes only the option groups it acts on, so that its --help lists only options
// that change what it does (an option a command ignored used to be accepted and shown anyway).

/// An option group that feeds the configuration; `Context` resolves the groups a command has.
protocol ConfigurationOptions: ParsableArguments {
    func apply(to inputs: inout ConfigurationInputs)
}

/// Where the project and its snapshot store are: every command that reads or writes the store.
struct StoreOptions: ConfigurationOptions {
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp(
        "The Alembic config file (default: $ALEMBIC_CONFIG, else ./alembic.ini).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("The snapshot store: a directory or s3://BUCKET/PREFIX (default: $MIGSNAP_STORE, else store = in [migsnap] of the config file, else .migsnap/ beside it; without a config file, list, verify and prune need one).",
                               valueName: "store"))
    var store: String?

    func apply(to inputs: inout ConfigurationInputs) {
        inputs.configPath = config
        inputs.store = store
    }
}

/// The live database, and where its Alembic revision is kept.
struct DatabaseOptions: ConfigurationOptions {
    @Option(help: ArgumentHelp(
        "The database URL, as SQLAlchemy writes it (default: $DATABASE_URL, else sqlalchemy.url in the config file). A password here is visible to other users in `ps`: prefer $DATABASE_URL, or leave it out of the URL and set PGPASSWORD or use ~/.pgpass (PGPASSFILE).",
        valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("The version table, if env.py configures another than alembic_version.", valueName: "name"))
    var versionTable: String?

    @Option(help: ArgumentHelp("The schema of the version table, if env.py sets version_table_schema.", valueName: "schema"))
    var versionTableSchema: String?

    func apply(to inputs: inout ConfigurationInputs) {
        inputs.url = url
        inputs.versionTable = versionTable
        inputs.versionTableSchema = versionTableSchema
    }
}

/// For commands that run Alembic, or ask it for its revision map where a migration file computes
/// its revision.
struct AlembicOptions: ConfigurationOptions {
    @Option(help: ArgumentHelp("How to run Alembic (default: $MIGSNAP_ALEMBIC, else `alembic` on PATH), e.g. \"poetry run alembic\".",
                               valueName: "cmd"))
    var alembic: String?

    func apply(to inputs: inout ConfigurationInputs) {
        inputs.alembic = alembic
    }
}

/// For commands that prune.
struct RetentionOptions: ConfigurationOptions {
    @Option(help: ArgumentHelp("The retention policy (default: retention.json beside the config file, else the built-in policy).",
                               valueName: "file"))
    var retention: String?

    func apply(to inputs: inout ConfigurationInputs) {
        inputs.retention = retention
    }
}

/// For commands that compress or decompress SQLite snapshots.
struct ThreadsOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Threads that compress and decompress SQLite snapshots (default: $MIGSNAP_THREADS, else all cores).",
        valueName: "n"))
    var threads: Int?

    /// The thread count this run uses: --threads, else $MIGSNAP_THREADS, else all cores. `validate()`
    /// has checked both and put --threads into MIGSNAP_THREADS (which nested runs inherit too).
    static var configured: Int {
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
