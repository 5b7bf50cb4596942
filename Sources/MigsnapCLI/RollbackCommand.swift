import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct RollbackCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rollback",
            abstract: "Go back like `alembic downgrade`, but with the rows: restore the snapshot at the target revision.",
            // The target is collected by an array (see `words`), which argument-parser would show
            // as `[<target> ...]`; one target is what rollback takes.
            usage: "migsnap rollback [<options>] [<target>]",
            discussion: """
            TARGET is what `alembic downgrade` takes: -1 (default), -N, a revision or a unique \
            prefix, base. migsnap restores the newest snapshot keyed to the revisions the \
            database would be at, atomically, after printing the plan and taking a safety snapshot. \
            If there is no such snapshot it says so and falls back to `alembic downgrade TARGET` \
            (after a pre-downgrade safety snapshot), which does not bring back deleted rows; \
            --no-fallback refuses instead. Before that safety snapshot, migsnap checks that env.py \
            connects to the database it snapshots (exit 4 if not). If that downgrade fails half \
            way, the pre-downgrade snapshot is restored (--no-restore-on-failure leaves the \
            database as Alembic left it). A TARGET the database is already at is a no-op.

            --keep-new salvages instead: the snapshot before the bad migration (S0) with \
            the application's inserts, updates and deletes since the state right after it (S1: the \
            next step's pre-upgrade or the post-upgrade snapshot) applied on top, in S0's schema; \
            rows both changed take the application's values and are listed. Refused (exit 4) where \
            it cannot be exact: no S1, a table without a key whose rows both sides changed, a \
            renamed table or column, a changed column type, a broken constraint.

            An undone migration that lost data (it dropped a table or a column, or left fewer \
            rows, as far as the snapshots around its step show) is guarded: `upgrade` refuses to \
            apply the same unchanged file again unless --force (or `migsnap unguard REV`).
            """)

        @OptionGroup var location: StoreOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var alembic: AlembicOptions
        @OptionGroup var threads: ThreadsOptions
        @Flag(help: "Refuse instead of falling back to `alembic downgrade` when there is no snapshot.")
        var noFallback = false
        @Flag(help: "Salvage: restore the snapshot before the migration and apply on top the application's changes since the state right after it (see the README). Refused, with the reason, where that cannot be exact.")
        var keepNew = false
        @Flag(help: "If the fallback's `alembic downgrade` fails, leave the database as Alembic left it instead of restoring the pre-downgrade snapshot.")
        var noRestoreOnFailure = false
        @OptionGroup var confirm: ConfirmOptions
        @OptionGroup var output: JSONOption
        // `-1` and `-2` must work as typed for `alembic downgrade`; argument-parser would take them
        // for unknown options, so the target is collected here and checked in validate().
        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The revision to go back to (default: -1).", valueName: "target"))
        var words: [String] = []

        var target: String { words.first ?? "-1" }

        func validate() throws {
            if let flag = words.first(where: { $0.hasPrefix("--") || ($0.hasPrefix("-") && Int($0) == nil) }) {
                throw ValidationError("Unknown option '\(flag)'.")
            }
            if words.count > 1 {
                throw ValidationError("One target at most (got \(words.joined(separator: " "))).")
            }
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database, alembic)
                let engine = try context.liveEngine()
                // A dry run writes nothing: no store, no lock, no cleanup.
                let lock = confirm.dryRun ? nil : try context.store.lock(purpose: "rollback \(target)", wait: 10)
                if lock != nil { context.cleanDatabaseDebris(engine) }
                var operation = MigrationRun(engine: engine, store: context.store, graph: try context.config.revisionGraph(),
                                             versionTable: context.config.versionTable, alembic: context.alembic(),
                                             log: Terminal.err)
                operation.keepHot = context.keepHot
                if keepNew {
                    guard let prepared = try operation.salvagePlan(target: target, progress: context.progress()) else {
                        Terminal.out("Nothing to do: the database is already at the target \(target); nothing was changed.")
                        return
                    }
                    try Render.execute(salvage: prepared, title: "Salvage plan (like `alembic downgrade \(target)`, keeping the new rows)",
                                       confirm: confirm, json: output.json) {
                        try context.withDatabaseLock(engine) { try prepared.apply(progress: context.progress()) }
                    }
                    withExtendedLifetime(lock) {}
                    return
                }
                let (plan, route) = try operation.rollbackPlan(target: target, allowFallback: !noFallback, progress: context.progress())
                var manifest: Manifest?
                switch route {
                case .nothing:
                    if output.json { try Terminal.printJSON(plan) } else {
                        Terminal.out("Nothing to do: the database is already at \(Revisions.describe(plan.current)) (target \(target)); nothing was changed.")
                    }
                    return
                case .restore(let operation, _):
                    manifest = operation.manifest
                case .downgrade:
                    Terminal.warn("No snapshot at \(Revisions.describe(plan.target)): this rollback runs Alembic's downgrade(), which brings back the schema but NOT deleted rows.")
                }
                try Render.execute(plan: plan, manifest: manifest, title: "Rollback plan (like `alembic downgrade \(target)`)",
                                   downgrade: "alembic downgrade \(target)", versionTable: context.config.versionTable,
                                   confirm: confirm, json: output.json) {
                    try context.withDatabaseLock(engine) {
                        try operation.rollback(plan, route: route, target: target, restoreOnFailure: !noRestoreOnFailure,
                                               progress: context.progress())
                    }
                }
                withExtendedLifetime(lock) {}
            }
        }
    }
}
