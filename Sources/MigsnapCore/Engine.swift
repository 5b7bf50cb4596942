import Foundation

/// Where Alembic keeps the current revision(s).
public struct VersionTable: Sendable, Equatable {
    public var name: String
    public var schema: String?

    public init(name: String = "alembic_version", schema: String? = nil) {
        self.name = name
        self.schema = schema
    }

    /// Whether a table name as the engines report it (`rowCounts`, `shape`) is this table:
    /// plain for SQLite, schema-qualified for PostgreSQL (`public` when no schema is set).
    public func names(_ table: String) -> Bool {
        table == name || table == "\(schema ?? "public").\(name)"
    }
}

/// Receives progress of long work. Implementations decide whether and how to show it.
public protocol ProgressReporter: AnyObject {
    /// `total` is nil when unknown; `done` and `total` count `unit`s.
    func update(phase: String, done: Int64, total: Int64?, unit: ProgressUnit)
    /// Work that runs beside the current phase and keeps pace with it (a payload sent to a bucket
    /// while the engine writes it, or arriving while the engine reads it), shown with the phase.
    /// May be called from another thread than `update(phase:…)`. The next `finish` ends it.
    func update(alongside label: String, done: Int64, total: Int64?)
    func finish()
}

/// What a phase counts: most count bytes, SQLite's page-by-page backup counts pages.
public enum ProgressUnit: Sendable {
    case bytes
    case pages
}

extension ProgressReporter {
    public func update(phase: String, done: Int64, total: Int64?) {
        update(phase: phase, done: done, total: total, unit: .bytes)
    }

    public func update(alongside label: String, done: Int64, total: Int64?) {}
}

/// Reports nothing; for tests, scripts and non-TTY runs.
public final class SilentProgress: ProgressReporter {
    public init() {}
    public func update(phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {}
    public func finish() {}
}

/// What an engine captured into a payload file.
public struct SnapshotCapture: Sendable, Equatable {
    /// Revisions read in the same consistent view as the data, sorted.
    public var revisions: [String]
    /// Size of the uncompressed image.
    public var rawBytes: Int64
    /// The tables, columns and row counts of the image, read in the same view; nil when the
    /// engine could not read them (the snapshot is good without).
    public var shape: DatabaseShape?

    public init(revisions: [String], rawBytes: Int64, shape: DatabaseShape? = nil) {
        self.revisions = revisions
        self.rawBytes = rawBytes
        self.shape = shape
    }
}

/// What a database holds, as far as a guard needs to know: its tables, their columns and their
/// rows. Recorded in each manifest, so that what a migration removed can be told from the
/// snapshots around its step without reading a payload.
public struct DatabaseShape: Codable, Sendable, Equatable {
    public struct Table: Codable, Sendable, Equatable {
        public var columns: [String]
        public var rows: Int64

        public init(columns: [String], rows: Int64) {
            self.columns = columns
            self.rows = rows
        }
    }

    /// By table name (schema-qualified where the engine has schemas, as in `rowCounts`).
    public var tables: [String: Table]

    public init(tables: [String: Table]) {
        self.tables = tables
    }

    /// What this state had that `after` lacks, in words: dropped tables, dropped columns, fewer
    /// rows. Tables for which `skip` is true (the version table) are left out.
    public func removals(comparedWith after: DatabaseShape, skip: (String) -> Bool = { _ in false }) -> [String] {
        var removed: [String] = []
        for (name, table) in tables.sorted(by: { $0.key < $1.key }) where !skip(name) {
            guard let later = after.tables[name] else {
                removed.append("dropped table \(name)" + (table.rows > 0 ? " (\(Self.rows(table.rows)))" : ""))
                continue
            }
            let kept = Set(later.columns)
            removed += table.columns.filter { !kept.contains($0) }.map { "dropped column \(name).\($0)" }
            if table.rows > later.rows {
                removed.append("\(Self.rows(table.rows - later.rows)) fewer in \(name)")
            }
        }
        return removed
    }

    static func rows(_ n: Int64) -> String { n == 1 ? "1 row" : "\(n) rows" }
}

/// What a payload holds, found by reading it fully (decompression and a content check).
public struct PayloadContent: Sendable, Equatable {
    public var revisions: [String]
    /// Per-table row counts, when the engine can tell them without a server (SQLite); else nil.
    public var rowCounts: [String: Int64]?

    public init(revisions: [String], rowCounts: [String: Int64]?) {
        self.revisions = revisions
        self.rowCounts = rowCounts
    }
}

/// One database, as migsnap needs it. The core defines it; each engine module implements it.
/// Every method throws `MigsnapError` only.
public protocol DatabaseEngine: AnyObject {
    var kind: EngineKind { get }
    /// For manifests, logs and errors: never a password.
    var redactedLocation: String { get }

