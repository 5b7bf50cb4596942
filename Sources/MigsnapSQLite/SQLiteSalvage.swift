import CSQLite
import Foundation
import MigsnapCore

/// `--keep-new` inside SQLite: S0 is unpacked into a staging file beside the database (as a
/// restore stages it), S1 and the live database are attached read-only, and the application's
/// changes since S1 are applied to the copy table by table, matched by primary key with SQL, so
/// SQLite streams the rows and memory stays flat. One transaction on the copy holds one read view
/// of the live database. The copy then replaces the database as a restore's does.
extension SQLiteEngine: SalvagingEngine {
    public func stageSalvage(s0: URL, s1: URL, scratch: ScratchSpace, versionTable: VersionTable,
                             progress: ProgressReporter) throws -> (StagedRestore, SalvageMerge) {
        defer { progress.finish() }
        try Self.checkSchema(versionTable)
        let staging = Self.stagingPath(besideDatabase: path)
        do {
            _ = try Self.verifiedImage(of: s0, at: staging, threads: threads, progress: progress)
            let after = scratch.file("s1.sqlite")
            _ = try Self.verifiedImage(of: s1, at: after, threads: threads, progress: progress)
            let copy = try Self.onImage(s0) { () -> Connection in
                let copy = try Connection(path: staging, mode: .readWriteAttachingURIs)
                // Scratch until the swap: a failure removes the file, so no journal is needed.
                try copy.execute("PRAGMA main.journal_mode = OFF; PRAGMA main.synchronous = OFF; PRAGMA foreign_keys = OFF; PRAGMA temp_store = FILE")
                return copy
            }
            try Self.onImage(s1) { try Self.attach(after, as: "s1", to: copy) }
            try onLive { try Self.attach(path, as: "c", to: copy) }
            progress.update(phase: "merging", done: 0, total: nil)
            let merge = try onLive { () -> SalvageMerge in
                try copy.execute("BEGIN")
                do {
                    let merge = try Salvage(db: copy, versionTable: versionTable.name).run()
                    try copy.execute("COMMIT")
                    return merge
                } catch {
                    try? copy.execute("ROLLBACK")
                    throw error
                }
            }
            try onLive { try copy.execute("DETACH s1; DETACH c") }
            let content = try Self.onImage(s0) {
                PayloadContent(revisions: try Self.revisions(in: copy, versionTable), rowCounts: try Self.rowCounts(in: copy))
            }
            return (SQLiteStagedRestore(engine: self, staging: staging, hotImage: nil, image: copy, content: content), merge)
        } catch {
            Self.removeDatabaseFiles(staging)
            throw error
        }
    }
}

/// The merge, on a connection whose main database is the copy of S0, with `s1` and `c` attached.
private struct Salvage {
    let db: Connection
    let versionTable: String

    struct Column {
        let name: String
        let type: String
        let pk: Int
    }

    func run() throws -> SalvageMerge {
        let in0 = try tables("main"), in1 = try tables("s1"), inC = try tables("c")
        if let extra = inC.subtracting(in1).sorted().first {
            throw SalvageRefusal.tableOnlyLive(extra)
        }
        if let gone = in1.subtracting(inC).sorted().first {
            throw SalvageRefusal.tableGoneSince(gone)
        }
        // Triggers of S0 would fire on the merge's own writes and change what is merged.
        let triggers = try db.rows("SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL")
        for trigger in triggers { try db.execute("DROP TRIGGER main.\(q(trigger[0] ?? ""))") }

        let new = in1.subtracting(in0)
        var merge = SalvageMerge(tables: [], droppedTables: [:])
        for name in in0.sorted() {
            if in1.contains(name) {
                merge.tables.append(try table(name))
                continue
            }
            let shape = Set(try columns(name, "main").map { "\($0.name) \($0.type.uppercased())" })
            for other in new.sorted() where Set(try columns(other, "s1").map { "\($0.name) \($0.type.uppercased())" }) == shape {
                throw SalvageRefusal.renamedTable(name, to: other)
            }
            merge.tables.append(SalvageTable(name: name, key: key(try columns(name, "main")), comeBack: try count("SELECT COUNT(*) FROM main.\(q(name))"),
                                             note: "dropped by the undone migration: comes back as in S0"))
        }
        for name in new { merge.droppedTables[name] = try count("SELECT COUNT(*) FROM c.\(q(name))") }
        try carrySequences()
        for trigger in triggers { try db.execute(trigger[1] ?? "") }
        try checkForeignKeys()
        return merge
    }

