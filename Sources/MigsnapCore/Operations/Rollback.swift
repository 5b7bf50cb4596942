import Foundation

/// How a rollback is carried out: restoring a snapshot, or Alembic's downgrade.
public enum RollbackRoute {
    case restore(RestoreOperation, PreparedRestore)
    case downgrade
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
        let candidates = try store.manifests().filter {
            $0.engine == engine.kind && $0.database == engine.redactedLocation && $0.revisions == downgrade.target
        }
        if let manifest = candidates.last {
            let undone = downgrade.undone
            let operation = RestoreOperation(store: store, manifest: manifest, engine: engine, versionTable: versionTable,
                                             safetySnapshot: true, guarding: (graph, "rollback \(target)"), undone: { _, _ in undone })
            let prepared = try operation.prepare(progress: progress)
            return (prepared.plan, .restore(operation, prepared))
        }
        let at = Revisions.describe(downgrade.target)
        guard allowFallback else {
            throw MigsnapError.refused("No snapshot of \(engine.redactedLocation) was taken at \(at); refusing to fall back to `alembic downgrade` (--no-fallback).",
                                       hint: "Run `migsnap list` to see the snapshots, or drop --no-fallback to run Alembic's downgrade().")
        }
        let rows = try engine.rowCounts()
        let plan = RestorePlan(current: current, target: downgrade.target, undone: downgrade.undone, via: .downgrade,
                               snapshot: nil, discardedRows: [:], rowsNow: rows, rowsInSnapshot: nil,
                               database: engine.redactedLocation, safetySnapshot: true)
        return (plan, .downgrade)
    }

    /// Carries the plan out. Returns the safety snapshot taken first.
    public func rollback(_ plan: RestorePlan, route: RollbackRoute, target: String, progress: ProgressReporter) throws -> Manifest? {
        let safety: Manifest?
        switch route {
        case .restore(let operation, let prepared):
            safety = try operation.apply(prepared, progress: progress)
        case .downgrade:
            log("WARNING: no snapshot at \(Revisions.describe(plan.target)); falling back to Alembic's downgrade(), which restores the schema but NOT deleted rows.")
            try alembic.prepare(log: log)
            defer { alembic.finish() }
            do {
                safety = try TakeSnapshot.run(engine: engine, store: store, versionTable: versionTable,
                                              request: SnapshotRequest(reason: .preDowngrade, note: "before alembic downgrade \(target)"),
                                              progress: progress)
            } catch let error as MigsnapError {
                throw error.prefixed("The safety snapshot failed, so Alembic's downgrade did not run")
            }
            let book = GuardBook(store: store)
            let guardsBefore = try book.record(undone: plan.undone, graph: graph, by: "rollback \(target)")
            do {
                try alembic.downgrade(target)
            } catch let error as MigsnapError {
                try? book.restore(guardsBefore)
                throw MigsnapError.failed("\(error.message) Snapshot \(safety!.id) holds the state before the downgrade.",
                                          hint: "`migsnap restore \(safety!.id)` returns to it.")
            }
            let now = try engine.currentRevisions(versionTable: versionTable)
            guard now == plan.target else {
                throw MigsnapError.failed("After `alembic downgrade \(target)` the database is at \(Revisions.describe(now)), expected \(Revisions.describe(plan.target)).")
            }
        }
        return safety
    }
}
