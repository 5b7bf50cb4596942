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
    @NullEncoded public var snapshot: String?
    /// Rows that exist now and would not after the restore, per table: the count now minus the
    /// count in the snapshot, where positive (a table absent from the snapshot loses all its rows).
    public var discardedRows: [String: Int64]
    /// Row counts per table now and in the snapshot (nil where unknown), for the human table.
    public var rowsNow: [String: Int64]
    @NullEncoded public var rowsInSnapshot: [String: Int64]?
    /// The database the plan changes (redacted).
    public var database: String
    public var safetySnapshot: Bool
    /// Tables whose rows could not be counted now, with why (e.g. "permission denied for table t").
    public var unknownRows: [String: String] = [:]

    enum CodingKeys: String, CodingKey {
        case current, target, undone, via, snapshot
        case discardedRows = "discarded_rows"
        case rowsNow = "rows_now"
        case rowsInSnapshot = "rows_in_snapshot"
        case database
        case safetySnapshot = "safety_snapshot"
        case unknownRows = "unknown_rows"
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

/// A restore that is verified and staged, waiting for confirmation. Released without `apply`,
/// the staged copy is dropped and nothing has changed.
public struct PreparedRestore {
    public var plan: RestorePlan
    let staged: StagedRestore
}

/// A snapshot restore, in DESIGN.md's order: verify (checksum, then a full read into a staged
/// copy beside the live database), plan, confirm, safety snapshot, atomic swap of the staged copy,
/// check. The caller holds the store lock.
public struct RestoreOperation {
    public var store: SnapshotStore
    public var manifest: Manifest
    /// The database being replaced: the live one, or another (`--to`).
    public var engine: DatabaseEngine
    public var versionTable: VersionTable
    public var safetySnapshot: Bool
    /// Computes the migrations undone from the current revisions to the snapshot's, newest first.
    public var undone: ([String], [String]) throws -> [String]
    /// Where the undone migrations are guarded (the live database), and what to call the change.
    public var guarding: (graph: RevisionGraph?, by: String)?

    public init(store: SnapshotStore, manifest: Manifest, engine: DatabaseEngine, versionTable: VersionTable,
                safetySnapshot: Bool, guarding: (graph: RevisionGraph?, by: String)?,
                undone: @escaping ([String], [String]) throws -> [String]) {
        self.guarding = guarding
        self.store = store
        self.manifest = manifest
        self.engine = engine
        self.versionTable = versionTable
        self.safetySnapshot = safetySnapshot
        self.undone = undone
    }

    /// Verifies the snapshot into a staged copy and computes the plan; the live database is not touched.
    public func prepare(progress: ProgressReporter) throws -> PreparedRestore {
        guard manifest.engine == engine.kind else {
            throw MigsnapError.invalidInput(
                "Snapshot \(manifest.id) is a \(manifest.engine.rawValue) snapshot; \(engine.redactedLocation) is a \(engine.kind.rawValue) database.")
        }
        let scratch = try store.makeScratch()
        // Staging starts while the payload arrives; nothing is swapped in unless its bytes are the
        // manifest's, whatever the engine checked.
        let payload = try store.arrivingPayload(manifest, scratch: scratch)
        let staged: StagedRestore
        do {
            staged = try engine.stageRestore(arriving: payload, versionTable: versionTable, progress: progress)
        } catch let error as MigsnapError {
            try payload.verify()
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        try payload.verify()
        guard staged.content.revisions == manifest.revisions else {
            throw MigsnapError.verificationFailed(
                "Snapshot \(manifest.id) holds \(Revisions.named(staged.content.revisions)) but its manifest says \(Revisions.describe(manifest.revisions)).")
        }
        let exists = try engine.databaseExists()
        let current = exists ? try engine.currentRevisions(versionTable: versionTable) : []
        let (rowsNow, unknownRows) = exists ? try engine.rowCountsForPlan() : ([:], [:])
        let plan = RestorePlan(
            current: current, target: manifest.revisions, undone: try undone(current, manifest.revisions),
            via: .restore, snapshot: manifest.id,
            discardedRows: RestorePlan.discarded(now: rowsNow, snapshot: staged.content.rowCounts),
            rowsNow: rowsNow, rowsInSnapshot: staged.content.rowCounts, database: engine.redactedLocation,
            safetySnapshot: safetySnapshot && exists, unknownRows: unknownRows)
        return PreparedRestore(plan: plan, staged: staged)
    }

    /// Takes the safety snapshot (unless disabled or there is nothing to save), then swaps the
    /// staged copy in and checks the result.
    public func apply(_ prepared: PreparedRestore, progress: ProgressReporter) throws -> Manifest? {
        var safety: Manifest?
        if prepared.plan.safetySnapshot {
            do {
                safety = try TakeSnapshot.run(engine: engine, store: store, versionTable: versionTable,
                                              request: SnapshotRequest(reason: .preRestore, note: "before restoring \(manifest.id)"),
                                              progress: progress)
            } catch let error as MigsnapError {
                throw MigsnapError.failed("The safety snapshot failed, so nothing was restored: \(error.message)", hint: error.hint)
            }
        }
        let saved = safety.map { " The state before is saved as snapshot \($0.id)." } ?? ""
        // The guards are written before the swap: once the database has changed, nothing may be
        // left to record, or a full disk could lose the guard and let `upgrade` repeat the loss.
        let book = GuardBook(store: store)
        var guardsBefore: [Guard]?
        if let guarding {
            do {
                let judge = try LossJudge.of(engine, store: store, current: prepared.plan.current, safety: safety, versionTable: versionTable)
                guardsBefore = try book.record(undone: prepared.plan.undone, target: manifest.revisions, graph: guarding.graph,
                                               judge: judge, by: guarding.by)
            } catch let error as MigsnapError {
                throw error.prefixed("Could not record the undone migrations, so nothing was restored.\(saved)")
            }
        }
        do {
            try prepared.staged.commit(progress: progress)
        } catch let error as MigsnapError {
            if let guardsBefore { try? book.restore(guardsBefore) }
            throw error.prefixed("Restore of \(manifest.id) failed; the database was left as it was.\(saved)")
        }
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

    /// `describe` with its noun: "base", "revision a1", "revisions a1, b2".
    public static func named(_ revisions: [String]) -> String {
        revisions.isEmpty ? "base" : "\(revisions.count == 1 ? "revision" : "revisions") \(describe(revisions))"
    }
}
