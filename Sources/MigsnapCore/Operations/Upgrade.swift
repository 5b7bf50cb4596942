import Foundation

/// `upgrade --dry-run --json`: `{"current": [...], "steps": [{"from": [...], "to": "REV"}]}`.
public struct UpgradePlan: Codable, Sendable, Equatable {
    public var current: [String]
    public var steps: [UpgradeStep]
    /// The resolved target revisions.
    public var target: [String]
    /// The open guards on the plan's steps, in the order the steps run.
    public var guards: [Guard]

    /// The guard that stops the run (the first guarded step), unless forced.
    public func refusal(force: Bool) -> Guard? {
        force ? nil : guards.first
    }
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
    /// With `guards: false` the plan leaves the guards out (a plan that only asks whether there
    /// are steps; the store is not read).
    public func upgradePlan(_ options: UpgradeOptions, guards readGuards: Bool = true) throws -> UpgradePlan {
        let current = try engine.databaseExists() ? engine.currentRevisions(versionTable: versionTable) : []
        let target = try graph.resolveUpgradeTarget(options.target, current: current)
        let steps = try graph.upgradeSteps(current: current, targets: target)
        let open = readGuards && !steps.isEmpty ? try GuardBook(store: store).open(graph: graph, current: current) : []
        let guards = steps.compactMap { step in open.first { $0.revision == step.to } }
        return UpgradePlan(current: current, steps: steps, target: target, guards: guards)
    }

    /// Refuses (exit 4) to apply again, unchanged, a migration that lost data and was undone.
    public func checkGuards(_ plan: UpgradePlan, force: Bool) throws {
        if let first = plan.refusal(force: force) {
            throw Self.refusal(first)
        }
        if !plan.guards.isEmpty {
            log("Warning: --force: applying \(plan.guards.map(\.revision).joined(separator: ", ")) again although \(plan.guards.count == 1 ? "it" : "each") lost data and was undone, and the file is unchanged.")
        }
    }

    public static func refusal(_ g: Guard) -> MigsnapError {
        .refused(
            "Migration \(g.revision) (\(g.file)) lost data when it ran (\(g.summary)), and its file is unchanged: applying it again would repeat that.",
            hint: "Fix the migration (an edited file passes), pass --force to apply it as it is, or `migsnap unguard \(g.revision)`.")
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
            let snapshot: Manifest
            do {
                snapshot = try preUpgradeSnapshot(to: step.to, progress: progress)
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
                throw recover(from: error, failed: "Migration \(step.to)", snapshot: snapshot, restoreOnFailure: options.restoreOnFailure,
                              next: "Fix the migration, then run `migsnap upgrade` again.", progress: progress)
            }
            try GuardBook(store: store).settle(at: try engine.currentRevisions(versionTable: versionTable), graph: graph)
        }
        if let after = takePostUpgradeSnapshot(progress: progress) { taken.append(after) }
        log("The database is at \(Revisions.describe(try engine.currentRevisions(versionTable: versionTable))).")
        return taken
    }

    /// The state right after the last step (S1 of a salvage, `rollback --keep-new`): each earlier
    /// step's S1 is the next step's pre-upgrade snapshot. Keyed to the revision reached, so
    /// `rollback` to that revision may restore it: it is that revision's exact state. The migrations
    /// ran and stay; a failure here only costs the salvage of this step, so it is a warning.
    private func takePostUpgradeSnapshot(progress: ProgressReporter) -> Manifest? {
        do {
            let snapshot = try TakeSnapshot.run(engine: engine, store: store, versionTable: versionTable,
                                                request: SnapshotRequest(reason: .postUpgrade), progress: progress)
            log("post-upgrade snapshot \(snapshot.id) taken at \(Revisions.describe(snapshot.revisions))")
            return snapshot
        } catch {
            progress.finish()
            let why = (error as? MigsnapError)?.message ?? "\(error)"
            log("Warning: the post-upgrade snapshot failed (\(why)); the upgrade stands, but `rollback --keep-new` cannot salvage the last step.")
            return nil
        }
    }

    /// After a failed Alembic run: restores `snapshot` (taken right before it) unless told not to,
    /// and returns the error to throw, which says where the database is.
    func recover(from error: MigsnapError, failed what: String, snapshot: Manifest, restoreOnFailure: Bool, next: String,
                 progress: ProgressReporter) -> MigsnapError {
        guard restoreOnFailure else {
            return .failed("\(what) failed: \(error.message) The database was left as Alembic left it (--no-restore-on-failure); snapshot \(snapshot.id) holds the state before.",
                           hint: "Inspect it, then `migsnap restore \(snapshot.id)` to go back.")
        }
        log("\(what) failed; restoring snapshot \(snapshot.id)")
        do {
            let scratch = try store.makeScratch()
            let source = try store.stageRestore(snapshot, engine: engine, versionTable: versionTable, scratch: scratch,
                                                progress: progress, log: log)
            source.dropRefusedHot(snapshot, store: store, engine: engine)
            try engine.restore(source.staged, from: "Snapshot \(snapshot.id)", expectedRevisions: snapshot.revisions,
                               versionTable: versionTable, progress: progress)
            source.settleHot(snapshot, store: store, engine: engine, keepHot: keepHot, log: log)
            progress.finish()
        } catch let restoreError {
            progress.finish()
            let why = (restoreError as? MigsnapError)?.message ?? "\(restoreError)"
            return .failed("\(what) failed (\(error.message)) and restoring snapshot \(snapshot.id) failed too: \(why)",
                           hint: "Restore it by hand: `migsnap restore \(snapshot.id) --yes`, or see the README.")
        }
        return .failed("\(what) failed: \(error.message) The database was restored to \(Revisions.describe(snapshot.revisions)) from snapshot \(snapshot.id).",
                       hint: next)
    }
}
