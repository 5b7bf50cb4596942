import Foundation

/// What a restore or rollback would do, printed before anything changes.
/// Its JSON is part of the product contract (DESIGN.md): `current`, `target`, `undone`, `via`,
/// `snapshot`, `discarded_rows`.
public struct RestorePlan: Codable, Sendable, Equatable {
    public enum Via: String, Codable, Sendable { case restore, downgrade }

    public var current: [String]
    public var target: [String]
    /// Migrations being undone, newest first: what `alembic downgrade` would run.
    public var undone: [String]
    public var via: Via
    public var snapshot: String?
    /// Rows that exist now and would not after the restore, per table: the count now minus the
    /// count in the snapshot, where positive (a table absent from the snapshot loses all its rows).
    public var discardedRows: [String: Int64]
    /// Row counts per table now and in the snapshot (nil where unknown), for the human table.
    public var rowsNow: [String: Int64]
    public var rowsInSnapshot: [String: Int64]?
    /// The database the plan changes (redacted).
    public var database: String
    public var safetySnapshot: Bool

    enum CodingKeys: String, CodingKey {
        case current, target, undone, via, snapshot
        case discardedRows = "discarded_rows"
        case rowsNow = "rows_now"
        case rowsInSnapshot = "rows_in_snapshot"
        case database
        case safetySnapshot = "safety_snapshot"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(current, forKey: .current)
        try c.encode(target, forKey: .target)
        try c.encode(undone, forKey: .undone)
        try c.encode(via, forKey: .via)
        try c.encode(snapshot, forKey: .snapshot)
        try c.encode(discardedRows, forKey: .discardedRows)
        try c.encode(rowsNow, forKey: .rowsNow)
        try c.encode(rowsInSnapshot, forKey: .rowsInSnapshot)
        try c.encode(database, forKey: .database)
        try c.encode(safetySnapshot, forKey: .safetySnapshot)
    }

    public static func discarded(now: [String: Int64], snapshot: [String: Int64]?) -> [String: Int64] {
        guard let snapshot else { return [:] }
        var result: [String: Int64] = [:]
        for (table, count) in now {
            let lost = count - (snapshot[table] ?? 0)
            if lost > 0 { result[table] = lost }
        }
        return result
    }
}

public struct RestoreOutcome: Sendable {
    public var plan: RestorePlan
    /// The `pre-restore` snapshot taken of the state that was replaced, if any.
    public var safetySnapshot: Manifest?
    /// False for a dry run.
    public var applied: Bool
}

/// A snapshot restore, in DESIGN.md's order: verify (checksum, content), plan, confirm, safety
/// snapshot, atomic swap, check. The caller holds the store lock.
public struct RestoreOperation {
    public var store: SnapshotStore
    public var manifest: Manifest
    /// The database being replaced: the live one, or another (`--to`).
    public var engine: DatabaseEngine
    public var versionTable: VersionTable
    public var safetySnapshot: Bool
    /// Computes the migrations undone from the current revisions to the snapshot's, newest first.
    public var undone: ([String], [String]) throws -> [String]

    public init(store: SnapshotStore, manifest: Manifest, engine: DatabaseEngine, versionTable: VersionTable,
                safetySnapshot: Bool, undone: @escaping ([String], [String]) throws -> [String]) {
        self.store = store
        self.manifest = manifest
        self.engine = engine
        self.versionTable = versionTable
        self.safetySnapshot = safetySnapshot
        self.undone = undone
    }

    /// Verifies the snapshot and computes the plan; changes nothing.
    public func plan(progress: ProgressReporter) throws -> RestorePlan {
        guard manifest.engine == engine.kind else {
            throw MigsnapError.invalidInput(
                "Snapshot \(manifest.id) is a \(manifest.engine.rawValue) snapshot; \(engine.redactedLocation) is a \(engine.kind.rawValue) database.")
        }
        let content = try VerifySnapshot.run(manifest, store: store, engine: engine, versionTable: versionTable, progress: progress)
        let exists = try engine.databaseExists()
        let current = exists ? try engine.currentRevisions(versionTable: versionTable) : []
        let rowsNow = exists ? try engine.rowCounts() : [:]
        return RestorePlan(
            current: current, target: manifest.revisions, undone: try undone(current, manifest.revisions),
            via: .restore, snapshot: manifest.id,
            discardedRows: RestorePlan.discarded(now: rowsNow, snapshot: content.rowCounts),
            rowsNow: rowsNow, rowsInSnapshot: content.rowCounts, database: engine.redactedLocation,
            safetySnapshot: safetySnapshot && exists)
    }

    /// Takes the safety snapshot (unless disabled or there is nothing to save), then swaps the
    /// snapshot in and checks the result.
    public func apply(_ plan: RestorePlan, progress: ProgressReporter) throws -> Manifest? {
        var safety: Manifest?
        if plan.safetySnapshot {
            do {
                safety = try TakeSnapshot.run(engine: engine, store: store, versionTable: versionTable,
                                              request: SnapshotRequest(reason: .preRestore, note: "before restoring \(manifest.id)"),
                                              progress: progress)
            } catch let error as MigsnapError {
                throw MigsnapError.failed("The safety snapshot failed, so nothing was restored: \(error.message)", hint: error.hint)
            }
        }
        do {
            try engine.restore(payload: URL(fileURLWithPath: store.payloadPath(manifest)), expectedRevisions: manifest.revisions,
                               versionTable: versionTable, progress: progress)
        } catch let error as MigsnapError {
            progress.finish()
            let saved = safety.map { " The state before is saved as snapshot \($0.id)." } ?? ""
            throw error.prefixed("Restore of \(manifest.id) failed; the database was left as it was.\(saved)")
        }
        progress.finish()
        let now = try engine.currentRevisions(versionTable: versionTable)
        guard now == manifest.revisions else {
            throw MigsnapError.failed(
                "After the restore the database is at \(Revisions.describe(now)), expected \(Revisions.describe(manifest.revisions)).")
        }
        return safety
    }
}

public enum Revisions {
    /// `base` for none, else the ids joined by commas.
    public static func describe(_ revisions: [String]) -> String {
        revisions.isEmpty ? "base" : revisions.joined(separator: ", ")
    }
}
