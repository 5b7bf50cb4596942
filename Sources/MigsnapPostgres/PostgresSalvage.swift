import Foundation
import MigsnapCore

/// `--keep-new` on PostgreSQL. S0 is staged exactly as a restore stages it (a verified scratch
/// database on the live database's server, swapped in by `DatabaseSwap` after the safety
/// snapshot); S1 is restored into a scratch database of its own, dropped when the merge ends, also
/// when it fails. The tables of S1 and of the live database are streamed into the staged copy as
/// helper schemas (`COPY … TO STDOUT` into `COPY … FROM STDIN`, row by row, so memory stays flat;
/// the live side in one REPEATABLE READ READ ONLY transaction, so it is one moment), and the merge
/// runs as SQL inside the copy, by primary key, with the rules of the SQLite merge.
///
/// Values travel and are compared in their text form (the types' output functions, under the same
/// session settings on every side, as `diff` compares them); they are written back into S0's
/// columns through S0's types. Key columns keep S0's types throughout, so rows are found through
/// S0's primary key index and hash joins, never by scanning per row. While the merge runs, S0's foreign keys are set aside and its
/// triggers disabled, so the order of the writes does not matter and no trigger fires twice; the
/// foreign keys are then checked row by row (a violation is refused, naming the rows) and added
/// back, which validates them again. Sequences end at or above what the application handed out.
/// The helper schemas are dropped before the copy is swapped in.
extension PostgresEngine: SalvagingEngine {
    public func stageSalvage(s0: URL, s1: URL, scratch: ScratchSpace, versionTable: VersionTable,
                             progress: ProgressReporter) throws -> (StagedRestore, SalvageMerge) {
        defer { progress.finish() }
        let staged = try stage(payload: s0, versionTable: versionTable, progress: progress)
        let after = try stage(payload: s1, versionTable: versionTable, progress: progress)
        let merge = try withExtendedLifetime(after) {
            progress.update(phase: "merging", done: 0, total: nil)
            // The connections close when the merge returns: a session on the copy would stop the swap's rename.
            return try PostgresSalvage(staging: staged.copy, s1: after.copy, live: target, versionTable: versionTable,
                                       context: target.redacted).run()
        }
        let copy = PostgresEngine(target: staged.copy)
        staged.content = PayloadContent(revisions: try copy.currentRevisions(versionTable: versionTable), rowCounts: try copy.rowCounts())
        return (staged, merge)
    }
}

/// One merge, on a connection to the staged copy of S0, reading S1's scratch copy and the live database.
final class PostgresSalvage {
    private let db: Connection
    private let s1: Connection
    private let live: Connection
    private let versionTable: String
    private let context: String

    private static let s1Schema = "migsnap_salvage_s1"
    private static let cSchema = "migsnap_salvage_c"
    /// The same text form of every value on every side (as `diff` sets it).
    private static let settings = """
        SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC';
        SET extra_float_digits = 3; SET bytea_output = 'hex'
        """

    struct Column {
        let name: String
        /// `format_type`: what values are cast to when written back, and what is compared for a type change.
        let type: String
        /// Position in the primary key, 0 if not in it.
        let key: Int
        let generated: Bool
    }

    /// S0's columns by table, read before the helpers are made: their key columns take S0's types.
    private var columns0: [String: [Column]] = [:]
    private var columns1: [String: [Column]] = [:]
    private var columnsC: [String: [Column]] = [:]
    /// The live database's sequences that have handed out a value: `schema.name` → last value.
    private var sequencesC: [String: String] = [:]

    init(staging: PostgresTarget, s1: PostgresTarget, live: PostgresTarget, versionTable: VersionTable, context: String) throws {
        db = try Connection(staging)
        self.s1 = try Connection(s1)
        self.live = try Connection(live)
        self.versionTable = "\(versionTable.schema ?? "public").\(versionTable.name)"
        self.context = context
    }

    func run() throws -> SalvageMerge {
        for side in [db, s1, live] { try execute(side, Self.settings, "Could not set up a session") }
        let in0 = try tables(db)
        for (name, relation) in in0 { columns0[name] = try columns(db, relation) }
        try execute(db, "BEGIN", "Could not start the merge")
        columns1 = try bring(from: s1, into: Self.s1Schema, "S1")
        try execute(live, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "Could not start a read of the live database")
        columnsC = try bring(from: live, into: Self.cSchema, "the live database")
        for row in try rows(live, "SELECT format('%s.%s', schemaname, sequencename), last_value::text FROM pg_sequences WHERE last_value IS NOT NULL") {
            if let name = row[0], let value = row[1] { sequencesC[name] = value }
        }
        try execute(live, "COMMIT", "Could not end the read of the live database")
        let merge = try merge(in0)
        try execute(db, "DROP SCHEMA \(q(Self.s1Schema)) CASCADE; DROP SCHEMA \(q(Self.cSchema)) CASCADE; COMMIT",
                    "Could not drop the merge's helper schemas")
        return merge
    }

