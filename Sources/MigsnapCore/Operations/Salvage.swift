import Foundation

/// One table of a salvage: what the application changed since S1 (kept), what comes back from S0.
public struct SalvageTable: Codable, Sendable, Equatable {
    public var name: String
    /// The primary key rows are matched by; empty for a table without one (see `note`).
    public var key: [String]
    /// Rows the application inserted, updated and deleted since S1: applied on top of S0.
    public var inserted: Int64
    public var updated: Int64
    public var deleted: Int64
    /// Rows the migration deleted or rewrote that the application has not touched since: back as in S0.
    public var comeBack: Int64
    /// Rows both the migration and the application changed; the application's values win.
    public var conflicts: Int64
    /// The keys of the first conflicts (`id=3`), for the plan.
    public var conflictKeys: [String]
    /// How the table was handled where it is not a plain merge by key, in words.
    @NullEncoded public var note: String?

    public init(name: String, key: [String], inserted: Int64 = 0, updated: Int64 = 0, deleted: Int64 = 0, comeBack: Int64 = 0,
                conflicts: Int64 = 0, conflictKeys: [String] = [], note: String? = nil) {
        self.name = name
        self.key = key
        self.inserted = inserted
        self.updated = updated
        self.deleted = deleted
        self.comeBack = comeBack
        self.conflicts = conflicts
        self.conflictKeys = conflictKeys
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case name, key, inserted, updated, deleted, conflicts, note
        case comeBack = "come_back"
        case conflictKeys = "conflict_keys"
    }
}

/// What an engine merged into the staged copy.
public struct SalvageMerge: Sendable, Equatable {
    public var tables: [SalvageTable]
    /// Tables the undone migrations created, dropped with them, with the rows they hold now.
    public var droppedTables: [String: Int64]

    public init(tables: [SalvageTable], droppedTables: [String: Int64]) {
        self.tables = tables
        self.droppedTables = droppedTables
    }
}

/// An engine that can build a salvage: S0 with the application's changes since S1 applied on top,
/// in S0's schema, in a staged copy that replaces the live database as a restore's does.
public protocol SalvagingEngine: DatabaseEngine {
    /// `s0` and `s1` are payloads (checked as by `inspect`, unpacked into `scratch`); the live
    /// database is only read. Throws `.refused` where the result cannot be exact, naming why.
    func stageSalvage(s0: URL, s1: URL, scratch: ScratchSpace, versionTable: VersionTable,
                      progress: ProgressReporter) throws -> (StagedRestore, SalvageMerge)
}

/// `rollback --keep-new` / `restore ID --keep-new`, printed before anything changes.
/// JSON: the restore plan's `current`, `target`, `undone`, `snapshot`, `database`,
/// `safety_snapshot`, with `via: "salvage"`, `after` (S1) and per-table counts.
public struct SalvagePlan: Codable, Sendable, Equatable {
    public var current: [String]
    public var target: [String]
    public var undone: [String]
    public var via = "salvage"
    /// S0: the snapshot before the undone migrations.
    public var snapshot: String
    /// S1: the snapshot right after them.
    public var after: String
    public var database: String
    public var safetySnapshot: Bool
    public var tables: [SalvageTable]
    public var droppedTables: [String: Int64]

    enum CodingKeys: String, CodingKey {
        case current, target, undone, via, snapshot, after, database, tables
        case safetySnapshot = "safety_snapshot"
        case droppedTables = "dropped_tables"
    }
}

/// A salvage staged and planned, waiting for confirmation; released without `apply`, nothing changed.
public struct PreparedSalvage {
    public var plan: SalvagePlan
    public var before: Manifest
    public var after: Manifest
    let restore: RestoreOperation
    let staged: PreparedRestore

    /// Safety snapshot, guards, atomic swap of the merged copy, check. Returns the safety snapshot.
    public func apply(progress: ProgressReporter) throws -> Manifest? {
        try restore.apply(staged, progress: progress)
    }
}

