import Foundation

/// What a restore or rollback would do, printed before anything changes.
/// Its JSON is part of the product contract (DESIGN.md): `current`, `target`, `undone`, `via`,
/// `snapshot`, `discarded_rows`, `changed_rows`, `restored_rows`.
public struct RestorePlan: Codable, Sendable, Equatable {
    public enum Via: String, Codable, Sendable { case restore, downgrade }

    public var current: [String]
    public var target: [String]
    /// Migrations being undone, newest first: what `alembic downgrade` would run.
    public var undone: [String]
    public var via: Via
    @NullEncoded public var snapshot: String?
    /// Per table, rows added since the snapshot, which the restore discards: rows now whose key
    /// the snapshot does not have (tables without a primary key: whole rows, as a multiset).
    /// Counted against the staged, verified snapshot; tables with none are left out.
    public var discardedRows: [String: Int64]
    /// Per table, rows on both sides whose values changed since the snapshot (the restore puts the
    /// snapshot's values back).
    public var changedRows: [String: Int64] = [:]
    /// Per table, rows in the snapshot that are not now: the restore brings them back.
    public var restoredRows: [String: Int64] = [:]
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
        case changedRows = "changed_rows"
        case restoredRows = "restored_rows"
        case rowsNow = "rows_now"
        case rowsInSnapshot = "rows_in_snapshot"
        case database
        case safetySnapshot = "safety_snapshot"
        case unknownRows = "unknown_rows"
    }

    /// The by-key counts of a comparison of the snapshot (A) with the live database (B); a table
    /// on one side only is all added or all coming back. Without a comparison (no live database),
    /// every row of the snapshot comes back. Tables in `skipped` are not counted.
    mutating func count(_ diff: DatabaseDiff?, skipped: Set<String>) {
        guard let diff else {
            restoredRows = (rowsInSnapshot ?? [:]).filter { $0.value > 0 && !skipped.contains($0.key) }
            return
        }
        func nonZero(_ pairs: [(String, Int64)]) -> [String: Int64] {
            Dictionary(pairs.filter { $0.1 > 0 }, uniquingKeysWith: +)
        }
        discardedRows = nonZero(diff.tables.map { ($0.name, $0.onlyInB) } + diff.tablesOnlyInB.map { ($0, rowsNow[$0] ?? 0) })
        changedRows = nonZero(diff.tables.map { ($0.name, $0.changed) })
        restoredRows = nonZero(diff.tables.map { ($0.name, $0.onlyInA) } + diff.tablesOnlyInA.map { ($0, rowsInSnapshot?[$0] ?? 0) })
    }
}

/// A restore that is verified and staged, waiting for confirmation. Released without `apply`,
/// the staged copy is dropped and nothing has changed.
public struct PreparedRestore {
    public var plan: RestorePlan
    let staged: StagedRestore
    /// The staged copy and what it means for the snapshot's hot copy, settled by `apply` (a dry run writes nothing).
    let source: StagedFromStore
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
    /// Notices for stderr (which copy of the snapshot is restored).
    public var log: (String) -> Void = { _ in }
    /// `keep_hot` of the policy: a refused hot copy of one of the newest pre-upgrade snapshots is
    /// rebuilt from the restored image.
    public var keepHot = 0

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
        let exists = try engine.databaseExists()
        // The live rows are counted while the snapshot is staged (the plan's "rows now").
        let engine = engine
        let counting = exists ? Background { try engine.rowCountsForPlan() } : nil
        let source: StagedFromStore
        do {
            let scratch = try store.makeScratch()
            source = try engine.stagingForPlan {
                try store.stageRestore(manifest, engine: engine, versionTable: versionTable, scratch: scratch,
                                       progress: progress, log: log)
            }
        } catch {
            _ = try? counting?.wait()
            throw error
        }
        let staged = source.staged
        guard staged.content.revisions == manifest.revisions else {
            throw MigsnapError.verificationFailed(
                "Snapshot \(manifest.id) holds \(Revisions.named(staged.content.revisions)) but its manifest says \(Revisions.describe(manifest.revisions)).")
        }
        let current = exists ? try engine.currentRevisions(versionTable: versionTable) : []
        let (rowsNow, unknownRows) = try counting?.wait() ?? ([:], [:])
        var plan = RestorePlan(
            current: current, target: manifest.revisions, undone: try undone(current, manifest.revisions),
            via: .restore, snapshot: manifest.id, discardedRows: [:],
            rowsNow: rowsNow, rowsInSnapshot: staged.content.rowCounts, database: engine.redactedLocation,
            safetySnapshot: safetySnapshot && exists, unknownRows: unknownRows)
        // The revision is the plan's `current` and `target`; tables the role cannot read cannot be compared.
        let skipped = Set(unknownRows.keys).union([versionTable.name, "\(versionTable.schema ?? "public").\(versionTable.name)"])
        plan.count(exists ? try staged.compareWithLive(scope: DiffScope(skipped: skipped), progress: progress) : nil, skipped: skipped)
        return PreparedRestore(plan: plan, staged: staged, source: source)
    }

    /// Takes the safety snapshot (unless disabled or there is nothing to save), then swaps the
    /// staged copy in and checks the result. Refused, changing nothing, where the database is no
    /// longer at the plan's revisions: the plan (and the guards it would record) no longer tells
    /// the truth. The caller holds the database's lock, so nothing moves it from here on.
    public func apply(_ prepared: PreparedRestore, progress: ProgressReporter) throws -> Manifest? {
        try engine.checkStill(at: prepared.plan.current, versionTable: versionTable, change: "restored")
        prepared.source.dropRefusedHot(manifest, store: store, engine: engine)
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
        prepared.source.settleHot(manifest, store: store, engine: engine, keepHot: keepHot, log: log)
        let after = try engine.currentRevisions(versionTable: versionTable)
        guard after == manifest.revisions else {
            throw MigsnapError.failed(
                "After the restore the database is at \(Revisions.describe(after)), expected \(Revisions.describe(manifest.revisions)).")
        }
        return safety
    }
}

extension DatabaseEngine {
    /// Refuses, changing nothing, where the database is no longer at `revisions` (a plan's
    /// `current`): the plan, and the guards it would record, no longer tell the truth.
    /// `change` says what was not done ("restored").
    func checkStill(at revisions: [String], versionTable: VersionTable, change: String) throws {
        let now = try databaseExists() ? try currentRevisions(versionTable: versionTable) : []
        guard now == revisions else {
            throw MigsnapError.refused(
                "\(redactedLocation) moved from \(Revisions.describe(revisions)) to \(Revisions.describe(now)) since the plan was made; nothing was \(change).",
                hint: "Another run or the application migrated it meanwhile: run the command again to see the plan for its state now.")
        }
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
