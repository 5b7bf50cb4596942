import Foundation
import MigsnapCore

/// `diff` inside SQLite: both states attached read-only to one in-memory connection, each table
/// compared with aggregate queries (NOT EXISTS / JOIN on the key, `IS` so that NULLs match), so
/// SQLite streams the rows and memory stays flat; only `--rows` brings rows into Swift, LIMITed.
extension SQLiteEngine {
    public func diff(_ a: URL, with b: URL?, scratch: ScratchSpace, scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff {
        defer { progress.finish() }
        let imageA = scratch.file("a.sqlite")
        _ = try Self.verifiedImage(of: a, at: imageA, threads: threads, progress: progress)
        var imageB = path
        if let b {
            imageB = scratch.file("b.sqlite")
            _ = try Self.verifiedImage(of: b, at: imageB, threads: threads, progress: progress)
        }
        return try compare(imageA, payload: a, with: imageB, payload: b, scope: scope)
    }

    /// Image `a` (unpacked from payload `a`) against image `b`, or the live database when `payloadB` is nil.
    func compare(_ a: String, payload payloadA: URL?, with b: String, payload payloadB: URL?, scope: DiffScope) throws -> DatabaseDiff {
        let connection = try Self.onImage(nil) { try Connection(path: ":memory:", mode: .memoryAttachingURIs) }
        try Self.onImage(payloadA) { try Self.attach(a, as: "a", to: connection) }
        if let payloadB {
            try Self.onImage(payloadB) { try Self.attach(b, as: "b", to: connection) }
        } else {
            try onLive { try Self.attach(b, as: "b", to: connection) }
        }
        // One read transaction: the live side is one moment, however long the comparison takes.
        return try onLive {
            try connection.execute("BEGIN")
            defer { try? connection.execute("COMMIT") }
            return try Comparison(connection: connection, scope: scope).run()
        }
    }

    static func attach(_ file: String, as schema: String, to connection: Connection) throws {
        // In a URI '?', '#' and '%' in the path must be escaped; mode=ro: never a write, not even a journal.
        var escaped = ""
        for c in file.unicodeScalars {
            switch c {
            case "%", "?", "#": escaped += String(format: "%%%02X", c.value)
            default: escaped.unicodeScalars.append(c)
            }
        }
        _ = try connection.rows("ATTACH ? AS \(schema)", ["file:" + escaped + "?mode=ro"])
    }
}

/// One comparison of schema `a` with schema `b` on a connection.
private struct Comparison {
    let connection: Connection
    let scope: DiffScope

    func run() throws -> DatabaseDiff {
        let inA = try tables("a"), inB = try tables("b")
        var names = Set(inA).union(inB).subtracting(scope.skipped)
        if let only = scope.table {
            guard names.contains(only) else {
                throw MigsnapError.invalidInput("Neither side has a table \(UserText.quoted(only)).",
                                                hint: "Run `migsnap diff` without --table to see the tables.")
            }
            names = [only]
        }
        var diff = DatabaseDiff()
        for name in names.sorted() {
            switch (inA.contains(name), inB.contains(name)) {
            case (true, false): diff.tablesOnlyInA.append(name)
            case (false, true): diff.tablesOnlyInB.append(name)
            default: diff.tables.append(try compare(name))
            }
        }
        return diff
    }

    private func tables(_ schema: String) throws -> [String] {
        // As `shape` counts them: virtual tables need their module, their shadow tables count.
        try connection.rows("""
            SELECT name FROM \(schema).sqlite_master
            WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
              AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'
            """).compactMap { $0.first ?? nil }
    }

    /// Column names in order, the primary key's columns in key order, and whether the key can never
    /// be NULL (declared NOT NULL, or the rowid itself): only then is it unique, NULLs being distinct.
    private func columns(_ table: String, _ schema: String) throws -> (all: [String], key: [String], keyNeverNull: Bool) {
        let rows = try connection.rows("SELECT name, pk, \"notnull\", upper(type) FROM pragma_table_info(?, ?) ORDER BY cid", [table, schema])
        let all = rows.compactMap { $0[0] }
        let keyRows = rows.filter { Int($0[1] ?? "0") ?? 0 > 0 }.sorted { Int($0[1]!)! < Int($1[1]!)! }
        let rowid = keyRows.count == 1 && keyRows[0][3] == "INTEGER"
        let keyNeverNull = !keyRows.isEmpty && (rowid || keyRows.allSatisfy { $0[2] == "1" })
        return (all, keyRows.compactMap { $0[0] }, keyNeverNull)
    }