/// The salvage of a bad migration (DESIGN.md, `--keep-new`). The merged copy is built in staging;
/// then, as a restore: a pre-restore safety snapshot, the guards of the undone migrations, the
/// atomic swap, the check. The caller holds the store lock.
public struct SalvageOperation {
    public var store: SnapshotStore
    public var engine: DatabaseEngine
    public var versionTable: VersionTable
    public var graph: RevisionGraph?
    /// What to call the change in guards: `rollback -1 --keep-new`.
    public var by: String

    public init(store: SnapshotStore, engine: DatabaseEngine, versionTable: VersionTable, graph: RevisionGraph?, by: String) {
        self.store = store
        self.engine = engine
        self.versionTable = versionTable
        self.graph = graph
        self.by = by
    }

    /// The engine, where it can salvage; else exit 2, before anything else is looked at.
    static func salvaging(_ engine: DatabaseEngine) throws -> SalvagingEngine {
        guard let salvaging = engine as? SalvagingEngine else {
            throw MigsnapError.invalidInput(
                "--keep-new is not supported for \(engine.kind.rawValue) databases (\(engine.redactedLocation)).",
                hint: "Use `migsnap rollback` without --keep-new, or restore the snapshot elsewhere (`migsnap restore ID --to URL`) and copy the new rows back by hand.")
        }
        return salvaging
    }

    /// S1 for `before` (S0): the snapshots taken right after it by the same upgrade, step by step
    /// (each step's pre-upgrade snapshot is the previous step's state right after), up to the one at
    /// `current`. A gap (a snapshot pruned, another taken between) or a database that has moved on
    /// is a refusal: a later snapshot holds writes of the application, which would read as the
    /// migration's and be undone.
    public static func stateAfter(_ before: Manifest, in manifests: [Manifest], current: [String]) throws -> Manifest {
        let hint = "Use `migsnap rollback` (without --keep-new) to restore the snapshot as it is, or `migsnap diff \(before.id)` to see the rows."
        guard before.reason == .preUpgrade, before.targetRevision != nil else {
            throw MigsnapError.refused(
                "Snapshot \(before.id) (\(before.reason.rawValue)) was not taken right before a migration step, so there is no state right after the migration (S1) to tell the application's changes from the migration's.",
                hint: hint)
        }
        let mine = manifests.filter { $0.engine == before.engine && $0.database == before.database }
        guard var index = mine.firstIndex(where: { $0.id == before.id }) else {
            throw MigsnapError.invalidInput("Snapshot \(before.id) is not a snapshot of this database.")
        }
        while true {
            let step = mine[index]
            guard let to = step.targetRevision, index + 1 < mine.count else {
                throw MigsnapError.refused(
                    "No snapshot was taken right after the migration to \(step.targetRevision ?? "?") (snapshot \(step.id) was taken before it), so the application's changes since cannot be told from the migration's.",
                    hint: hint)
            }
            let next = mine[index + 1]
            guard next.reason == .preUpgrade || next.reason == .postUpgrade, next.revisions == [to] else {
                throw MigsnapError.refused(
                    "The snapshot after \(step.id) is \(next.id) (\(next.reason.rawValue), at \(Revisions.describe(next.revisions))), not the state right after the migration to \(to): it was pruned or never taken, so the application's changes since cannot be told from the migration's.",
                    hint: hint)
            }
            if next.revisions == current.sorted() { return next }
            guard next.reason == .preUpgrade else {
                throw MigsnapError.refused(
                    "The database is at \(Revisions.describe(current)), but the upgrade after snapshot \(before.id) ended at \(Revisions.describe(next.revisions)): the database has moved on since, so there is no state right after the migrations being undone.",
                    hint: hint)
            }
            index += 1
        }
    }

