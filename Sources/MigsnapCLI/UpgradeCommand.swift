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
            `alembic upgrade <that revision>`, and checks that the version table moved. If a step \
            fails, its snapshot is restored atomically and the command exits 1 saying so. \
            Afterwards old snapshots are pruned per the retention policy.

            The project's Alembic Python is started once for all steps (see the README for how \
            the interpreter is found; MIGSNAP_NO_DRIVER=1 runs Alembic once per step instead). \
            Before anything is written, migsnap checks that Alembic starts (exit 2 if not) and \
            that env.py connects to the database migsnap snapshots (exit 4 if not).

            TARGET is anything `alembic upgrade` takes: head (default), heads, a revision or a \
            unique prefix, +N, REV+N, branch@head. Nothing pending: no snapshot is taken.
            """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The revision to upgrade to.")
        var target: String = "head"
        @Flag(help: "One snapshot, then a single `alembic upgrade TARGET` (instead of one step at a time).")
        var once = false
        @Flag(help: "If a migration fails, leave the database as Alembic left it instead of restoring the step's snapshot.")
        var noRestoreOnFailure = false
        @Flag(help: "Do not prune old snapshots afterwards.")
        var noPrune = false
        @Flag(help: "Apply migrations that a restore or rollback undid, even though their files are unchanged.")
        var force = false
        @Flag(help: "Print the plan and change nothing.")
        var dryRun = false
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(global)
                let url = try context.config.databaseURL()
                let engine = Context.engine(for: url)
                let options = UpgradeOptions(target: target, once: once, restoreOnFailure: !noRestoreOnFailure, force: force)
                // A broken policy file must stop the run before any migration, not after.
                let policy = noPrune ? nil : try context.config.retentionPolicy()
                let alembic = context.alembic()
                let operation = MigrationRun(engine: engine, store: context.store, graph: try context.config.revisionGraph(using: alembic),
                                                 versionTable: context.config.versionTable, alembic: alembic,
                                                 log: Terminal.err)
                // Alembic that cannot start, or env.py that connects elsewhere, stops the run before
                // anything is written, the store included. Nothing pending: no Python is started.
                if !dryRun, try !operation.upgradePlan(options).steps.isEmpty { try alembic.prepare(log: Terminal.err) }
                let lock = dryRun ? nil : try context.store.lock(purpose: "upgrade \(target)", wait: 10)
                let plan = try operation.upgradePlan(options)
                if dryRun {
                    if output.json { try Terminal.printJSON(DryRun(current: plan.current, steps: plan.steps)) } else { Terminal.out(Render.upgradePlan(plan)) }
                    return
                }
                if plan.steps.isEmpty {
                    let message = "Nothing to do: the database is already at \(Revisions.describe(plan.current)) (target \(target)); no snapshot taken."
                    if output.json { try Terminal.printJSON(Done(current: plan.current, snapshots: [])) } else { Terminal.out(message) }
                    return
                }
                context.cleanDatabaseDebris(engine)
                if let created = try url.createForFirstDeploy() {
                    Terminal.err("No database at \(created) yet: starting from an empty database at base.")
                }
                let taken = try context.withDatabaseLock(engine) {
                    try operation.upgrade(plan, options: options, progress: context.progress())
                }
                let pruned = try policy.map { try Prune.afterUpgrade(store: context.store, policy: $0, protected: Set(taken.map(\.id))) } ?? []
                withExtendedLifetime(lock) {}
                let now = try engine.currentRevisions(versionTable: context.config.versionTable)
                if output.json {
                    try Terminal.printJSON(Done(current: now, snapshots: taken.map(\.id)))
                } else {
                    Terminal.out("Upgraded \(url.redacted) to \(Revisions.describe(now)): \(plan.steps.count) step(s), snapshots \(taken.map(\.id).joined(separator: ", ")).")
                    if !pruned.isEmpty { Terminal.out("Pruned \(pruned.count) old snapshot(s) per the retention policy.") }
                }
            }
        }

        struct DryRun: Encodable {
            var current: [String]
            var steps: [UpgradeStep]
        }

        struct Done: Encodable {
            var current: [String]
            var snapshots: [String]
        }
    }
}

extension Render {
    static func upgradePlan(_ plan: UpgradePlan) -> String {
        guard !plan.steps.isEmpty else {
            return "Nothing to do: the database is already at \(Revisions.describe(plan.current))."
        }
        var lines = ["Upgrade plan: \(Revisions.describe(plan.current)) -> \(Revisions.describe(plan.target)), \(plan.steps.count) step(s), a snapshot before each"]
        for (i, step) in plan.steps.enumerated() {
            lines.append("  \(i + 1). \(Revisions.describe(step.from)) -> \(step.to)")
        }
        lines.append("Dry run: nothing was changed.")
        return lines.joined(separator: "\n")
    }
}

extension Context {
    func alembic() -> AlembicRunner {
        AlembicRunner(configuration: config, databaseURLOverride: urlOverride)
    }
}