    /// Whether the database exists (a SQLite file that is not there yet is a first deploy).
    func databaseExists() throws -> Bool
    /// The rows of the version table, sorted; empty when the table is missing or empty (base).
    func currentRevisions(versionTable: VersionTable) throws -> [String]
    /// Rows per table (schema-qualified names where the engine has schemas).
    func rowCounts() throws -> [String: Int64]
    /// Rows per table for a plan, which counts for information only: tables that cannot be
    /// counted (the role may not read them) are left out of `counts` and listed in `unknown` with why.
    func rowCountsForPlan() throws -> (counts: [String: Int64], unknown: [String: String])
    /// The live database's tables, columns and row counts, read in one consistent view; the same
    /// as `snapshot` records in `SnapshotCapture.shape`.
    func shape() throws -> DatabaseShape

    /// Writes a consistent image of the live database to `payload` (a new file the store owns,
    /// created 0600) and returns the revisions read in the same view as the data.
    func snapshot(into payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> SnapshotCapture

    /// Reads a payload fully and checks its content (SQLite: decompression and integrity_check;
    /// PostgreSQL: pg_restore can read it). Throws `.verificationFailed` when it cannot.
    /// Row counts come back where the engine can count without touching the live database.
    func inspect(payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> PayloadContent

    /// Decompresses and verifies the payload into a staged copy beside the live database
    /// (SQLite: a staging file in the same directory; PostgreSQL: a scratch database), without
    /// touching the live database. Content problems are `.verificationFailed`.
    func stageRestore(payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore

    /// Where this engine keeps hot copies (see HotCopies.swift). Engines without a hot tier keep
    /// the defaults below.
    var hotTier: HotTier { get }

    /// `snapshot(into:…)` that also leaves the uncompressed image of the same view at `hotImage`
    /// (a new file in the same directory as `payload`, created 0600), ready to be read without
    /// decompression: opened read-only, it must be usable as it is.
    func snapshot(into payload: URL, hotImage: URL?, versionTable: VersionTable, progress: ProgressReporter) throws -> SnapshotCapture

    /// Stages a restore from a hot image whose checksum the store has checked. The image is only
    /// read, never changed or moved (it is the store's). Throws when it cannot be used here; the
    /// store then restores from the compressed payload.
    func stageRestore(hotImage: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore

    /// `.server`: clones the live database on the server as the hot copy of snapshot `id` and takes
    /// the snapshot from the clone, so that both hold one state. Where the clone cannot be made
    /// (other sessions connected, no CREATEDB), `notice` says why and the snapshot is taken as
    /// usual, without a hot copy (nil). Never fails for want of a hot copy.
    func snapshot(into payload: URL, serverHotCopyOf id: String, versionTable: VersionTable, progress: ProgressReporter,
                  notice: (String) -> Void) throws -> (SnapshotCapture, HotCopy?)

    /// `.server`: stages the hot copy of snapshot `id` for a swap. Throws `.verificationFailed`
    /// when it is missing or not the copy `record` describes (then it is not used); the staged
    /// copy's row counts are `rows` (the manifest's, the same state by construction).
    func stageRestore(serverHotCopyOf id: String, record: HotCopy, rows: [String: Int64]?, versionTable: VersionTable,
                      progress: ProgressReporter) throws -> StagedRestore

    /// `.server`: checks, reading only, that the hot copy of snapshot `id` is the clone `record`
    /// describes and was not opened since; throws `.verificationFailed` saying why it is not.
    func checkServerHotCopy(of id: String, record: HotCopy) throws

    /// `.server`: drops the hot copy of snapshot `id`, if it is there.
    func dropServerHotCopy(of id: String) throws

    /// `.server`: drops this database's hot copies other than those of `ids` (debris of killed runs).
    func dropServerHotCopies(except ids: Set<String>) throws

    /// As `stageRestore(payload:)`, from a payload that may still be arriving (a download): the
    /// engine reads only bytes that `payload.file.wait` let through, and calls `payload.verify()`
    /// before it relies on what it staged. The default waits for all of it, then stages.
    func stageRestore(arriving payload: ArrivingPayload, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore

    /// Runs `body`, which stages a restore whose copy will then be compared with the live
    /// database (a plan): an engine may start reading the live database meanwhile.
    func stagingForPlan<T>(_ body: () throws -> T) throws -> T

    /// Runs `body` holding the database's own lock where the engine has one (PostgreSQL's session
    /// advisory lock, so that two runs with different stores cannot change one database at once);
    /// waits up to `wait` seconds, then refuses naming the holder.
    func withDatabaseLock<T>(wait: TimeInterval, _ body: () throws -> T) throws -> T

    /// Removes what killed restores left beside the database (SQLite staging files). Called with
    /// the store lock held, so no restore of this store is using them.
    func cleanRestoreDebris()

    /// Compares the snapshot in payload `a` with the one in payload `b`, or with the live database
    /// when `b` is nil, per table by primary key (see `DatabaseDiff`). Payloads are checked as by
    /// `inspect` and unpacked into `scratch`; the live database is only read. Memory does not
    /// grow with the tables. An engine that cannot compare yet throws `.invalidInput`.
    func diff(_ a: URL, with b: URL?, scratch: ScratchSpace, scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff
}

/// Where an engine keeps the hot copy of a snapshot (see HotCopies.swift).
public enum HotTier: Sendable {
    /// None.
    case none
    /// An uncompressed image, kept as a store object beside the payload (SQLite).
    case storeFile
    /// A clone of the database on its server (PostgreSQL's `CREATE DATABASE … TEMPLATE`).
    case server
}

/// A verified copy of a snapshot, ready to replace the live database. Dropped when released
/// without `commit`, so a plan that is declined or fails leaves nothing behind.
public protocol StagedRestore: AnyObject {
    /// What the staged copy holds: its revisions, and row counts where the engine can count them.
    var content: PayloadContent { get }
    /// Compares the staged copy (side A) with the live database (side B) as `diff` does: per
    /// table by primary key, reading the live database only, in memory that does not grow with it.
    func compareWithLive(scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff
    /// Replaces the live database with the staged copy, atomically: afterwards the database is
    /// either entirely as before or entirely the copy, also if the process is killed mid-way.
    func commit(progress: ProgressReporter) throws
    /// After `commit`: moves the verified image that went into the database to `path` (a new file
    /// in the store's scratch space), in the form a hot image is kept in, so that it can become
    /// the snapshot's hot copy again. False where there is none left to keep: the engine keeps no
    /// images, or the image itself became the database (a missing SQLite file recreated).
    func keepImage(at path: String) throws -> Bool
}

extension StagedRestore {
    public func keepImage(at path: String) throws -> Bool { false }
}

extension DatabaseEngine {
    public func stagingForPlan<T>(_ body: () throws -> T) throws -> T {
        try body()
    }

    public func stageRestore(arriving payload: ArrivingPayload, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore {
        try payload.verify()
        return try stageRestore(payload: payload.url, versionTable: versionTable, progress: progress)
    }

    public func rowCountsForPlan() throws -> (counts: [String: Int64], unknown: [String: String]) {
        (try rowCounts(), [:])
    }

    public var hotTier: HotTier { .none }

    public func snapshot(into payload: URL, hotImage: URL?, versionTable: VersionTable, progress: ProgressReporter) throws -> SnapshotCapture {
        try snapshot(into: payload, versionTable: versionTable, progress: progress)
    }

    public func stageRestore(hotImage: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore {
        throw MigsnapError.failed("\(kind.rawValue) has no hot images")
    }

    public func snapshot(into payload: URL, serverHotCopyOf id: String, versionTable: VersionTable, progress: ProgressReporter,
                         notice: (String) -> Void) throws -> (SnapshotCapture, HotCopy?) {
        (try snapshot(into: payload, versionTable: versionTable, progress: progress), nil)
    }

    public func stageRestore(serverHotCopyOf id: String, record: HotCopy, rows: [String: Int64]?, versionTable: VersionTable,
                             progress: ProgressReporter) throws -> StagedRestore {
        throw MigsnapError.failed("\(kind.rawValue) has no hot copies on a server")
    }

    public func checkServerHotCopy(of id: String, record: HotCopy) throws {
        throw MigsnapError.failed("\(kind.rawValue) has no hot copies on a server")
    }

    public func dropServerHotCopy(of id: String) throws {}

    public func dropServerHotCopies(except ids: Set<String>) throws {}

    /// Stages, checks that the copy holds `expectedRevisions`, swaps it in and checks the result.
    public func restore(payload: URL, expectedRevisions: [String], versionTable: VersionTable, progress: ProgressReporter) throws {
        let staged = try stageRestore(payload: payload, versionTable: versionTable, progress: progress)
        try restore(staged, from: payload.lastPathComponent, expectedRevisions: expectedRevisions, versionTable: versionTable, progress: progress)
    }

    /// Checks that a staged copy holds `expectedRevisions`, swaps it in and checks the result.
    public func restore(_ staged: StagedRestore, from source: String, expectedRevisions: [String], versionTable: VersionTable,
                        progress: ProgressReporter) throws {
        let expected = expectedRevisions.sorted()
        guard staged.content.revisions == expected else {
            throw MigsnapError.verificationFailed(
                "\(source) holds \(Revisions.named(staged.content.revisions)), expected \(Revisions.describe(expected)); the database was not changed.")
        }
        try staged.commit(progress: progress)
        let after = try currentRevisions(versionTable: versionTable)
        guard after == expected else {
            throw MigsnapError.failed(
                "After the restore \(redactedLocation) is at \(Revisions.describe(after)), not \(Revisions.describe(expected)).",
                hint: "Check who else writes to the database, then run `migsnap verify` and restore again.")
        }
    }
}
