import MigsnapCore

extension Render {
    /// Prints a salvage plan (`--keep-new`), then (unless a dry run) confirms, applies it and reports.
    static func execute(salvage prepared: PreparedSalvage, title: String, confirm: ConfirmOptions, json: Bool,
                        apply: () throws -> Manifest?) throws {
        let plan = prepared.plan
        if json && confirm.dryRun {
            try Terminal.printJSON(plan)
            return
        }
        let text = salvagePlan(prepared, title: title)
        if json { Terminal.err(text) } else { Terminal.out(text) }
        if confirm.dryRun {
            Terminal.out("Dry run: nothing was changed.")
            return
        }
        try Terminal.confirm("Replace \(plan.database) with snapshot \(plan.snapshot) plus the changes since \(plan.after)?", yes: confirm.yes)
        if let safety = try apply() {
            Terminal.err("Safety snapshot \(safety.id) holds the state before (\(Revisions.describe(safety.revisions))).")
        }
        if json {
            try Terminal.printJSON(plan)
        } else {
            Terminal.out("Salvaged \(plan.database): back at \(Revisions.describe(plan.target)) from snapshot \(plan.snapshot), with the application's changes since \(plan.after) kept.")
        }
    }

    static func salvagePlan(_ prepared: PreparedSalvage, title: String) -> String {
        let plan = prepared.plan
        var lines = [title]
        lines.append("  database:  \(plan.database)")
        lines.append("  S0:        \(prepared.before.id) (\(prepared.before.reason.rawValue), taken \(Format.time(prepared.before.createdAt))): the state before the migration")
        lines.append("  S1:        \(prepared.after.id) (\(prepared.after.reason.rawValue), taken \(Format.time(prepared.after.createdAt))): the state right after it")
        lines.append("  current:   \(Revisions.describe(plan.current))")
        lines.append("  target:    \(Revisions.describe(plan.target))")
        let equivalent = plan.target.isEmpty ? "base" : plan.target.joined(separator: " ")
        lines.append("  undone:    \(plan.undone.joined(separator: ", ")) (as `alembic downgrade \(equivalent)`, keeping the rows)")
        lines.append("  safety:    a pre-restore snapshot of the current state is taken first")
        lines.append("")
        lines.append("  Kept from since S1 (the application's inserts, updates, deletes); back from S0 (rows the")
        lines.append("  migration deleted or rewrote, untouched since); conflicts (both changed: the application's values):")
        let rows = plan.tables.map { t in
            [t.name, String(t.inserted), String(t.updated), String(t.deleted), String(t.comeBack), String(t.conflicts)]
        }
        lines.append(indented(Format.table(["TABLE", "INSERTED", "UPDATED", "DELETED", "COME BACK", "CONFLICTS"], rows)))
        for t in plan.tables {
            if let note = t.note { lines.append("  \(t.name): \(note)") }
            if !t.conflictKeys.isEmpty {
                let more = t.conflicts > Int64(t.conflictKeys.count) ? ", and \(t.conflicts - Int64(t.conflictKeys.count)) more" : ""
                lines.append("  \(t.name) conflicts: \(t.conflictKeys.joined(separator: ", "))\(more)")
            }
        }
        for (table, rows) in plan.droppedTables.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(table): created by the undone migration; dropped with it (\(UserText.count(Int(rows), "row")) now)")
        }
        return lines.joined(separator: "\n")
    }

    private static func indented(_ text: String) -> String {
        text.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
    }
}