    // MARK: - One table by key

    private func table(_ name: String) throws -> SalvageTable {
        let c0 = try columns(name, "main"), c1 = try columns(name, "s1"), cC = try columns(name, "c")
        let n0 = c0.map(\.name), n1 = c1.map(\.name), nC = cC.map(\.name)
        try refuseRenamedColumns(name, c0, c1)
        let key = key(c0)
        guard !key.isEmpty else { return try tableWithoutKey(name, n0, n1, nC) }
        if let missing = key.first(where: { !n1.contains($0) || !nC.contains($0) }) {
            throw SalvageRefusal.keyColumnMissing(name, missing, inS1: !n1.contains(missing))
        }
        let t = q(name)
        let keys = key.map(q).joined(separator: ", ")
        func keysOf(_ alias: String) -> String { key.map { "\(alias).\(q($0))" }.joined(separator: ", ") }
        func match(_ x: String, _ y: String) -> String { key.map { "\(x).\(q($0)) IS \(y).\(q($0))" }.joined(separator: " AND ") }
        func differ(_ columns: [String]) -> String {
            columns.isEmpty ? "0" : columns.map { "x.\(q($0)) IS NOT y.\(q($0))" }.joined(separator: " OR ")
        }
        func inSet(_ set: String, _ alias: String) -> String { "EXISTS (SELECT 1 FROM temp.\(set) AS k WHERE \(match("k", alias)))" }

        // The key sets take S0's column types: with another affinity SQLite cannot search them by
        // key, and every lookup becomes a scan. `INT`, not `INTEGER`: no rowid alias, which would
        // number a NULL key instead of keeping it.
        let typed = key.map { column in
            let type = c0.first { $0.name == column }!.type
            return "\(q(column)) \(type.uppercased() == "INTEGER" ? "INT" : type)"
        }.joined(separator: ", ")
        for set in ["salvage_i", "salvage_u", "salvage_d", "salvage_m"] {
            try db.execute("DROP TABLE IF EXISTS temp.\(set); CREATE TEMP TABLE \(set)(\(typed), PRIMARY KEY(\(keys)))")
        }
        // Inserted, deleted and updated by the application since S1; changed by the migration (S0 against S1).
        try db.execute("INSERT INTO temp.salvage_i SELECT \(keysOf("x")) FROM c.\(t) AS x WHERE NOT EXISTS (SELECT 1 FROM s1.\(t) AS y WHERE \(match("x", "y")))")
        try db.execute("INSERT INTO temp.salvage_d SELECT \(keysOf("x")) FROM s1.\(t) AS x WHERE NOT EXISTS (SELECT 1 FROM c.\(t) AS y WHERE \(match("x", "y")))")
        let values1C = n1.filter { nC.contains($0) && !key.contains($0) }
        try db.execute("INSERT INTO temp.salvage_u SELECT \(keysOf("x")) FROM s1.\(t) AS x JOIN c.\(t) AS y ON \(match("x", "y")) WHERE \(differ(values1C))")
        let values01 = n0.filter { n1.contains($0) && !key.contains($0) }
        try db.execute("""
            INSERT OR IGNORE INTO temp.salvage_m
            SELECT \(keysOf("x")) FROM main.\(t) AS x WHERE NOT EXISTS (SELECT 1 FROM s1.\(t) AS y WHERE \(match("x", "y")))
            UNION ALL SELECT \(keysOf("x")) FROM s1.\(t) AS x WHERE NOT EXISTS (SELECT 1 FROM main.\(t) AS y WHERE \(match("x", "y")))
            UNION ALL SELECT \(keysOf("x")) FROM main.\(t) AS x JOIN s1.\(t) AS y ON \(match("x", "y")) WHERE \(differ(values01))
            """)
        var result = SalvageTable(name: name, key: key)
        result.inserted = try count("SELECT COUNT(*) FROM temp.salvage_i")
        result.updated = try count("SELECT COUNT(*) FROM temp.salvage_u")
        result.deleted = try count("SELECT COUNT(*) FROM temp.salvage_d")
        let touched = "(\(inSet("salvage_i", "m")) OR \(inSet("salvage_u", "m")) OR \(inSet("salvage_d", "m")))"
        result.conflicts = try count("SELECT COUNT(*) FROM temp.salvage_m AS m WHERE \(touched)")
        result.comeBack = try count("SELECT COUNT(*) FROM temp.salvage_m AS m WHERE NOT \(touched) AND EXISTS (SELECT 1 FROM main.\(t) AS y WHERE \(match("m", "y")))")
        result.conflictKeys = try db.rows("SELECT \(key.map { "quote(m.\(q($0)))" }.joined(separator: ", ")) FROM temp.salvage_m AS m WHERE \(touched) ORDER BY \(keysOf("m")) LIMIT 5")
            .map { SalvageRefusal.row(key, $0) }

        let shared = n0.filter { nC.contains($0) }
        if result.inserted + result.updated > 0 {
            for column in c0 where shared.contains(column.name) {
                let now = cC.first { $0.name == column.name }!.type
                guard now.uppercased() == column.type.uppercased() else {
                    throw SalvageRefusal.typeChanged(name, column.name, was: column.type.isEmpty ? "untyped" : column.type, now: now.isEmpty ? "untyped" : now)
                }
            }
        }
        let values = shared.filter { !key.contains($0) }
        do {
            try db.execute("DELETE FROM main.\(t) AS z WHERE \(inSet("salvage_d", "z")) OR \(inSet("salvage_i", "z"))")
            if !values.isEmpty {
                let list = values.map(q).joined(separator: ", ")
                try db.execute("""
                    UPDATE main.\(t) AS z SET (\(list)) = (SELECT \(values.map { "y.\(q($0))" }.joined(separator: ", ")) FROM c.\(t) AS y WHERE \(match("z", "y")))
                    WHERE \(inSet("salvage_u", "z"))
                    """)
            }
            // Rows the application inserted, and rows the migration added that the application then
            // changed: C's values in S0's columns (a column the migration dropped takes its default).
            try db.execute("""
                INSERT INTO main.\(t) (\(shared.map(q).joined(separator: ", ")))
                SELECT \(shared.map { "y.\(q($0))" }.joined(separator: ", ")) FROM c.\(t) AS y
                WHERE \(inSet("salvage_i", "y")) OR (\(inSet("salvage_u", "y")) AND NOT EXISTS (SELECT 1 FROM main.\(t) AS z WHERE \(match("y", "z"))))
                """)
        } catch let failure as SQLiteFailure where failure.code == SQLITE_CONSTRAINT {
            throw SalvageRefusal.doesNotFit(name, failure.message)
        }
        return result
    }