    // MARK: - Bringing S1 and the live database in

    /// Every user table of `source` (but the version table) as a table in `schema` of the copy,
    /// named `schema.name`: its values as text, and S0's key columns in S0's type where the source
    /// has the same, so that rows are matched by key through S0's primary key index and hash joins.
    /// Returns the source's columns by table.
    private func bring(from source: Connection, into schema: String, _ side: String) throws -> [String: [Column]] {
        try execute(db, "CREATE SCHEMA \(q(schema))", "Could not create the helper schema \(schema) (is there one of that name in S0?)")
        var all: [String: [Column]] = [:]
        for (name, relation) in try tables(source).sorted(by: { $0.key < $1.key }) where name != versionTable {
            let columns = try self.columns(source, relation)
            all[name] = columns
            let helper = "\(q(schema)).\(q(name))"
            let s0 = columns0[name] ?? []
            func helperType(_ column: Column) -> String {
                s0.contains { $0.key > 0 && $0.name == column.name && $0.type == column.type } ? column.type : "text"
            }
            try execute(db, "CREATE UNLOGGED TABLE \(helper) (\(columns.map { "\(q($0.name)) \(helperType($0))" }.joined(separator: ", ")))",
                        "Could not create a helper table for \(name)")
            guard !columns.isEmpty else { continue }
            let list = columns.map { q($0.name) }.joined(separator: ", ")
            do {
                try source.copy("COPY (SELECT \(list) FROM \(relation)) TO STDOUT", into: db, "COPY \(helper) (\(list)) FROM STDIN")
            } catch let error as QueryError {
                throw MigsnapError.failed("Could not read table \(name) of \(side) for the merge: \(error.message)",
                                          hint: "The database \(context) was not changed.")
            }
            try execute(db, "ANALYZE \(helper)", "Could not analyze a helper table")
        }
        return all
    }

    // MARK: - The merge

    private func merge(_ in0: [String: String]) throws -> SalvageMerge {
        let names0 = Set(in0.keys).subtracting([versionTable]), in1 = Set(columns1.keys), inC = Set(columnsC.keys)
        if let extra = inC.subtracting(in1).sorted().first {
            throw SalvageRefusal.tableOnlyLive(extra)
        }
        if let gone = in1.subtracting(inC).sorted().first {
            throw SalvageRefusal.tableGoneSince(gone)
        }
        // S0's triggers would fire on the merge's own writes; its foreign keys would make the order of them matter.
        let triggers = try rows(db, """
            SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled::text FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND n.nspname NOT IN ($1, $2)
            """, [Self.s1Schema, Self.cSchema])
        for trigger in triggers {
            try execute(db, "ALTER TABLE \(trigger[0] ?? "") DISABLE TRIGGER \(q(trigger[1] ?? ""))", "Could not disable a trigger")
        }
        let foreignKeys = try self.foreignKeys()
        for key in foreignKeys {
            try execute(db, "ALTER TABLE \(key.child) DROP CONSTRAINT \(q(key.name))", "Could not set a foreign key aside")
        }

        let new = in1.subtracting(names0)
        var merge = SalvageMerge(tables: [], droppedTables: [:])
        for name in names0.sorted() {
            let relation = in0[name]!
            let c0 = columns0[name]!
            if in1.contains(name) {
                merge.tables.append(try table(name, relation, c0))
                continue
            }
            let shape = Set(c0.map { "\($0.name) \($0.type)" })
            for other in new.sorted() where Set(columns1[other]!.map { "\($0.name) \($0.type)" }) == shape {
                throw SalvageRefusal.renamedTable(name, to: other)
            }
            merge.tables.append(SalvageTable(name: name, key: key(c0), comeBack: try count("SELECT count(*) FROM \(relation)"),
                                             note: "dropped by the undone migration: comes back as in S0"))
        }
        for name in new { merge.droppedTables[name] = try count("SELECT count(*) FROM \(helper(Self.cSchema, name))") }
        try carrySequences()
        for trigger in triggers {
            let mode = ["R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"][trigger[2] ?? ""] ?? "ENABLE"
            try execute(db, "ALTER TABLE \(trigger[0] ?? "") \(mode) TRIGGER \(q(trigger[1] ?? ""))", "Could not enable a trigger again")
        }
        try checkForeignKeys(foreignKeys)
        return merge
    }

