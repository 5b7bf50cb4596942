import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct RollbackCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rollback",
            abstract: "Go back like `alembic downgrade`, but with the rows: restore the snapshot at the target revision.",
            discussion: """
            TARGET is what `alembic downgrade` takes: -1 (default), -N, a revision or a unique \
            prefix, base. migsnap restores the newest snapshot keyed to the revision(s) the \
            database would be at, atomically, after printing the plan and taking a safety snapshot. \
            If there is no such snapshot it says so loudly and falls back to `alembic downgrade \
            TARGET` (after a pre-downgrade safety snapshot); --no-fallback refuses instead. Before \
            that safety snapshot, migsnap checks that env.py connects to the database it \
            snapshots (exit 4 if not).

            The migrations undone are remembered: `upgrade` refuses to apply the same unchanged \
            file again unless --force.
            """)

        @OptionGroup var global: GlobalOptions
        @Flag(help: "Refuse instead of falling back to `alembic downgrade` when there is no snapshot.")
        var noFallback = false
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
                let context = try Context(global)
                let engine = try context.liveEngine()
                let lock = try context.store.lock(purpose: "rollback \(target)", wait: 10)
                context.cleanDatabaseDebris(engine)
                let operation = MigrationRun(engine: engine, store: context.store, graph: try context.config.revisionGraph(),
                                                  versionTable: context.config.versionTable, alembic: context.alembic(),
                                                  log: Terminal.err)
                let (plan, route) = try operation.rollbackPlan(target: target, allowFallback: !noFallback, progress: context.progress())
                if plan.via == .downgrade {
                    Terminal.warn("No snapshot at \(Revisions.describe(plan.target)): this rollback runs Alembic's downgrade(), which brings back the schema but NOT deleted rows.")
                }
                var manifest: Manifest?
                if case .restore(let operation, _) = route { manifest = operation.manifest }
                try Render.execute(plan: plan, manifest: manifest, title: "Rollback plan (like `alembic downgrade \(target)`)", confirm: confirm, json: output.json) {
                    try context.withDatabaseLock(engine) {
                        try operation.rollback(plan, route: route, target: target, progress: context.progress())
                    }
                }
                withExtendedLifetime(lock) {}
            }
        }
    }
}