    private func compare(_ name: String) throws -> DatabaseDiff.Table {
        let a = try columns(name, "a"), b = try columns(name, "b")
        let inB = Set(b.all), inA = Set(a.all)
        let common = a.all.filter { inB.contains($0) }
        // A's key where B has its columns, else B's where A has them: a key that was only widened
        // or narrowed still matches rows; without one, whole rows.
        let key = [a.key, b.key].first { !$0.isEmpty && $0.allSatisfy { inA.contains($0) && inB.contains($0) } }
        var table = DatabaseDiff.Table(
            name: name,
            key: DatabaseDiff.Key(kind: key == nil ? .wholeRow : .primaryKey, columns: key ?? common),
            columnsOnlyInA: a.all.filter { !inB.contains($0) },
            columnsOnlyInB: b.all.filter { !inA.contains($0) })
        let t = SQLiteEngine.quote(name)
        if let key {
            let values = common.filter { !key.contains($0) }
            let match = key.map { "y.\(q($0)) IS x.\(q($0))" }.joined(separator: " AND ")
            let differs = values.map { "x.\(q($0)) IS NOT y.\(q($0))" }.joined(separator: " OR ")
            let order = key.map { "x.\(q($0))" }.joined(separator: ", ")
            let onlyA = "FROM a.\(t) AS x WHERE NOT EXISTS (SELECT 1 FROM b.\(t) AS y WHERE \(match))"
            let onlyB = "FROM b.\(t) AS x WHERE NOT EXISTS (SELECT 1 FROM a.\(t) AS y WHERE \(match))"
            let changed = "FROM a.\(t) AS x JOIN b.\(t) AS y ON \(match) WHERE \(differs)"
            if key == a.key && key == b.key && a.keyNeverNull && b.keyNeverNull {
                // The same key on both sides, unique and never NULL: rows pair one to one, so one pass
                // over the pairs (and two counts) gives what the three NOT EXISTS / JOIN passes give.
                let pairs = try connection.rows("""
                    SELECT COUNT(*), \(values.isEmpty ? "0" : "COALESCE(SUM(\(differs)), 0)") FROM a.\(t) AS x JOIN b.\(t) AS y ON \(match)
                    """).first ?? []
                let matched = Int64(pairs.first.flatMap { $0 } ?? "0") ?? 0
                table.onlyInA = try count("SELECT COUNT(*) FROM a.\(t)") - matched
                table.onlyInB = try count("SELECT COUNT(*) FROM b.\(t)") - matched
                table.changed = Int64(pairs.dropFirst().first.flatMap { $0 } ?? "0") ?? 0
            } else {
                table.onlyInA = try count("SELECT COUNT(*) \(onlyA)")
                table.onlyInB = try count("SELECT COUNT(*) \(onlyB)")
                table.changed = values.isEmpty ? 0 : try count("SELECT COUNT(*) \(changed)")
            }
            if let limit = scope.rowLimit {
                let keyColumns = key.map { typed("x.\(q($0))") }.joined(separator: ", ")
                var rows = DatabaseDiff.Rows()
                rows.onlyInA = try fields(key, "SELECT \(keyColumns) \(onlyA) ORDER BY \(order) LIMIT \(limit)")
                rows.onlyInB = try fields(key, "SELECT \(keyColumns) \(onlyB) ORDER BY \(order) LIMIT \(limit)")
                if !values.isEmpty {
                    let pairs = values.map { "\(typed("x.\(q($0))")), \(typed("y.\(q($0))")), x.\(q($0)) IS NOT y.\(q($0))" }
                    let sql = "SELECT \(keyColumns), \(pairs.joined(separator: ", ")) \(changed) ORDER BY \(order) LIMIT \(limit)"
                    rows.changed = try connection.rows(sql).map { row in
                        let keyFields = DiffFields(Array(zip(key, stride(from: 0, to: key.count * 2, by: 2).map { value(row, $0) })))
                        var changes: [DatabaseDiff.ChangedRow.Change] = []
                        for (i, column) in values.enumerated() {
                            let at = key.count * 2 + i * 5
                            if row[at + 4] == "1" {
                                changes.append(.init(column: column, a: value(row, at), b: value(row, at + 2)))
                            }
                        }
                        return DatabaseDiff.ChangedRow(key: keyFields, changes: changes)
                    }
                }
                table.rows = rows
            }
        } else if common.isEmpty {
            // Rows without a column in common are all alike: only the numbers differ.
            let rowsA = try count("SELECT COUNT(*) FROM a.\(t)"), rowsB = try count("SELECT COUNT(*) FROM b.\(t)")
            table.onlyInA = max(0, rowsA - rowsB)
            table.onlyInB = max(0, rowsB - rowsA)
            if scope.rowLimit != nil { table.rows = DatabaseDiff.Rows() }
        } else {
            // Multisets: each distinct row with how often it occurs, matched NULL-safely; the excess counts.
            let slots = common.indices.map { "c\($0)" }
            func grouped(_ schema: String) -> String {
                let list = common.map(q).joined(separator: ", ")
                return "\(schema)(\(slots.joined(separator: ", ")), n) AS (SELECT \(list), COUNT(*) FROM \(schema).\(t) GROUP BY \(list))"
            }
            func excess(_ x: String, _ y: String) -> String {
                let match = slots.map { "\(x).\($0) IS \(y).\($0)" }.joined(separator: " AND ")
                return "FROM \(x) LEFT JOIN \(y) ON \(match) WHERE \(x).n > COALESCE(\(y).n, 0)"
            }
            let with = "WITH \(grouped("a")), \(grouped("b"))"
            let excessCount = { (x: String, y: String) throws -> Int64 in try self.count("\(with) SELECT COALESCE(SUM(\(x).n - COALESCE(\(y).n, 0)), 0) \(excess(x, y))") }
            table.onlyInA = try excessCount("a", "b")
            table.onlyInB = try excessCount("b", "a")
            if let limit = scope.rowLimit {
                func listed(_ x: String, _ y: String) throws -> [DiffFields] {
                    let columns = slots.map { typed("\(x).\($0)") }.joined(separator: ", ")
                    let order = slots.map { "\(x).\($0)" }.joined(separator: ", ")
                    let sql = "\(with) SELECT \(columns), \(x).n - COALESCE(\(y).n, 0) \(excess(x, y)) ORDER BY \(order) LIMIT \(limit)"
                    var listed: [DiffFields] = []
                    for row in try connection.rows(sql) where listed.count < limit {
                        let fields = DiffFields(Array(zip(common, stride(from: 0, to: common.count * 2, by: 2).map { value(row, $0) })))
                        let times = Int(row[common.count * 2] ?? "1") ?? 1
                        listed += Array(repeating: fields, count: min(times, limit - listed.count))
                    }
                    return listed
                }
                table.rows = DatabaseDiff.Rows(onlyInA: try listed("a", "b"), onlyInB: try listed("b", "a"))
            }
        }
        return table
    }

    private func q(_ identifier: String) -> String { SQLiteEngine.quote(identifier) }

    private func count(_ sql: String) throws -> Int64 {
        Int64(try connection.scalar(sql) ?? "0") ?? 0
    }

    /// Two result columns for one value: its type, and its text (blobs in hex).
    private func typed(_ expression: String) -> String {
        "typeof(\(expression)), CASE typeof(\(expression)) WHEN 'blob' THEN hex(\(expression)) ELSE \(expression) END"
    }

    private func value(_ row: [String?], _ at: Int) -> DiffValue {
        let text = row[at + 1] ?? ""
        switch row[at] {
        case "integer": return .integer(Int64(text) ?? 0)
        case "real": return .real(Double(text) ?? 0)
        case "text": return .text(text)
        case "blob": return .blob(hex: text)
        default: return .null
        }
    }

    private func fields(_ columns: [String], _ sql: String) throws -> [DiffFields] {
        try connection.rows(sql).map { row in
            DiffFields(columns.enumerated().map { ($1, value(row, $0 * 2)) })
        }
    }
}
