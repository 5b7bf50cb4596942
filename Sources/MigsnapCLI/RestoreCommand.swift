import ArgumentParser
import Foundation
import MigsnapCore

extension Migsnap {
    struct RestoreCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restore",
            abstract: "Restore one snapshot atomically: all of it or none of it.",
            discussion: """
            In this order: the snapshot's checksum and content are verified; the plan is printed \
            (current and target revision, the migrations undone, per table the rows now and in the snapshot, and by primary key the rows added since, changed since and coming back); \
            you confirm; a safety snapshot of the current state is taken (reason pre-restore); the \
            snapshot is swapped in atomically; the result is checked. A dry run or a refusal stops \
            before the safety snapshot and changes nothing.

            With --to URL the snapshot goes into another database (for copying a few lost rows back \
            by hand) and the live database is not touched. MIGSNAP_RESTORE_TO_URL, when set, does the \
            same without putting the URL (and its password) on the command line.
            """)

        @OptionGroup var location: StoreOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var alembic: AlembicOptions
        @OptionGroup var threads: ThreadsOptions
        @Argument(help: "The snapshot id, or a unique prefix of it.")
        var id: String?
        @Option(help: ArgumentHelp("Restore the newest snapshot taken at this revision instead of naming an id.", valueName: "rev"))
        var revision: String?
        @Option(help: ArgumentHelp(
            "Restore into this database instead of the live one (created if missing, replaced if it exists; no safety snapshot). A password here is visible to other users in `ps`: put the URL in $MIGSNAP_RESTORE_TO_URL instead, or leave the password out and use PGPASSWORD or ~/.pgpass.",
            valueName: "url"))
        var to: String?
        @Flag(help: "Do not take a safety snapshot of the current state first.")
        var noSafetySnapshot = false
        @Flag(help: "Salvage: apply on top of the snapshot the application's changes since the state right after the migration that followed it (see `rollback --keep-new`).")
        var keepNew = false
        @OptionGroup var confirm: ConfirmOptions
        @OptionGroup var output: JSONOption

        func validate() throws {
            if (id == nil) == (revision == nil) {
                throw ValidationError("Name exactly one snapshot: an ID or --revision REV.")
            }
            if keepNew && (to != nil || noSafetySnapshot) {
                throw ValidationError("--keep-new changes the live database and always takes a safety snapshot: not with \(to != nil ? "--to" : "--no-safety-snapshot").")
            }
        }

        private static let toVariable = "MIGSNAP_RESTORE_TO_URL"

        private var intoAnotherDatabase: Bool {
            to != nil || !(ProcessInfo.processInfo.environment[Self.toVariable] ?? "").isEmpty
        }

        /// `--to URL` > `$MIGSNAP_RESTORE_TO_URL`: the database to restore into instead of the live one.
        private func otherDatabase() throws -> DatabaseURL? {
            let (raw, source) = to.map { ($0, "--to") }
                ?? (ProcessInfo.processInfo.environment[Self.toVariable].flatMap { $0.isEmpty ? nil : $0 }, Self.toVariable)
            guard let raw else { return nil }
            do {
                let url = try DatabaseURL.parse(raw)
                if to == nil { Terminal.err("Restoring into \(url.redacted) (from \(source)); the live database is not touched.") }
                return url
            } catch let error as MigsnapError {
                throw error.prefixed("From \(source)")
            }
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database, alembic)
                // A dry run writes nothing: no store, no lock, no cleanup.
                let lock = confirm.dryRun ? nil : try context.store.lock(purpose: "restore")
                let manifest = try id.map(context.store.resolve) ?? context.store.newest(atRevision: revision!)
                let engine = try otherDatabase().map(Context.engine(for:)) ?? context.liveEngine()
                if lock != nil { context.cleanDatabaseDebris(engine) }
                if keepNew {
                    let graph = context.graphIfAvailable()
                    let prepared = try SalvageOperation(store: context.store, engine: engine, versionTable: context.config.versionTable,
                                                        graph: graph, by: "restore \(manifest.id) --keep-new")
                        .prepare(before: manifest, undone: { RevisionGraph.undone(graph, from: $0, to: $1) }, progress: context.progress())
                    try Render.execute(salvage: prepared, title: "Salvage plan (restore \(manifest.id), keeping the new rows)",
                                       confirm: confirm, json: output.json) {
                        try context.withDatabaseLock(engine) { try prepared.apply(progress: context.progress()) }
                    }
                    withExtendedLifetime(lock) {}
                    return
                }
                var operation = RestoreOperation(
                    store: context.store, manifest: manifest, engine: engine, versionTable: context.config.versionTable,
                    safetySnapshot: !noSafetySnapshot && !intoAnotherDatabase,
                    guarding: intoAnotherDatabase ? nil : (context.graphIfAvailable(), "restore \(manifest.id)"),
                    undone: { [graph = context.graphIfAvailable()] in RevisionGraph.undone(graph, from: $0, to: $1) })
                operation.log = Terminal.err
                operation.keepHot = context.keepHot
                let prepared = try operation.prepare(progress: context.progress())
                let plan = prepared.plan
                try Render.execute(plan: plan, manifest: manifest, title: "Restore plan", versionTable: context.config.versionTable,
                                   confirm: confirm, json: output.json) {
                    try context.withDatabaseLock(engine) { try operation.apply(prepared, progress: context.progress()) }
                }
                withExtendedLifetime(lock) {}
            }
        }
    }
}

