import ArgumentParser
import Foundation
import MigsnapCore

extension Migsnap {
    struct UpgradeCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "upgrade",
            abstract: "Run `alembic upgrade` with a snapshot before every migration step.",
            discussion: """
            Use it instead of `alembic upgrade head`, e.g. as a deployment's release command. \
            migsnap plans the pending steps from the migration files, and for each one takes a \
            snapshot keyed to the revision before it (reason pre-upgrade), runs \
            `alembic upgrade <that revision>`, and checks that the version table moved; after the last \
            step it takes one more snapshot (reason post-upgrade, keyed to the revision reached), the \
            state that `rollback --keep-new` compares the application's later writes with. If a step \
            fails, its snapshot is restored atomically and the command exits 1 saying so. \
            Afterwards old snapshots are pruned per the retention policy. Before the first \
            snapshot, Alembic must start (`alembic --version`) and the migration directories must \
            exist; otherwise it exits 2 with nothing written.

            The project's Alembic Python is started once for all steps (see the README for how \
            the interpreter is found; MIGSNAP_NO_DRIVER=1 runs Alembic once per step instead). \
            Before anything is written, migsnap checks that Alembic starts (exit 2 if not) and \
            that env.py connects to the database migsnap snapshots (exit 4 if not).

            TARGET is anything `alembic upgrade` takes: head (default), heads, a revision or a \
            unique prefix, +N, REV+N, branch@head. Nothing pending: no snapshot is taken.

            A migration that lost data and was undone by a restore or rollback is guarded: \
            upgrade refuses it (exit 4) while its file is unchanged; --dry-run shows the guards \
            and exits as the real run would.
            """)

        @OptionGroup var location: StoreOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var alembic: AlembicOptions
        @OptionGroup var retention: RetentionOptions
        @OptionGroup var threads: ThreadsOptions
        @Argument(help: "The revision to upgrade to.")
        var target: String = "head"
        @Flag(help: "One snapshot, then a single `alembic upgrade TARGET` (instead of one step at a time).")
        var once = false
        @Flag(help: "If a migration fails, leave the database as Alembic left it instead of restoring the step's snapshot.")
        var noRestoreOnFailure = false
        @Flag(help: "Do not prune old snapshots afterwards.")
        var noPrune = false
        @Flag(help: "Apply guarded migrations (ones that lost data and were undone), even though their files are unchanged.")
        var force = false
        @Flag(help: "Print the plan and change nothing.")
        var dryRun = false
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database, self.alembic, retention)
                let url = try context.config.databaseURL()
                let engine = Context.engine(for: url)
                let options = UpgradeOptions(target: target, once: once, restoreOnFailure: !noRestoreOnFailure, force: force)
                // A broken policy file stops the run before any migration, --no-prune or not: it also
                // says how many hot copies to keep.
                let policy = try context.config.retentionPolicy()
                try context.config.requireMigrationDirectories()
                let alembic = context.alembic()
                var operation = MigrationRun(engine: engine, store: context.store, graph: try context.config.revisionGraph(using: alembic),
                                                 versionTable: context.config.versionTable, alembic: alembic,
                                                 log: Terminal.err)
                operation.keepHot = policy.keepHot
                if dryRun {
                    let plan = try operation.upgradePlan(options)
                    let refused = plan.refusal(force: force)
                    if output.json {
                        try Terminal.printJSON(DryRun(current: plan.current, steps: plan.steps, guards: plan.guards,
                                                      refused: refused.map { Refused($0) }))
                    } else {
                        Terminal.out(Render.upgradePlan(plan, force: force))
                    }
                    if let refused { throw MigrationRun.refusal(refused) }
                    return
                }
                // Nothing is written before a plan with steps, an Alembic that starts and an env.py
                // that connects to this database: not the store, not its lock, not a first deploy's
                // database. Nothing pending: no Python is started. The guards are read under the lock.
                let preliminary = try operation.upgradePlan(options, guards: false)
                var lock: StoreLock?
                if !preliminary.steps.isEmpty {
                    try alembic.prepare(log: Terminal.err)
                    lock = try context.store.lock(purpose: "upgrade \(target)", wait: 10)
                }
                // Planned again under the database lock: a run of another store may have moved the
                // revision while this one waited.
                let (plan, taken) = preliminary.steps.isEmpty ? (preliminary, [Manifest]()) : try context.withDatabaseLock(engine) {
                    let plan = try operation.upgradePlan(options)
                    guard !plan.steps.isEmpty else { return (plan, [Manifest]()) }
                    context.cleanDatabaseDebris(engine)
                    if let created = try url.createForFirstDeploy() {
                        Terminal.err("No database at \(created) yet: starting from an empty database at base.")
                    }
                    return (plan, try operation.upgrade(plan, options: options, progress: context.progress()))
                }
                if plan.steps.isEmpty {
                    let message = "Nothing to do: the database is already at \(Revisions.describe(plan.current)) (target \(UserText.line(target))); no snapshot taken."
                    if output.json { try Terminal.printJSON(Done(current: plan.current, snapshots: [])) } else { Terminal.out(message) }
                    return
                }
                let pruned = noPrune ? [] : try Prune.afterUpgrade(store: context.store, policy: policy, protected: Set(taken.map(\.id)), engine: engine)
                withExtendedLifetime(lock) {}
                let now = try engine.currentRevisions(versionTable: context.config.versionTable)
                if output.json {
                    try Terminal.printJSON(Done(current: now, snapshots: taken.map(\.id)))
                } else {
                    Terminal.out("Upgraded \(url.redacted) to \(Revisions.describe(now)): \(UserText.count(plan.steps.count, "step")), \(taken.count == 1 ? "snapshot" : "snapshots") \(taken.map(\.id).joined(separator: ", ")).")
                    if !pruned.isEmpty {
                        Terminal.out("Pruned \(UserText.count(pruned.count, "old snapshot")) per the retention policy: \(pruned.map(\.id).joined(separator: ", ")).")
                    }
                }
            }
        }

        struct DryRun: Encodable {
            var current: [String]
            var steps: [UpgradeStep]
            /// The open guards on the steps, in the order the steps run.
            var guards: [Guard]
            /// Why the real run would be refused (exit 4): the first guarded step; null when it would run.
            @NullEncoded var refused: Refused?
        }

        struct Refused: Codable, Equatable, Sendable {
            var revision: String
            var file: String
            var removed: String?
            var by: String
            var message: String

            init(_ g: Guard) {
                revision = g.revision
                file = g.file
                removed = g.removed
                by = g.by
                message = MigrationRun.refusal(g).message
            }
        }

        struct Done: Encodable {
            var current: [String]
            var snapshots: [String]
        }
    }
}

extension Render {
    static func upgradePlan(_ plan: UpgradePlan, force: Bool) -> String {
        guard !plan.steps.isEmpty else {
            return "Nothing to do: the database is already at \(Revisions.describe(plan.current))."
        }
        var lines = ["Upgrade plan: \(Revisions.describe(plan.current)) -> \(Revisions.describe(plan.target)), \(UserText.count(plan.steps.count, "step")), a snapshot before each"]
        for (i, step) in plan.steps.enumerated() {
            lines.append("  \(i + 1). \(Revisions.describe(step.from)) -> \(step.to)")
            if let g = plan.guards.first(where: { $0.revision == step.to }) {
                lines.append("     guarded: \(g.summary)\(force ? " (--force: applied anyway)" : "")")
            }
        }
        lines.append("  then a post-upgrade snapshot at \(Revisions.describe(plan.target)) (the state `rollback --keep-new` salvages against)")
        lines.append("Dry run: nothing was changed.")
        return lines.joined(separator: "\n")
    }
}

extension Context {
    func alembic() -> AlembicRunner {
        AlembicRunner(configuration: config, databaseURLOverride: urlOverride)
    }
}