    /// Verifies S0 and S1, builds the merged copy and its plan. The live database is only read.
    /// `undone` computes the migrations undone from the current revisions to S0's, newest first.
    public func prepare(before: Manifest, undone: ([String], [String]) throws -> [String], progress: ProgressReporter) throws -> PreparedSalvage {
        let salvaging = try Self.salvaging(engine)
        guard before.engine == engine.kind else {
            throw MigsnapError.invalidInput(
                "Snapshot \(before.id) is a \(before.engine.rawValue) snapshot; \(engine.redactedLocation) is a \(engine.kind.rawValue) database.")
        }
        guard try engine.databaseExists() else {
            throw MigsnapError.invalidInput("No database at \(engine.redactedLocation): there are no new rows to keep.",
                                            hint: "Restore the snapshot without --keep-new: `migsnap restore \(before.id)`.")
        }
        let current = try engine.currentRevisions(versionTable: versionTable)
        let undone = try undone(current, before.revisions)
        let after = try Self.stateAfter(before, in: try store.manifests(), current: current)
        let scratch = try store.makeScratch()
        let s0 = try store.localPayload(before, scratch: scratch, progress: progress)
        let s1 = try store.localPayload(after, scratch: scratch, progress: progress)
        let (staged, merge) = try salvaging.stageSalvage(s0: s0, s1: s1, scratch: scratch, versionTable: versionTable, progress: progress)
        guard staged.content.revisions == before.revisions else {
            throw MigsnapError.verificationFailed(
                "Snapshot \(before.id) holds \(Revisions.named(staged.content.revisions)) but its manifest says \(Revisions.describe(before.revisions)).")
        }
        let restore = RestoreOperation(store: store, manifest: before, engine: engine, versionTable: versionTable,
                                       safetySnapshot: true, guarding: (graph, by), undone: { _, _ in undone })
        let restorePlan = RestorePlan(current: current, target: before.revisions, undone: undone, via: .restore, snapshot: before.id,
                                      discardedRows: [:], rowsNow: [:], rowsInSnapshot: nil, database: engine.redactedLocation,
                                      safetySnapshot: true)
        let plan = SalvagePlan(current: current, target: before.revisions, undone: undone, snapshot: before.id, after: after.id,
                               database: engine.redactedLocation, safetySnapshot: true, tables: merge.tables,
                               droppedTables: merge.droppedTables)
        return PreparedSalvage(plan: plan, before: before, after: after, restore: restore,
                               staged: PreparedRestore(plan: restorePlan, staged: staged,
                                                        source: StagedFromStore(staged: staged, hotRefused: false, hotConsumed: false)))
    }
}

extension MigrationRun {
    /// `rollback TARGET --keep-new`: S0 is the snapshot `rollback TARGET` would restore.
    public func salvagePlan(target: String, progress: ProgressReporter) throws -> PreparedSalvage? {
        _ = try SalvageOperation.salvaging(engine)
        guard try engine.databaseExists() else {
            throw MigsnapError.invalidInput("No database at \(engine.redactedLocation): there is nothing to roll back.",
                                            hint: "To bring back a deleted database, `migsnap restore ID` (see `migsnap list`).")
        }
        let current = try engine.currentRevisions(versionTable: versionTable)
        let downgrade = try graph.downgradePlan(current: current, target: target)
        guard !downgrade.undone.isEmpty else { return nil }
        let before = try store.manifests().last {
            $0.engine == engine.kind && $0.database == engine.redactedLocation && $0.revisions == downgrade.target
        }
        guard let before else {
            throw MigsnapError.refused(
                "No snapshot of \(engine.redactedLocation) was taken at \(Revisions.describe(downgrade.target)), so there is no state before the migration (S0) to salvage into.",
                hint: "Without --keep-new, `migsnap rollback \(target)` falls back to `alembic downgrade`.")
        }
        return try SalvageOperation(store: store, engine: engine, versionTable: versionTable, graph: graph,
                                    by: "rollback \(target) --keep-new")
            .prepare(before: before, undone: { _, _ in downgrade.undone }, progress: progress)
    }
}
