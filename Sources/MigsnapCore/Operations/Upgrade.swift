import Foundation

/// `upgrade --dry-run --json`: `{"current": [...], "steps": [{"from": [...], "to": "REV"}]}`.
public struct UpgradePlan: Codable, Sendable, Equatable {
    public var current: [String]
    public var steps: [UpgradeStep]
    /// The resolved target revisions.
    public var target: [String]
}

public struct UpgradeOptions: Sendable {
    public var target: String
    /// One snapshot, then a single `alembic upgrade TARGET`.
    public var once: Bool
    public var restoreOnFailure: Bool
    /// Apply guarded migrations anyway.
    public var force: Bool

    public init(target: String = "head", once: Bool = false, restoreOnFailure: Bool = true, force: Bool = false) {
        self.target = target
        self.once = once
        self.restoreOnFailure = restoreOnFailure
        self.force = force
    }
}

/// `alembic upgrade` with a snapshot before every step. Alembic has no hook that runs before a
/// step (`on_version_apply` runs after it, inside its transaction), so the steps are planned here
/// and Alembic is asked for one step at a time (one warm Alembic for the whole run, see AlembicRunner).
extension MigrationRun {
    public func upgradePlan(_ options: UpgradeOptions) throws -> UpgradePlan {
        let current = try engine.databaseExists() ? engine.currentRevisions(versionTable: versionTable) : []
        let target = try graph.resolveUpgradeTarget(options.target, current: current)
        let steps = try graph.upgradeSteps(current: current, targets: target)
        return UpgradePlan(current: current, steps: steps, target: target)
    }

    /// Refuses (exit 4) to apply again, unchanged, a migration that a restore or rollback undid.
    public func checkGuards(_ plan: UpgradePlan, force: Bool) throws {
        let open = try GuardBook(store: store).open(graph: graph).filter { g in plan.steps.contains { $0.to == g.revision } }
        guard let first = open.first, !force else {
            if force, !open.isEmpty {
                log("Warning: --force: applying \(open.map(\.revision).joined(separator: ", ")) again although \(open.count == 1 ? "it was" : "they were") undone and the file is unchanged.")
            }
            return
        }
        throw MigsnapError.refused(
            "Migration \(first.revision) (\(first.file)) was undone by `\(first.by)` on \(RFC3339.string(from: first.recordedAt)) and its file is unchanged: applying it again would repeat what lost data.",
            hint: "Fix the migration (an edited file passes), or pass --force to apply it as it is.")
    }

    /// Runs the plan. Returns the snapshots taken. On a failed step the step's snapshot is
    /// restored (unless disabled) and the error says where the database is.
    public func upgrade(_ plan: UpgradePlan, options: UpgradeOptions, progress: ProgressReporter) throws -> [Manifest] {
        try checkGuards(plan, force: options.force)
        try alembic.prepare(log: log)
        defer { alembic.finish() }
        var taken: [Manifest] = []
        let batches: [(from: [String], to: String, argument: String)] = options.once
            ? [(plan.current, plan.steps.last!.to, options.target)]
            : plan.steps.map { ($0.from, $0.to, $0.to) }
        for (index, step) in batches.enumerated() {
            let label = options.once ? "upgrade \(options.target)" : "step \(index + 1)/\(batches.count): \(Revisions.describe(step.from)) -> \(step.to)"
            log("\(label): snapshot")
            let snapshot: Manifest
            do {
                snapshot = try TakeSnapshot.run(
                    engine: engine, store: store, versionTable: versionTable,
                    request: SnapshotRequest(reason: .preUpgrade, targetRevision: step.to), progress: progress)
            } catch let error as MigsnapError {
                throw error.prefixed("The snapshot before \(step.to) failed, so the migration did not run")
            }
            taken.append(snapshot)
            log("\(label): snapshot \(snapshot.id) taken; running \(alembic.describe(["upgrade", step.argument]))")
            do {
                try alembic.upgrade(step.argument)
                let now = try engine.currentRevisions(versionTable: versionTable)
                guard now.contains(step.to) || (options.once && Set(plan.target).isSubset(of: now)) else {
                    throw MigsnapError.failed("Alembic exited 0 but the version table says \(Revisions.describe(now)), not \(step.to).")
                }
            } catch let error as MigsnapError {
                throw try recover(from: error, step: step.to, snapshot: snapshot, options: options, progress: progress)
            }
            try GuardBook(store: store).clear([step.to])
        }
        log("The database is at \(Revisions.describe(try engine.currentRevisions(versionTable: versionTable))).")
        return taken
    }

    private func recover(from error: MigsnapError, step: String, snapshot: Manifest, options: UpgradeOptions,
                         progress: ProgressReporter) throws -> MigsnapError {
        guard options.restoreOnFailure else {
            return .failed("Migration \(step) failed: \(error.message) The database was left as Alembic left it (--no-restore-on-failure); snapshot \(snapshot.id) holds the state before.",
                           hint: "Inspect it, then `migsnap restore \(snapshot.id)` to go back.")
        }
        log("Migration \(step) failed; restoring snapshot \(snapshot.id)")
        do {
            let scratch = try store.makeScratch()
            try engine.restore(payload: try store.localPayload(snapshot, scratch: scratch, progress: progress), expectedRevisions: snapshot.revisions,
                               versionTable: versionTable, progress: progress)
            progress.finish()
        } catch let restoreError as MigsnapError {
            progress.finish()
            return .failed("Migration \(step) failed (\(error.message)) and restoring snapshot \(snapshot.id) failed too: \(restoreError.message)",
                           hint: "Restore it by hand: `migsnap restore \(snapshot.id) --yes`, or see the README.")
        }
        return .failed("Migration \(step) failed: \(error.message) The database was restored to \(Revisions.describe(snapshot.revisions)) from snapshot \(snapshot.id).",
                       hint: "Fix the migration, then run `migsnap upgrade` again.")
    }
}