    /// A column only in S0 and one only in S1 of the same type, holding the same values by key (or
    /// no rows to tell by): a rename, which salvage cannot carry back.
    private func refuseRenamedColumns(_ name: String, _ c0: [Column], _ c1: [Column]) throws {
        let n0 = Set(c0.map(\.name)), n1 = Set(c1.map(\.name))
        let key = key(c0)
        for a in c0 where !n1.contains(a.name) {
            for b in c1 where !n0.contains(b.name) && b.type.uppercased() == a.type.uppercased() {
                var renamed = true
                if !key.isEmpty && key.allSatisfy(n1.contains) {
                    let join = "FROM main.\(q(name)) AS x JOIN s1.\(q(name)) AS y ON " + key.map { "x.\(q($0)) IS y.\(q($0))" }.joined(separator: " AND ")
                    let rows = try count("SELECT COUNT(*) \(join)")
                    let differing = try count("SELECT COUNT(*) \(join) WHERE x.\(q(a.name)) IS NOT y.\(q(b.name))")
                    renamed = rows == 0 || differing == 0
                }
                if renamed {
                    throw SalvageRefusal.renamedColumn(name, a.name, to: b.name)
                }
            }
        }
    }

    // MARK: - A table without a primary key

    /// Exact only where one side left it alone: untouched by the application since S1 (S0's rows
    /// stay), or untouched by the migration (the application's rows as they are now).
    private func tableWithoutKey(_ name: String, _ n0: [String], _ n1: [String], _ nC: [String]) throws -> SalvageTable {
        var result = SalvageTable(name: name, key: [])
        let untouched = try n1 == nC && same("s1", "c", name, n1)
        guard !untouched else {
            result.note = "no primary key; the application has not changed it since S1: as in S0"
            return result
        }
        let leftAlone = try n0 == n1 && same("main", "s1", name, n0)
        guard leftAlone else {
            throw SalvageRefusal.keylessChangedOnBothSides(name)
        }
        let list = n0.map(q).joined(separator: ", ")
        result.inserted = try excess("c", over: "s1", name, n0)
        result.deleted = try excess("s1", over: "c", name, n0)
        result.note = "no primary key; the undone migration left it alone: the application's rows as they are now"
        try db.execute("DELETE FROM main.\(q(name)); INSERT INTO main.\(q(name)) (\(list)) SELECT \(list) FROM c.\(q(name))")
        return result
    }

