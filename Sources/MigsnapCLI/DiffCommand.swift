import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct DiffCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Compare a snapshot with another snapshot or the live database, row by row.",
            discussion: """
            Per table, by primary key: rows only in A, rows only in B, rows whose values differ in \
            the columns both have; columns and tables on one side only. A table without a primary \
            key is compared by whole rows, as a multiset (KEY says "whole row"). Changes nothing: \
            the live database is read in one read-only transaction and the snapshots are checked \
            and unpacked into a scratch space that goes away with the run (on PostgreSQL, a scratch \
            database on the same server, dropped afterwards; the role needs CREATEDB).
            """)

        @OptionGroup var location: StoreOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var threads: ThreadsOptions
        @Argument(help: "Snapshot A: an id or a unique prefix.")
        var a: String
        @Argument(help: "Snapshot B (default: the live database).")
        var b: String?
        @Option(help: ArgumentHelp("Compare only this table.", valueName: "table"))
        var table: String?
        @Flag(help: "With --table: list the rows themselves (keys, and the columns that changed).")
        var rows = false
        @Option(help: ArgumentHelp("With --rows: at most this many rows of each kind (default: 20).", valueName: "n"))
        var limit: Int?
        @OptionGroup var output: JSONOption

        func validate() throws {
            if rows && table == nil { throw ValidationError("--rows needs --table.") }
            if limit != nil && !rows { throw ValidationError("--limit needs --rows.") }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit).") }
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database)
                let snapshotA = try context.store.resolve(a)
                let snapshotB = try b.map(context.store.resolve)
                let engine = snapshotB == nil ? try context.liveEngine() : context.engineForReading(snapshotA)
                let report = try DiffSnapshots.run(
                    snapshotA, with: snapshotB, store: context.store, engine: engine, versionTable: context.config.versionTable,
                    scope: DiffScope(table: table, rowLimit: rows ? (limit ?? 20) : nil), progress: context.progress())
                if output.json {
                    try Terminal.printJSON(report)
                } else {
                    Terminal.out(Render.diff(report))
                }
            }
        }
    }
}

extension Render {
    static func diff(_ report: DiffSnapshots.Report) -> String {
        func side(_ s: DiffSnapshots.Side) -> String {
            (s.id.map { "snapshot \($0)" } ?? "the live database \(s.database)") + " (\(Revisions.describe(s.revisions)))"
        }
        var lines = ["A: \(side(report.a))", "B: \(side(report.b))", ""]
        let diff = report.diff
        if !diff.tables.isEmpty {
            lines.append(Format.table(["TABLE", "KEY", "ONLY IN A", "ONLY IN B", "CHANGED"], diff.tables.map {
                [$0.name, $0.key.description, String($0.onlyInA), String($0.onlyInB),
                 $0.key.kind == .wholeRow ? "-" : String($0.changed)]
            }))
        }
        var notes: [String] = []
        for t in diff.tables {
            if !t.columnsOnlyInA.isEmpty { notes.append("Columns only in A: " + t.columnsOnlyInA.map { "\(t.name).\($0)" }.joined(separator: ", ")) }
            if !t.columnsOnlyInB.isEmpty { notes.append("Columns only in B: " + t.columnsOnlyInB.map { "\(t.name).\($0)" }.joined(separator: ", ")) }
        }
        if !diff.tablesOnlyInA.isEmpty { notes.append("Tables only in A: " + diff.tablesOnlyInA.joined(separator: ", ")) }
        if !diff.tablesOnlyInB.isEmpty { notes.append("Tables only in B: " + diff.tablesOnlyInB.joined(separator: ", ")) }
        if !notes.isEmpty { lines += [""] + notes }
        for t in diff.tables {
            guard let rows = t.rows else { continue }
            lines += listed("Only in A", rows.onlyInA.map(\.description), of: t.onlyInA, in: t.name)
            lines += listed("Only in B", rows.onlyInB.map(\.description), of: t.onlyInB, in: t.name)
            lines += listed("Changed", rows.changed.map { row in
                row.key.description + "  " + row.changes.map { "\($0.column): \($0.a.literal) -> \($0.b.literal)" }.joined(separator: ", ")
            }, of: t.changed, in: t.name)
        }
        if diff.isSame { lines.append("No differences.") }
        return lines.joined(separator: "\n")
    }

    private static func listed(_ title: String, _ shown: [String], of total: Int64, in table: String) -> [String] {
        guard total > 0 else { return [] }
        var lines = ["", "\(title) (\(table), \(total)):"] + shown.map { "  " + $0 }
        if Int64(shown.count) < total { lines.append("  … and \(total - Int64(shown.count)) more (--limit)") }
        return lines
    }
}
