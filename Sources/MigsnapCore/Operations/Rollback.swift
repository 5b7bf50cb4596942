import Foundation

/// How a rollback is carried out: restoring a snapshot, or Alembic's downgrade.
public enum RollbackRoute {
    case restore(RestoreOperation, PreparedRestore)
    case downgrade
    /// The database is already at the target.
    case nothing
}

/// `rollback TARGET`: the data-preserving counterpart of `alembic downgrade TARGET`. Restores the
/// newest snapshot keyed to the target revisions; without one, falls back (loudly) to a real
/// downgrade after a `pre-downgrade` safety snapshot. The caller holds the store lock.
extension MigrationRun {
    /// The plan and how it would be carried out. Verifies the snapshot it would restore.
    public func rollbackPlan(target: String, allowFallback: Bool, progress: ProgressReporter) throws -> (RestorePlan, RollbackRoute) {
        guard try engine.databaseExists() else {
            throw MigsnapError.invalidInput("No database at \(engine.redactedLocation): there is nothing to roll back.",
                                            hint: "To bring back a deleted database, `migsnap restore ID` (see `migsnap list`).")
        }
        let current = try engine.currentRevisions(versionTable: versionTable)
        let unknown = current.filter { graph.script($0) == nil }
        guard unknown.isEmpty else {
            // Typically older code deployed over a newer database: Alembic cannot downgrade either.
            throw MigsnapError.invalidInput(
                "The database is at \(unknown.joined(separator: ", ")), which no migration file here defines, so the rollback cannot be planned.",
                hint: "Restore a snapshot directly: `migsnap list`, then `migsnap restore --revision REV` or `migsnap restore ID`.")
        }
        let downgrade = try graph.downgradePlan(current: current, target: target)
        guard !downgrade.undone.isEmpty else {
            let plan = RestorePlan(current: current, target: current, undone: [], via: .restore, snapshot: nil, discardedRows: [:],
                                   rowsNow: [:], rowsInSnapshot: nil, database: engine.redactedLocation, safetySnapshot: false)
            return (plan, .nothing)
        }
        let candidates = try store.manifests().filter {
            $0.engine == engine.kind && $0.database == engine.redactedLocation && $0.revisions == downgrade.target
        }
        if let manifest = candidates.last {
            let undone = downgrade.undone
            var operation = RestoreOperation(store: store, manifest: manifest, engine: engine, versionTable: versionTable,
                                             safetySnapshot: true, guarding: (graph, "rollback \(target)"), undone: { _, _ in undone })
            operation.log = log
            operation.keepHot = keepHot
            let prepared = try operation.prepare(progress: progress)
            return (prepared.plan, .restore(operation, prepared))
        }
        let at = Revisions.describe(downgrade.target)
        guard allowFallback else {
            throw MigsnapError.refused("No snapshot of \(engine.redactedLocation) was taken at \(at); refusing to fall back to `alembic downgrade` (--no-fallback).",
                                       hint: "Run `migsnap list` to see the snapshots, or drop --no-fallback to run Alembic's downgrade().")
        }
        let (rows, uncounted) = try engine.rowCountsForPlan()
        let plan = RestorePlan(current: current, target: downgrade.target, undone: downgrade.undone, via: .downgrade,
                               snapshot: nil, discardedRows: [:], rowsNow: rows, rowsInSnapshot: nil,
                               database: engine.redactedLocation, safetySnapshot: true, unknownRows: uncounted)
        return (plan, .downgrade)
    }

    /// Carries the plan out. Returns the safety snapshot taken first. When Alembic's downgrade
    /// fails, the pre-downgrade snapshot is restored unless `restoreOnFailure` is false.
    public func rollback(_ plan: RestorePlan, route: RollbackRoute, target: String, restoreOnFailure: Bool = true,
                         progress: ProgressReporter) throws -> Manifest? {
        switch route {
        case .nothing:
            return nil
        case .restore(let operation, let prepared):
            return try operation.apply(prepared, progress: progress)
        case .downgrade:
            try engine.checkStill(at: plan.current, versionTable: versionTable, change: "downgraded")
            // Alembic that cannot start, or env.py that connects elsewhere, stops here: nothing written.
            try alembic.prepare(log: log)
            defer { alembic.finish() }
            let safety: Manifest
            do {
                safety = try TakeSnapshot.run(engine: engine, store: store, versionTable: versionTable,
                                              request: SnapshotRequest(reason: .preDowngrade, note: "before alembic downgrade \(target)"),
                                              progress: progress)
            } catch let error as MigsnapError {
                throw error.prefixed("The safety snapshot failed, so Alembic's downgrade did not run")
            }
            let book = GuardBook(store: store)
            let judge = try LossJudge.of(engine, store: store, current: plan.current, safety: safety, versionTable: versionTable)
            let guardsBefore = try book.record(undone: plan.undone, target: plan.target, graph: graph, judge: judge, by: "rollback \(target)")
            do {
                try alembic.downgrade(target)
                let now = try engine.currentRevisions(versionTable: versionTable)
                guard now == plan.target else {
                    throw MigsnapError.failed("Alembic exited 0 but the version table says \(Revisions.describe(now)), not \(Revisions.describe(plan.target)).")
                }
            } catch let error as MigsnapError {
                try? book.restore(guardsBefore)
                throw recover(from: error, failed: "`alembic downgrade \(target)`", snapshot: safety, restoreOnFailure: restoreOnFailure,
                              next: "Fix the downgrade() of the migrations undone, or pick a snapshot to restore: `migsnap list`.",
                              progress: progress)
            }
            return safety
        }
    }
}