    /// Whether two schemas hold the same rows of a table, as multisets.
    private func same(_ a: String, _ b: String, _ name: String, _ columns: [String]) throws -> Bool {
        try excess(a, over: b, name, columns) == 0 && excess(b, over: a, name, columns) == 0
    }

    /// Rows of `a` beyond those of `b`, rows matched whole (NULLs alike), duplicates counted.
    private func excess(_ a: String, over b: String, _ name: String, _ columns: [String]) throws -> Int64 {
        let slots = columns.indices.map { "c\($0)" }
        let list = columns.map(q).joined(separator: ", ")
        func grouped(_ schema: String) -> String {
            "g\(schema)(\(slots.joined(separator: ", ")), n) AS (SELECT \(list), COUNT(*) FROM \(schema).\(q(name)) GROUP BY \(list))"
        }
        let match = slots.map { "g\(a).\($0) IS g\(b).\($0)" }.joined(separator: " AND ")
        return try count("""
            WITH \(grouped(a)), \(grouped(b))
            SELECT COALESCE(SUM(g\(a).n - COALESCE(g\(b).n, 0)), 0) FROM g\(a) LEFT JOIN g\(b) ON \(match) WHERE g\(a).n > COALESCE(g\(b).n, 0)
            """)
    }

    // MARK: - After the tables

    /// AUTOINCREMENT counters never go back below what the application has handed out.
    private func carrySequences() throws {
        guard try count("SELECT COUNT(*) FROM main.sqlite_master WHERE name = 'sqlite_sequence'") > 0,
              try count("SELECT COUNT(*) FROM c.sqlite_master WHERE name = 'sqlite_sequence'") > 0 else { return }
        try db.execute("""
            UPDATE main.sqlite_sequence AS z SET seq = (SELECT max(z.seq, y.seq) FROM c.sqlite_sequence AS y WHERE y.name = z.name)
            WHERE EXISTS (SELECT 1 FROM c.sqlite_sequence AS y WHERE y.name = z.name);
            INSERT INTO main.sqlite_sequence (name, seq)
            SELECT y.name, y.seq FROM c.sqlite_sequence AS y
            WHERE y.name IN (SELECT name FROM main.sqlite_master WHERE type = 'table')
              AND NOT EXISTS (SELECT 1 FROM main.sqlite_sequence AS z WHERE z.name = y.name);
            """)
    }

    private func checkForeignKeys() throws {
        let problems = try db.rows("PRAGMA main.foreign_key_check")
        guard !problems.isEmpty else { return }
        var named: [String] = []
        for problem in problems.prefix(5) {
            let table = problem[0] ?? "?", parent = problem[2] ?? "?"
            var row = problem[1].map { "rowid \($0)" } ?? "a row"
            let key = key(try columns(table, "main"))
            if let rowid = problem[1], !key.isEmpty,
               let values = try db.rows("SELECT \(key.map { "quote(\(q($0)))" }.joined(separator: ", ")) FROM main.\(q(table)) WHERE rowid = ?", [rowid]).first {
                row = SalvageRefusal.row(key, values)
            }
            named.append("\(table) \(row) refers to a missing row of \(parent)")
        }
        throw SalvageRefusal.brokenForeignKeys(named, more: problems.count - named.count)
    }

    // MARK: - Reading the schemas

    private func tables(_ schema: String) throws -> Set<String> {
        Set(try db.rows("""
            SELECT name FROM \(schema).sqlite_master
            WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
              AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'
            """).compactMap { $0.first ?? nil }).subtracting([versionTable])
    }

    private func columns(_ table: String, _ schema: String) throws -> [Column] {
        try db.rows("SELECT name, type, pk FROM pragma_table_info(?, ?) ORDER BY cid", [table, schema]).map {
            Column(name: $0[0] ?? "", type: $0[1] ?? "", pk: Int($0[2] ?? "0") ?? 0)
        }
    }

    private func key(_ columns: [Column]) -> [String] {
        columns.filter { $0.pk > 0 }.sorted { $0.pk < $1.pk }.map(\.name)
    }

    private func q(_ identifier: String) -> String { SQLiteEngine.quote(identifier) }

    private func count(_ sql: String) throws -> Int64 {
        Int64(try db.scalar(sql) ?? "0") ?? 0
    }
}