    // MARK: - One table by key

    private func table(_ name: String, _ t0: String, _ c0: [Column]) throws -> SalvageTable {
        let c1 = columns1[name]!, cC = columnsC[name]!
        let n0 = c0.map(\.name), n1 = c1.map(\.name), nC = cC.map(\.name)
        let t1 = helper(Self.s1Schema, name), tC = helper(Self.cSchema, name)
        try refuseRenamedColumns(name, t0, c0, c1)
        let key = key(c0)
        guard !key.isEmpty else { return try tableWithoutKey(name, t0, c0, n1, nC) }
        if let missing = key.first(where: { !n1.contains($0) || !nC.contains($0) }) {
            throw SalvageRefusal.keyColumnMissing(name, missing, inS1: !n1.contains(missing))
        }
        for column in c0 where key.contains(column.name) {
            for side in [c1, cC] {
                let type = side.first { $0.name == column.name }!.type
                guard type == column.type else { throw SalvageRefusal.typeChanged(name, column.name, was: column.type, now: type) }
            }
        }
        let keys = key.map(q).joined(separator: ", ")
        func keysOf(_ alias: String) -> String { key.map { "\(alias).\(q($0))" }.joined(separator: ", ") }
        // Key columns have S0's types everywhere: in S0, in the helpers, in the key sets.
        func match(_ x: String, _ y: String) -> String { key.map { "\(x).\(q($0)) = \(y).\(q($0))" }.joined(separator: " AND ") }
        let keyColumns = key.map { k in c0.first { $0.name == k }! }
        func inSet(_ set: String, _ alias: String) -> String { "EXISTS (SELECT 1 FROM pg_temp.\(set) AS k WHERE \(match("k", alias)))" }

        for set in ["salvage_i", "salvage_u", "salvage_d", "salvage_m"] {
            try execute(db, "DROP TABLE IF EXISTS pg_temp.\(set); CREATE TEMP TABLE \(set) (\(keyColumns.map { "\(q($0.name)) \($0.type)" }.joined(separator: ", ")), PRIMARY KEY (\(keys)))",
                        "Could not create a key set")
        }
        // Inserted, deleted and updated by the application since S1; changed by the migration (S0 against S1).
        try execute(db, "INSERT INTO salvage_i SELECT \(keysOf("x")) FROM \(tC) AS x WHERE NOT EXISTS (SELECT 1 FROM \(t1) AS y WHERE \(match("x", "y")))",
                    "Could not find the rows inserted since S1 in \(name)")
        try execute(db, "INSERT INTO salvage_d SELECT \(keysOf("x")) FROM \(t1) AS x WHERE NOT EXISTS (SELECT 1 FROM \(tC) AS y WHERE \(match("x", "y")))",
                    "Could not find the rows deleted since S1 in \(name)")
        let values1C = n1.filter { nC.contains($0) && !key.contains($0) }
        let differ1C = values1C.isEmpty ? "false" : values1C.map { "x.\(q($0)) IS DISTINCT FROM y.\(q($0))" }.joined(separator: " OR ")
        try execute(db, "INSERT INTO salvage_u SELECT \(keysOf("x")) FROM \(t1) AS x JOIN \(tC) AS y ON \(match("x", "y")) WHERE \(differ1C)",
                    "Could not find the rows updated since S1 in \(name)")
        let values01 = n0.filter { n1.contains($0) && !key.contains($0) }
        let differ01 = values01.isEmpty ? "false" : values01.map { "\(text("x.\(q($0))")) IS DISTINCT FROM y.\(q($0))" }.joined(separator: " OR ")
        try execute(db, """
            INSERT INTO salvage_m
            SELECT \(keysOf("x")) FROM \(t0) AS x WHERE NOT EXISTS (SELECT 1 FROM \(t1) AS y WHERE \(match("x", "y")))
            UNION SELECT \(keysOf("y")) FROM \(t1) AS y WHERE NOT EXISTS (SELECT 1 FROM \(t0) AS x WHERE \(match("x", "y")))
            UNION SELECT \(keysOf("y")) FROM \(t0) AS x JOIN \(t1) AS y ON \(match("x", "y")) WHERE \(differ01)
            """, "Could not find the rows the migration changed in \(name)")

        try execute(db, "ANALYZE salvage_i; ANALYZE salvage_u; ANALYZE salvage_d; ANALYZE salvage_m", "Could not analyze the key sets")
        var result = SalvageTable(name: name, key: key)
        result.inserted = try count("SELECT count(*) FROM salvage_i")
        result.updated = try count("SELECT count(*) FROM salvage_u")
        result.deleted = try count("SELECT count(*) FROM salvage_d")
        let touched = "(\(inSet("salvage_i", "m")) OR \(inSet("salvage_u", "m")) OR \(inSet("salvage_d", "m")))"
        result.conflicts = try count("SELECT count(*) FROM salvage_m AS m WHERE \(touched)")
        result.comeBack = try count("SELECT count(*) FROM salvage_m AS m WHERE NOT \(touched) AND EXISTS (SELECT 1 FROM \(t0) AS z WHERE \(match("z", "m")))")
        result.conflictKeys = try rows(db, "SELECT \(keysOf("m")) FROM salvage_m AS m WHERE \(touched) ORDER BY \(keysOf("m")) LIMIT 5").map { row in
            SalvageRefusal.row(key, zip(keyColumns, row).map { column, value in
                value.map { Self.isNumeric(column.type) ? $0 : "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }
            })
        }

        let shared = c0.filter { nC.contains($0.name) && !$0.generated }
        if result.inserted + result.updated > 0 {
            for column in shared {
                let now = cC.first { $0.name == column.name }!.type
                guard now == column.type else {
                    throw SalvageRefusal.typeChanged(name, column.name, was: column.type, now: now)
                }
            }
        }
        let values = shared.filter { !key.contains($0.name) }
        do {
            try db.execute("DELETE FROM \(t0) AS z USING (SELECT \(keys) FROM salvage_d UNION ALL SELECT \(keys) FROM salvage_i) AS k WHERE \(match("z", "k"))")
            if !values.isEmpty {
                try db.execute("""
                    UPDATE \(t0) AS z SET \(values.map { "\(q($0.name)) = y.\(q($0.name))::\($0.type)" }.joined(separator: ", "))
                    FROM \(tC) AS y JOIN salvage_u AS k ON \(match("k", "y")) WHERE \(match("z", "y"))
                    """)
            }
            // Rows the application inserted, and rows the migration added that the application then
            // changed: C's values in S0's columns (a column the migration dropped takes its default).
            try db.execute("""
                INSERT INTO \(t0) (\(shared.map { q($0.name) }.joined(separator: ", "))) OVERRIDING SYSTEM VALUE
                SELECT \(shared.map { "y.\(q($0.name))::\($0.type)" }.joined(separator: ", ")) FROM \(tC) AS y
                JOIN (SELECT \(keys) FROM salvage_i
                      UNION ALL SELECT \(keysOf("u")) FROM salvage_u AS u WHERE NOT EXISTS (SELECT 1 FROM \(t0) AS z WHERE \(match("z", "u")))) AS k
                  ON \(match("k", "y"))
                """)
        } catch let error as QueryError where error.sqlState?.hasPrefix("23") == true || error.sqlState?.hasPrefix("22") == true {
            throw SalvageRefusal.doesNotFit(name, UserText.line(error.message))
        } catch let error as QueryError {
            throw MigsnapError.failed("Could not merge table \(name): \(error.message)", hint: "The database \(context) was not changed.")
        }
        return result
    }

    /// A column only in S0 and one only in S1 of the same type, holding the same values by key (or
    /// no rows to tell by): a rename, which salvage cannot carry back.
    private func refuseRenamedColumns(_ name: String, _ t0: String, _ c0: [Column], _ c1: [Column]) throws {
        let n0 = Set(c0.map(\.name)), n1 = Set(c1.map(\.name))
        let key = key(c0)
        for a in c0 where !n1.contains(a.name) {
            for b in c1 where !n0.contains(b.name) && b.type == a.type {
                var renamed = true
                if !key.isEmpty && key.allSatisfy(n1.contains) {
                    let join = "FROM \(t0) AS x JOIN \(helper(Self.s1Schema, name)) AS y ON " + key.map { k in
                        let same = c0.first { $0.name == k }?.type == c1.first { $0.name == k }?.type
                        return "\(same ? "x.\(q(k))" : text("x.\(q(k))")) = y.\(q(k))"
                    }.joined(separator: " AND ")
                    let rows = try count("SELECT count(*) \(join)")
                    let differing = try count("SELECT count(*) \(join) WHERE \(text("x.\(q(a.name))")) IS DISTINCT FROM y.\(q(b.name))")
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
    private func tableWithoutKey(_ name: String, _ t0: String, _ c0: [Column], _ n1: [String], _ nC: [String]) throws -> SalvageTable {
        var result = SalvageTable(name: name, key: [])
        let t1 = helper(Self.s1Schema, name), tC = helper(Self.cSchema, name)
        let n0 = c0.map(\.name)
        func list(_ columns: [String], _ asText: Bool = false) -> String {
            columns.map { asText ? text(q($0)) : q($0) }.joined(separator: ", ")
        }
        func excess(_ a: String, over b: String) throws -> Int64 {
            try count("SELECT count(*) FROM (\(a) EXCEPT ALL \(b)) AS e")
        }
        let s1Rows = "SELECT \(list(n1)) FROM \(t1)", cRows = "SELECT \(list(n1)) FROM \(tC)"
        let untouched = try n1 == nC && excess(s1Rows, over: cRows) == 0 && excess(cRows, over: s1Rows) == 0
        guard !untouched else {
            result.note = "no primary key; the application has not changed it since S1: as in S0"
            return result
        }
        let s0Rows = "SELECT \(list(n0, true)) FROM \(t0)", s1Same = "SELECT \(list(n0)) FROM \(t1)"
        let leftAlone = try n0 == n1 && excess(s0Rows, over: s1Same) == 0 && excess(s1Same, over: s0Rows) == 0
        guard leftAlone else {
            throw SalvageRefusal.keylessChangedOnBothSides(name)
        }
        result.inserted = try excess("SELECT \(list(n0)) FROM \(tC)", over: s1Same)
        result.deleted = try excess(s1Same, over: "SELECT \(list(n0)) FROM \(tC)")
        result.note = "no primary key; the undone migration left it alone: the application's rows as they are now"
        let writable = c0.filter { !$0.generated }
        try execute(db, """
            DELETE FROM \(t0);
            INSERT INTO \(t0) (\(list(writable.map(\.name)))) OVERRIDING SYSTEM VALUE
            SELECT \(writable.map { "\(q($0.name))::\($0.type)" }.joined(separator: ", ")) FROM \(tC)
            """, "Could not merge table \(name)")
        return result
    }

    // MARK: - After the tables

    /// Sequences never go back below what the application has handed out.
    private func carrySequences() throws {
        for row in try rows(db, """
            SELECT format('%s.%s', schemaname, sequencename), format('%I.%I', schemaname, sequencename), last_value::text
            FROM pg_sequences WHERE schemaname NOT IN ($1, $2)
            """, [Self.s1Schema, Self.cSchema]) {
            guard let name = row[0], let relation = row[1], let now = sequencesC[name].flatMap({ Int64($0) }) else { continue }
            if let before = row[2].flatMap({ Int64($0) }), before >= now { continue }
            try execute(db, "SELECT setval($1::regclass, $2::bigint)", "Could not carry sequence \(name) forward", [relation, String(now)])
        }
    }

    struct ForeignKey {
        let name: String
        /// Relations as SQL text, and as `schema.name` for messages.
        let child: String
        let parent: String
        let childName: String
        let parentName: String
        let definition: String
        let columns: [String]
        let references: [String]
    }

    private func foreignKeys() throws -> [ForeignKey] {
        try rows(db, """
            SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
                   format('%s.%s', cn.nspname, cc.relname), format('%s.%s', pn.nspname, pc.relname), pg_get_constraintdef(c.oid),
                   (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
                   (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum)
            FROM pg_constraint c
            JOIN pg_class cc ON cc.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
            JOIN pg_class pc ON pc.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
            WHERE c.contype = 'f' AND c.conparentid = 0 ORDER BY 4, 1
            """).map { row in
            ForeignKey(name: row[0] ?? "", child: row[1] ?? "", parent: row[2] ?? "", childName: row[3] ?? "", parentName: row[4] ?? "",
                       definition: row[5] ?? "", columns: (row[6] ?? "").split(separator: ",").map(String.init),
                       references: (row[7] ?? "").split(separator: ",").map(String.init))
        }
    }

    /// Names the rows that refer to nothing, then adds each foreign key back (which validates it).
    private func checkForeignKeys(_ keys: [ForeignKey]) throws {
        var named: [String] = [], total = 0
        for fk in keys {
            let key = key(try columns(db, fk.child))
            let shown = key.isEmpty ? fk.columns : key
            let missing = fk.columns.map { "x.\(q($0)) IS NOT NULL" }.joined(separator: " AND ")
            let link = zip(fk.columns, fk.references).map { "y.\(q($1)) = x.\(q($0))" }.joined(separator: " AND ")
            let found = try rows(db, """
                SELECT count(*) OVER ()::text, \(shown.map { "x.\(q($0))::text" }.joined(separator: ", ")) FROM \(fk.child) AS x
                WHERE \(missing) AND NOT EXISTS (SELECT 1 FROM \(fk.parent) AS y WHERE \(link))
                ORDER BY \(shown.map { "x.\(q($0))" }.joined(separator: ", ")) LIMIT 5
                """)
            total += found.first?.first.flatMap { $0.flatMap { Int($0) } } ?? 0
            for row in found.prefix(max(0, 5 - named.count)) {
                named.append("\(fk.childName) \(SalvageRefusal.row(shown, Array(row.dropFirst()))) refers to a missing row of \(fk.parentName)")
            }
        }
        guard named.isEmpty else { throw SalvageRefusal.brokenForeignKeys(named, more: total - named.count) }
        for fk in keys {
            do {
                try db.execute("ALTER TABLE \(fk.child) ADD CONSTRAINT \(q(fk.name)) \(fk.definition)")
            } catch let error as QueryError where error.sqlState?.hasPrefix("23") == true {
                throw SalvageRefusal.brokenForeignKeys(["\(fk.childName): \(UserText.line(error.message))"], more: 0)
            } catch let error as QueryError {
                throw MigsnapError.failed("Could not add foreign key \(fk.name) back: \(error.message)",
                                          hint: "The database \(context) was not changed.")
            }
        }
    }

    // MARK: - Reading the schemas

    /// User tables by `schema.name`, as SQL relations.
    private func tables(_ side: Connection) throws -> [String: String] {
        var tables: [String: String] = [:]
        for row in try rows(side, PostgresEngine.userTables) {
            guard let schema = row[0], let name = row[1], ![Self.s1Schema, Self.cSchema].contains(schema) else { continue }
            tables["\(schema).\(name)"] = "\(q(schema)).\(q(name))"
        }
        return tables
    }

    private func columns(_ side: Connection, _ relation: String) throws -> [Column] {
        let generated = side.serverVersionNumber >= 120_000 ? "a.attgenerated <> ''" : "false"
        return try rows(side, """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod),
                   (SELECT k.n FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                    WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum)::text,
                   (\(generated))::text
            FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, [relation]).map {
            Column(name: $0[0] ?? "", type: $0[1] ?? "", key: Int($0[2] ?? "0") ?? 0, generated: $0[3] == "true")
        }
    }

    private func key(_ columns: [Column]) -> [String] {
        columns.filter { $0.key > 0 }.sorted { $0.key < $1.key }.map(\.name)
    }

    private static func isNumeric(_ type: String) -> Bool {
        ["smallint", "integer", "bigint", "numeric", "real", "double precision"].contains { type.hasPrefix($0) }
    }

    private func helper(_ schema: String, _ name: String) -> String { "\(q(schema)).\(q(name))" }

    private func q(_ identifier: String) -> String { quoteIdentifier(identifier) }

    /// A value of S0 in the text form COPY gives (the type's output function; `::text` differs for
    /// some types, such as boolean and inet).
    private func text(_ expression: String) -> String {
        "CASE WHEN \(expression) IS NULL THEN NULL ELSE concat(\(expression)) END"
    }

    // MARK: - Statements

    private func execute(_ side: Connection, _ sql: String, _ what: String, _ parameters: [String] = []) throws {
        do {
            try side.execute(sql, parameters)
        } catch let error as QueryError {
            throw MigsnapError.failed("\(what) for \(context): \(error.message)", hint: "The database was not changed.")
        }
    }

    private func rows(_ side: Connection, _ sql: String, _ parameters: [String] = []) throws -> [[String?]] {
        do {
            let result = try side.execute(sql, parameters)
            let width = result.columnCount
            return (0..<result.rowCount).map { r in (0..<width).map { result.value(row: r, column: $0) } }
        } catch let error as QueryError {
            throw MigsnapError.failed("The merge could not read \(context): \(error.message)", hint: "The database was not changed.")
        }
    }

    private func count(_ sql: String) throws -> Int64 {
        Int64(try rows(db, sql).first?.first.flatMap { $0 } ?? "0") ?? 0
    }
}
