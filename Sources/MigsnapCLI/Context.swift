import Foundation
import MigsnapCore
import MigsnapPostgres
import MigsnapS3
import MigsnapSQLite

/// The resolved configuration of one run, and the engines and store it names.
struct Context {
    let config: Configuration
    let store: SnapshotStore
    /// The URL given with --url, handed to Alembic through DATABASE_URL.
    let urlOverride: String?

    /// `groups`: the option groups the command has; what it has not, comes from the environment
    /// and the config file.
    init(_ groups: any ConfigurationOptions...) throws {
        var inputs = ConfigurationInputs()
        for group in groups { group.apply(to: &inputs) }
        config = try Configuration.resolve(inputs)
        store = try config.snapshotStore(on: try Self.backend(config.storeLocation, config))
        urlOverride = inputs.url
    }

    /// Another store, as `copy --to` names it: a directory (relative to the working directory) or s3://.
    func store(at location: String) throws -> SnapshotStore {
        let resolved = location.hasPrefix("s3://") ? location
            : URL(fileURLWithPath: location, relativeTo: URL(fileURLWithPath: config.workingDirectory, isDirectory: true)).standardizedFileURL.path
        return try config.snapshotStore(on: try Self.backend(resolved, config))
    }

    private static func backend(_ location: String, _ config: Configuration) throws -> StoreBackend {
        try StoreBackends.open(location, environment: config.environment)
    }

    /// The project's revision graph, when it has migration files configured.
    func graphIfAvailable() -> RevisionGraph? {
        try? config.revisionGraph()
    }

    /// The live database's engine.
    func liveEngine() throws -> DatabaseEngine {
        Self.engine(for: try config.databaseURL())
    }

    static func engine(for url: DatabaseURL) -> DatabaseEngine {
        switch url {
        case .sqlite(let path): return SQLiteEngine(path: path, threads: ThreadsOptions.configured)
        case .postgresql(let target): return PostgresEngine(target: target)
        }
    }

    func progress() -> TerminalProgress { TerminalProgress() }

    /// `keep_hot` of the retention policy, for a restore that may rebuild a refused hot copy; 0
    /// (no rebuild) where the policy file cannot be read: a restore never fails for it.
    var keepHot: Int {
        (try? config.retentionPolicy())?.keepHot ?? 0
    }
}

extension Context {
    /// Besides the store lock, the database's own (PostgreSQL's advisory lock), so that two runs
    /// with different stores (two machines deploying at once) cannot both change one database.
    func withDatabaseLock<T>(_ engine: DatabaseEngine, _ body: () throws -> T) throws -> T {
        try engine.withDatabaseLock(wait: 10, body)
    }

    /// Removes what killed restores left beside the database. Called with the store lock held.
    func cleanDatabaseDebris(_ engine: DatabaseEngine) {
        engine.cleanRestoreDebris()
    }
}

extension Context {
    /// Warns about each damaged manifest on stderr and returns the readable ones.
    func reportingDamage(_ scan: StoreScan) -> [Manifest] {
        for damaged in scan.damaged {
            Terminal.warn("\(damaged.problem); it is left out. `migsnap verify` fails until it is moved away.")
        }
        return scan.manifests
    }
}