extension Render {
    /// Prints a restore plan, then (unless a dry run) confirms, applies it and reports.
    /// `downgrade` is the Alembic command a plan via downgrade runs.
    static func execute(plan: RestorePlan, manifest: Manifest?, title: String, downgrade: String? = nil, versionTable: VersionTable,
                        confirm: ConfirmOptions, json: Bool, apply: () throws -> Manifest?) throws {
        if json && confirm.dryRun {
            try Terminal.printJSON(plan)
            return
        }
        let text = restorePlan(plan, manifest: manifest, title: title, downgrade: downgrade, versionTable: versionTable)
        if json { Terminal.err(text) } else { Terminal.out(text) }
        if confirm.dryRun {
            Terminal.out("Dry run: nothing was changed.")
            return
        }
        let question = plan.via == .downgrade ? "Run `\(downgrade ?? "alembic downgrade")` on \(plan.database)?"
            : "Replace \(plan.database) with \(plan.snapshot.map { "snapshot \($0)" } ?? "the snapshot")?"
        try Terminal.confirm(question, yes: confirm.yes)
        let safety = try apply()
        if let safety {
            Terminal.err("Safety snapshot \(safety.id) holds the state before (\(Revisions.describe(safety.revisions))).")
        }
        if json {
            try Terminal.printJSON(plan)
        } else if plan.via == .downgrade {
            Terminal.out("Downgraded \(plan.database) to \(Revisions.describe(plan.target)) with Alembic; rows deleted by the undone migrations were NOT restored.")
        } else {
            Terminal.out("Restored \(plan.database) to \(Revisions.describe(plan.target))\(plan.snapshot.map { " from snapshot \($0)" } ?? "").")
        }
    }

    static func restorePlan(_ plan: RestorePlan, manifest: Manifest?, title: String, downgrade: String?, versionTable: VersionTable) -> String {
        var lines: [String] = []
        lines.append(title)
        lines.append("  database:  \(plan.database)")
        if let manifest {
            lines.append("  snapshot:  \(manifest.id) (\(manifest.reason.rawValue), taken \(Format.time(manifest.createdAt)))")
        }
        if plan.via == .downgrade {
            lines.append("  via:       `\(downgrade ?? "alembic downgrade")` (no snapshot at \(Revisions.describe(plan.target)))")
        }
        lines.append("  current:   \(Revisions.describe(plan.current))")
        lines.append("  target:    \(Revisions.describe(plan.target))")
        if plan.undone.isEmpty {
            lines.append("  undone:    no migrations")
        } else {
            let equivalent = plan.target.isEmpty ? "base" : plan.target.joined(separator: " ")
            lines.append("  undone:    \(plan.undone.joined(separator: ", ")) (as `alembic downgrade \(equivalent)`)")
        }
        let safety = plan.via == .downgrade ? SnapshotReason.preDowngrade : .preRestore
        lines.append("  safety:    " + (plan.safetySnapshot ? "a \(safety.rawValue) snapshot of the current state is taken first" : "no safety snapshot"))
        let tables = Set(plan.rowsNow.keys).union(plan.rowsInSnapshot?.keys ?? [:].keys).union(plan.unknownRows.keys).sorted()
        if !tables.isEmpty {
            lines.append("")
            lines.append(indented(rowTable(plan, tables, versionTable: versionTable)))
            for (table, why) in plan.unknownRows.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(table): rows now unknown (\(UserText.line(why)))")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Per table: the rows now and, for a restore, in the snapshot, and by key the rows added
    /// since (the restore discards them), changed since, and in the snapshot only (they come back).
    /// The version table's change is the plan's current and target, so it is not counted by key.
    private static func rowTable(_ plan: RestorePlan, _ tables: [String], versionTable: VersionTable) -> String {
        guard plan.via == .restore else {
            return Format.table(["TABLE", "ROWS NOW"], tables.map { [$0, plan.rowsNow[$0].map(String.init) ?? "-"] })
        }
        return Format.table(["TABLE", "ROWS NOW", "IN SNAPSHOT", "ADDED SINCE", "CHANGED SINCE", "COME BACK"], tables.map { t in
            let inSnapshot = plan.rowsInSnapshot.map { $0[t].map(String.init) ?? "-" } ?? "?"
            if plan.unknownRows[t] != nil {
                return [t, "unknown", inSnapshot, "unknown", "unknown", "unknown"]
            }
            let now = plan.rowsNow[t].map(String.init) ?? "-"
            guard !versionTable.names(t) else { return [t, now, inSnapshot, "-", "-", "-"] }
            return [t, now, inSnapshot] + [plan.discardedRows, plan.changedRows, plan.restoredRows].map { String($0[t] ?? 0) }
        })
    }

    private static func indented(_ text: String) -> String {
        text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
    }
}
