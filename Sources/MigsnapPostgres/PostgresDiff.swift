import Foundation
import MigsnapCore

/// `diff` on PostgreSQL: each snapshot is checked and restored into a scratch database on the
/// live database's server, exactly as a restore stages it (and dropped when the comparison ends,
/// also when it fails); the two sides are then compared table by table (fingerprints first, then
/// binary COPY streams in key order, merged), so memory stays flat whatever the size of the tables.
extension PostgresEngine {
    public func diff(_ a: URL, with b: URL?, scratch: ScratchSpace, scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff {
        defer { progress.finish() }
        // The revisions a staging reads are not needed here; any version table does.
        let stagedA = try stage(payload: a, versionTable: VersionTable(), progress: progress)
        let stagedB = try b.map { try stage(payload: $0, versionTable: VersionTable(), progress: progress) }
        return try withExtendedLifetime((stagedA, stagedB)) {
            try PostgresComparison(a: stagedA.copy, b: stagedB?.copy ?? target, scope: scope, progress: progress).run()
        }
    }
}

/// One comparison of database `a` with database `b` on one server.
///
/// Both sides are read in one REPEATABLE READ READ ONLY transaction each (the live side is one
/// moment, and is never written), with the same session settings, so that a value's text form is
/// the same on both sides: values are compared by their text form (`col::text`, see `text`), NULL only
/// equal to NULL. A column whose type differs between the sides is compared by text too: values
/// that print alike (an int widened to bigint, varchar to text) match, values that print
/// differently (numeric(10,2) `1.50` against numeric(10,3) `1.500`) count as changed.
///
/// A table is first fingerprinted on both sides (its count and the sum of a 64-bit hash of each
/// row's text form); equal fingerprints mean an equal table, which is not read further. Other
/// tables are streamed and their rows merged in key order. Both servers sort the same way because
/// the order is made independent of collations: integer key columns (on both sides) by value,
/// every other column by its text form under the "C" collation, which compares bytes as `memcmp`
/// does here. Where only counts are wanted, a row's values travel as one hash of their text forms.
final class PostgresComparison {
    private let a: Connection
    private let b: Connection
    /// B's whole-row fingerprints, where they were computed before the comparison (`LiveSide`).
    private let fingerprintsB: [String: LiveSide.Fingerprint]
    private let scope: DiffScope
    private let progress: ProgressReporter

    convenience init(a: PostgresTarget, b: PostgresTarget, scope: DiffScope, progress: ProgressReporter) throws {
        let other = try Connection(b)
        try Self.begin(other)
        try self.init(a: a, b: other, fingerprintsB: [:], scope: scope, progress: progress)
    }

    /// A against the live database read by `live` (in its transaction, with its fingerprints).
    convenience init(a: PostgresTarget, live: LiveSide, scope: DiffScope, progress: ProgressReporter) throws {
        try self.init(a: a, b: live.connection, fingerprintsB: live.fingerprints(), scope: scope, progress: progress)
    }

    private init(a: PostgresTarget, b: Connection, fingerprintsB: [String: LiveSide.Fingerprint], scope: DiffScope,
                 progress: ProgressReporter) throws {
        self.a = try Connection(a)
        try Self.begin(self.a)
        self.b = b
        self.fingerprintsB = fingerprintsB
        self.scope = scope
        self.progress = progress
    }

    /// The session settings that make a value's text form the same on both sides, and the read.
    static func begin(_ side: Connection) throws {
        // JIT compiling the row expressions costs more than it saves on a scan (measured: a
        // 4M-row key-ordered stream 2.43 s with it, 2.10 s without); the setting came with 11.
        let jit = side.serverVersionNumber >= 110_000 ? "SET jit = off;" : ""
        try run(side, """
            SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC';
            SET extra_float_digits = 1; SET bytea_output = 'hex'; \(jit)
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
            """, "Could not start a read")
    }

    deinit {
        _ = try? a.execute("ROLLBACK")
        _ = try? b.execute("ROLLBACK")
    }

    func run() throws -> DatabaseDiff {
        defer { progress.finish() }
        let inA = try Self.tables(a), inB = try Self.tables(b)
        var names = Set(inA.keys).union(inB.keys).subtracting(scope.skipped)
        if let only = scope.table {
            // `orders` names public.orders, or the one table of that name in another schema.
            let matches = [only, "public.\(only)"].contains(where: names.contains)
                ? [names.contains(only) ? only : "public.\(only)"]
                : names.filter { $0.hasSuffix(".\(only)") }.sorted()
            guard matches.count == 1 else {
                throw MigsnapError.invalidInput(
                    matches.isEmpty ? "Neither side has a table \(UserText.quoted(only))." : "Several tables are named \(UserText.quoted(only)).",
                    hint: matches.isEmpty ? "Run `migsnap diff` without --table to see the tables." : "Name one of \(matches.joined(separator: ", ")).")
            }
            names = [matches[0]]
        }
        var diff = DatabaseDiff()
        for name in names.sorted() {
            switch (inA[name], inB[name]) {
            case (_?, nil): diff.tablesOnlyInA.append(name)
            case (nil, _?): diff.tablesOnlyInB.append(name)
            case (let x?, let y?): diff.tables.append(try compare(name, x, y))
            default: break
            }
        }
        return diff
    }

    /// Tables by `schema.name`, each as a quoted relation name.
    static func tables(_ side: Connection) throws -> [String: String] {
        let result = try run(side, PostgresEngine.userTables, "Could not list the tables")
        var tables: [String: String] = [:]
        for row in 0..<result.rowCount {
            guard let schema = result.value(row: row, column: 0), let name = result.value(row: row, column: 1) else { continue }
            tables["\(schema).\(name)"] = quoteIdentifier(schema) + "." + quoteIdentifier(name)
        }
        return tables
    }

    struct Column: Equatable {
        var name: String
        /// The base type's name (`int4`, `text`, …), which decides how listed values are shown.
        var type: String
        /// Two values of the column hash alike under the type's own hash only when their text
        /// forms are equal (but for chance): int2 and int4, booleans, uuids, dates, bytea, and
        /// strings under a deterministic collation (`char(n)`, whose equality ignores trailing
        /// blanks, only with its length, which pads every value alike). Not numeric (`1.0` =
        /// `1.00`), floats (`-0` = `0`), interval (`1 day` = `24 hours`) or jsonb, whose equality
        /// is looser than their text; not int8, time or the timestamps, whose hash folds 64 bits
        /// into 32 (`1` and `4294967296` hash alike); nothing else.
        var hashable = false
        var isInteger: Bool { ["int2", "int4", "int8"].contains(type) }

        static let hashableTypes: Set<String> = ["int2", "int4", "bool", "uuid", "date", "bytea", "text", "varchar", "bpchar"]
    }

    /// Columns in order, and the primary key's columns in key order.
    static func columns(_ side: Connection, _ relation: String) throws -> (all: [Column], key: [String]) {
        // Collations that are not deterministic came with 12.
        let deterministic = side.serverVersionNumber >= 120_000
            ? "COALESCE((SELECT c.collisdeterministic FROM pg_collation c WHERE c.oid = a.attcollation), true)"
            : "true"
        let result = try run(side, """
            SELECT a.attname, t.typname,
                   (SELECT k.n FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                    WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum),
                   a.atttypmod, \(deterministic)
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, "Could not read the columns of \(relation)", [relation])
        var all: [Column] = [], key: [(Int, String)] = []
        for row in 0..<result.rowCount {
            guard let name = result.value(row: row, column: 0) else { continue }
            let type = result.value(row: row, column: 1) ?? ""
            let typmod = result.value(row: row, column: 3).flatMap { Int($0) } ?? -1
            let hashable = Column.hashableTypes.contains(type) && (type != "bpchar" || typmod > 0)
                && result.value(row: row, column: 4) == "t"
            all.append(Column(name: name, type: type, hashable: hashable))
            if let n = result.value(row: row, column: 2).flatMap({ Int($0) }) { key.append((n, name)) }
        }
        return (all, key.sorted { $0.0 < $1.0 }.map(\.1))
    }

    /// A column's text form (the alias `t`), as its type prints it, which is how a whole row's
    /// text shows it too: `::text`, except for `char(n)`, which that cast strips of trailing blanks.
    static func text(_ column: String, _ type: Column) -> String {
        let value = "t.\(quoteIdentifier(column))"
        return type.type == "bpchar" ? "textin(bpcharout(\(value)))" : "\(value)::text"
    }

    /// The 64-bit hash of a table's whole row (`t.*`: a bare `t` would be a column of that name,
    /// where there is one) that its fingerprint sums: each
    /// column's own hash where every column's type allows it (see `Column.hashable`; 14 and
    /// later), which is much cheaper than printing the row; else the hash of its text form.
    static func wholeRowHash(_ columns: [Column], serverVersion: Int) -> String {
        serverVersion >= 140_000 && columns.allSatisfy(\.hashable)
            ? "hash_record_extended(t.*, 0)"
            : "hashtextextended((t.*)::text COLLATE \"C\", 0)"
    }

    private func compare(_ name: String, _ relationA: String, _ relationB: String) throws -> DatabaseDiff.Table {
        progress.update(phase: "comparing \(name)", done: 0, total: nil)
        let colsA = try Self.columns(a, relationA), colsB = try Self.columns(b, relationB)
        let namesA = Set(colsA.all.map(\.name)), namesB = Set(colsB.all.map(\.name))
        let common = colsA.all.map(\.name).filter { namesB.contains($0) }
        // As SQLite's diff: A's key where B has its columns, else B's where A has them; else whole rows.
        let key = [colsA.key, colsB.key].first { !$0.isEmpty && $0.allSatisfy { namesA.contains($0) && namesB.contains($0) } }
        var table = DatabaseDiff.Table(
            name: name,
            key: DatabaseDiff.Key(kind: key == nil ? .wholeRow : .primaryKey, columns: key ?? common),
            columnsOnlyInA: colsA.all.map(\.name).filter { !namesB.contains($0) },
            columnsOnlyInB: colsB.all.map(\.name).filter { !namesA.contains($0) })
        if key == nil && common.isEmpty {
            // Rows without a column in common are all alike: only the numbers differ.
            let rowsA = try count(a, relationA), rowsB = try count(b, relationB)
            table.onlyInA = max(0, rowsA - rowsB)
            table.onlyInB = max(0, rowsB - rowsA)
            if scope.rowLimit != nil { table.rows = DatabaseDiff.Rows() }
            return table
        }
        let matched = key ?? common
        let values = key == nil ? [] : common.filter { !matched.contains($0) }
        let typesA = Dictionary(colsA.all.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let typesB = Dictionary(colsB.all.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let byValue = matched.map { typesA[$0]!.isInteger && typesB[$0]!.isInteger }
        // hashtextextended (64 bits) came with PostgreSQL 11; before it, md5 for the streamed rows
        // and no fingerprint.
        let modern = a.serverVersionNumber >= 110_000
        // A 64-bit hash of these columns of a row (the alias `t`), the same on both sides for the
        // same values: where the tables are alike, the whole row's (see `wholeRowHash`); else
        // each column's own hash where its type is the same on both sides and allows it, or the
        // text form of the row, each column itself where both sides have the same type (its
        // output is then the same function's), else its text form, as the per-column comparison
        // does. Before 11, md5 of the text form.
        func rowHash(_ columns: [String], _ types: [String: Column]) -> String {
            let sameTable = colsA.all == colsB.all && Set(columns) == namesA && columns.count == colsA.all.count
            if sameTable && modern { return Self.wholeRowHash(colsA.all, serverVersion: a.serverVersionNumber) }
            let alike = columns.allSatisfy { typesA[$0]! == typesB[$0]! }
            let fields = columns.map { column in
                typesA[column]!.type == typesB[column]!.type ? "t.\(quoteIdentifier(column))" : Self.text(column, types[column]!)
            }.joined(separator: ", ")
            if alike && a.serverVersionNumber >= 140_000 && columns.allSatisfy({ typesA[$0]!.hashable }) {
                return "hash_record_extended(ROW(\(fields)), 0)"
            }
            let text = sameTable ? "(t.*)::text" : "ROW(\(fields))::text"
            return modern ? "hashtextextended(\(text) COLLATE \"C\", 0)" : "md5(\(text))"
        }
        // Equal fingerprints (count, and the sum of a 64-bit hash of every row) on both sides:
        // the table is the same; nothing to stream.
        if modern {
            let whole = rowHash(matched + values, typesA), wholeB = rowHash(matched + values, typesB)
            let sideA = Self.fingerprint(hash: whole, of: relationA)
            // B's was computed already where it is of the same columns and hash.
            let early = fingerprintsB[name].flatMap { $0.columns == colsB.all && $0.hash == wholeB ? $0 : nil }
            let (fa, fb) = try early.map { (try Self.run(a, sideA, "Could not read \(name)"), $0) }
                ?? { () throws -> (QueryResult, LiveSide.Fingerprint) in
                    let (x, y) = try both("Could not read \(name)", sideA, Self.fingerprint(hash: wholeB, of: relationB))
                    return (x, LiveSide.Fingerprint(columns: colsB.all, hash: wholeB, count: y.value(row: 0, column: 0), sum: y.value(row: 0, column: 1)))
                }()
            if fa.value(row: 0, column: 0) == fb.count && fa.value(row: 0, column: 1) == fb.sum {
                if scope.rowLimit != nil { table.rows = DatabaseDiff.Rows() }
                return table
            }
        }
        // Without rows to show (a plan counts), a row's values travel as one hash.
        let hashed = scope.rowLimit == nil && !values.isEmpty
        let compared = hashed ? 1 : values.count
        func query(_ relation: String, _ types: [String: Column]) -> String {
            // Qualified: a bare name in ORDER BY would sort by the output column of that name, the text.
            // Keys only compared (not listed) travel in binary where they are integers on both sides.
            let keys = zip(matched, byValue).map { column, byValue in
                hashed && byValue ? "t.\(quoteIdentifier(column))::int8" : Self.text(column, types[column]!)
            }
            // The hash travels in binary (8 bytes; md5 as its text), compared byte for byte.
            let rest = hashed ? [rowHash(values, types)] : values.map { Self.text($0, types[$0]!) }
            let order = zip(matched, byValue).map { column, byValue in
                byValue ? "t.\(quoteIdentifier(column))" : "\(Self.text(column, types[column]!)) COLLATE \"C\""
            }.joined(separator: ", ")
            return "SELECT \((keys + rest).joined(separator: ", ")) FROM \(relation) AS t ORDER BY \(order)"
        }
        let x = try RowStream(a, query(relationA, typesA), columns: matched.count + compared, binaryIntegers: hashed, context: "Could not read \(name) in A")
        let y = try RowStream(b, query(relationB, typesB), columns: matched.count + compared, binaryIntegers: hashed, context: "Could not read \(name) in B")
        var rows = DatabaseDiff.Rows()
        let limit = scope.rowLimit ?? 0
        func fields(_ stream: RowStream, _ columns: [String], from: Int, types: [String: Column]) -> DiffFields {
            DiffFields(columns.enumerated().map { ($1, stream.value(from + $0, type: types[$1]!.type)) })
        }
        var seen: Int64 = 0
        while x.hasRow || y.hasRow {
            let order = !y.hasRow ? -1 : !x.hasRow ? 1 : compareKeys(x, y, byValue)
            if order < 0 {
                table.onlyInA += 1
                if rows.onlyInA.count < limit { rows.onlyInA.append(fields(x, matched, from: 0, types: typesA)) }
                try x.advance()
            } else if order > 0 {
                table.onlyInB += 1
                if rows.onlyInB.count < limit { rows.onlyInB.append(fields(y, matched, from: 0, types: typesB)) }
                try y.advance()
            } else {
                let differing = (0..<compared).filter { !x.same(y, column: matched.count + $0) }
                if !differing.isEmpty {
                    table.changed += 1
                    if rows.changed.count < limit {
                        rows.changed.append(DatabaseDiff.ChangedRow(key: fields(x, matched, from: 0, types: typesA), changes: differing.map { i in
                            let column = values[i]
                            return .init(column: column, a: x.value(matched.count + i, type: typesA[column]!.type),
                                         b: y.value(matched.count + i, type: typesB[column]!.type))
                        }))
                    }
                }
                try x.advance()
                try y.advance()
            }
            seen += 1
            if seen % 100_000 == 0 { progress.update(phase: "comparing \(name)", done: seen, total: nil) }
        }
        if scope.rowLimit != nil { table.rows = rows }
        return table
    }

    /// Negative when x's row comes first; a NULL (possible where the key is only one side's) last, as ORDER BY puts it.
    private func compareKeys(_ x: RowStream, _ y: RowStream, _ byValue: [Bool]) -> Int {
        for (column, byValue) in byValue.enumerated() {
            switch (x.bytes(column), y.bytes(column)) {
            case (nil, nil): continue
            case (nil, _): return 1
            case (_, nil): return -1
            case (let p?, let q?):
                if byValue {
                    let l = x.integer(column) ?? 0, r = y.integer(column) ?? 0
                    if l != r { return l < r ? -1 : 1 }
                } else {
                    let c = p.isEmpty || q.isEmpty ? 0 : memcmp(p.baseAddress!, q.baseAddress!, min(p.count, q.count))
                    if c != 0 { return c < 0 ? -1 : 1 }
                    if p.count != q.count { return p.count < q.count ? -1 : 1 }
                }
            }
        }
        return 0
    }

    /// A table's fingerprint: its row count and the sum of a 64-bit hash of each row (`hash`,
    /// an expression over the alias `t`).
    static func fingerprint(hash: String, of relation: String) -> String {
        // A hash made of the columns' own hashes (`hash_record_extended`) is a linear combination of
        // them: summed over rows, two rows that swap a value would cancel out. Hashed once more
        // (its text), the rows' hashes no longer add up that way.
        let row = hash.hasPrefix("hash_record_extended(") ? "hashtextextended((\(hash))::text, 0)" : hash
        return "SELECT count(*), sum(\(row)) FROM \(relation) AS t"
    }

    /// `sqlA` on A and `sqlB` on B, at the same time.
    private func both(_ what: String, _ sqlA: String, _ sqlB: String) throws -> (QueryResult, QueryResult) {
        do {
            return try Connection.concurrently(a, sqlA, b, sqlB)
        } catch let error as QueryError {
            throw MigsnapError.failed("\(what): \(error.message)")
        }
    }

    private func count(_ side: Connection, _ relation: String) throws -> Int64 {
        Int64(try Self.run(side, "SELECT count(*) FROM \(relation)", "Could not count the rows of \(relation)").value(row: 0, column: 0) ?? "0") ?? 0
    }

    @discardableResult
    private static func run(_ side: Connection, _ sql: String, _ what: String, _ parameters: [String] = []) throws -> QueryResult {
        do {
            return try side.execute(sql, parameters)
        } catch let error as QueryError {
            throw MigsnapError.failed("\(what) in \(side.target.redacted): \(error.message)")
        }
    }
}

/// The live side of a restore's comparison, opened before the snapshot is staged so that reading
/// it overlaps pg_restore: its REPEATABLE READ transaction is the plan's moment, and each table's
/// whole-row fingerprint is computed in it on a thread of its own meanwhile. Released (its
/// connection closed) before the swap.
final class LiveSide: @unchecked Sendable {
    struct Fingerprint {
        var columns: [PostgresComparison.Column]
        /// The row hash summed (`PostgresComparison.wholeRowHash`).
        var hash: String
        var count: String?
        var sum: String?
    }

    let connection: Connection
    private let work: Background<[String: Fingerprint]>

    init(_ target: PostgresTarget) throws {
        let connection = try Connection(target)
        // The transaction waits, idle, while pg_restore runs: a server's idle timeout must not end it.
        _ = try? connection.execute("SET idle_in_transaction_session_timeout = 0")
        try PostgresComparison.begin(connection)
        self.connection = connection
        work = Background {
            var fingerprints: [String: Fingerprint] = [:]
            guard connection.serverVersionNumber >= 110_000, let tables = try? PostgresComparison.tables(connection) else { return [:] }
            for (name, relation) in tables {
                // A table this role cannot read must not end the transaction the comparison goes on in.
                guard (try? connection.execute("SAVEPOINT migsnap_fingerprint")) != nil else { return fingerprints }
                do {
                    let columns = try PostgresComparison.columns(connection, relation).all
                    let hash = PostgresComparison.wholeRowHash(columns, serverVersion: connection.serverVersionNumber)
                    let result = try connection.execute(PostgresComparison.fingerprint(hash: hash, of: relation))
                    fingerprints[name] = Fingerprint(columns: columns, hash: hash, count: result.value(row: 0, column: 0),
                                                     sum: result.value(row: 0, column: 1))
                    _ = try connection.execute("RELEASE SAVEPOINT migsnap_fingerprint")
                } catch {
                    guard (try? connection.execute("ROLLBACK TO SAVEPOINT migsnap_fingerprint")) != nil else { return fingerprints }
                }
            }
            return fingerprints
        }
    }

    /// The fingerprints by `schema.name`, once computed (none where they could not be).
    func fingerprints() -> [String: Fingerprint] {
        (try? work.wait()) ?? [:]
    }
}

/// The rows of one query, streamed by `COPY (query) TO STDOUT (FORMAT binary)`: no round trip
/// per batch, and the server goes on producing rows while the other side is read. Every column
/// is selected as text, which binary COPY sends as its bytes, except a row's hash and, where only
/// counts are wanted, integer keys (both as `int8`, 8 bytes); a row's fields point into libpq's
/// message, valid until `advance`.
private final class RowStream {
    private static let signature: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]
    private let connection: Connection
    private let context: String
    private let columns: Int
    /// Integer key columns come as binary `int8`, not as text.
    private let binaryIntegers: Bool
    /// The stream's state and each field's offset in the message and length (-1: NULL), behind
    /// pointers: a class's stored `var`s are checked for exclusive access at run time on every
    /// use, which cost as much as the merge itself on millions of rows.
    private struct State {
        var message: UnsafeMutablePointer<CChar>?
        var headerRead = false
        var hasRow = false
    }
    private let state = UnsafeMutablePointer<State>.allocate(capacity: 1)
    private let fields: UnsafeMutablePointer<Int>

    var hasRow: Bool { state.pointee.hasRow }

    init(_ connection: Connection, _ sql: String, columns: Int, binaryIntegers: Bool, context: String) throws {
        self.connection = connection
        self.context = context
        self.columns = columns
        self.binaryIntegers = binaryIntegers
        state.initialize(to: State())
        fields = .allocate(capacity: 2 * max(columns, 1))
        do {
            try connection.startCopyOut(sql)
        } catch let error as QueryError {
            throw MigsnapError.failed("\(context) (\(connection.target.redacted)): \(error.message)")
        }
        try advance()
    }

    deinit {
        if let message = state.pointee.message { Connection.freeCopyMessage(message) }
        state.deallocate()
        fields.deallocate()
    }

    func advance() throws {
        if let message = state.pointee.message {
            Connection.freeCopyMessage(message)
            state.pointee.message = nil
        }
        state.pointee.hasRow = false
        while true {
            let next: (UnsafeMutablePointer<CChar>, Int)?
            do {
                next = try connection.nextCopyMessage()
            } catch let error as QueryError {
                throw MigsnapError.failed("\(context) (\(connection.target.redacted)): \(error.message)")
            }
            guard let (buffer, length) = next else { return }
            if try parse(UnsafeRawPointer(buffer), length) {
                state.pointee.message = buffer
                state.pointee.hasRow = true
                return
            }
            Connection.freeCopyMessage(buffer)
        }
    }

    /// Reads one message: the header (alone or before the first row), a row, or the trailer.
    /// True when it holds a row.
    private func parse(_ bytes: UnsafeRawPointer, _ length: Int) throws -> Bool {
        var position = 0
        if !state.pointee.headerRead {
            guard length >= 19, memcmp(bytes, Self.signature, 11) == 0 else { throw malformed() }
            position = 19 + Self.integer(bytes, at: 15, size: 4)
            guard position <= length else { throw malformed() }
            state.pointee.headerRead = true
            if position == length { return false }
        }
        guard position + 2 <= length else { throw malformed() }
        let count = Self.integer(bytes, at: position, size: 2)
        position += 2
        if count == -1 { return false }
        guard count == columns else { throw malformed() }
        for column in 0..<count {
            guard position + 4 <= length else { throw malformed() }
            let size = Self.integer(bytes, at: position, size: 4)
            position += 4
            fields[2 * column] = position
            fields[2 * column + 1] = size
            if size > 0 { position += size }
            guard position <= length else { throw malformed() }
        }
        return true
    }

    /// The big-endian signed integer of `size` bytes at `offset`.
    private static func integer(_ bytes: UnsafeRawPointer, at offset: Int, size: Int) -> Int {
        var value = 0
        for i in 0..<size { value = value << 8 | Int(bytes.load(fromByteOffset: offset + i, as: UInt8.self)) }
        // Two's complement of the field's width.
        return value >= 1 << (size * 8 - 1) ? value - 1 << (size * 8) : value
    }

    private func malformed() -> MigsnapError {
        .failed("\(context) (\(connection.target.redacted)): the server sent COPY data migsnap cannot read")
    }

    /// The field's bytes; nil for NULL.
    func bytes(_ column: Int) -> UnsafeRawBufferPointer? {
        let length = fields[2 * column + 1]
        guard let message = state.pointee.message, length >= 0 else { return nil }
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(message) + fields[2 * column], count: length)
    }

    /// An integer column's value (binary, or its text form parsed).
    func integer(_ column: Int) -> Int64? {
        guard let field = bytes(column), !field.isEmpty else { return nil }
        if binaryIntegers {
            guard field.count == 8 else { return nil }
            return Int64(bigEndian: field.loadUnaligned(as: Int64.self))
        }
        var value: Int64 = 0
        let negative = field[0] == UInt8(ascii: "-")
        for byte in field.dropFirst(negative ? 1 : 0) {
            value = value &* 10 &+ Int64(byte &- UInt8(ascii: "0"))
        }
        return negative ? 0 &- value : value
    }

    /// NULL only equals NULL; text forms compare byte for byte.
    func same(_ other: RowStream, column: Int) -> Bool {
        switch (bytes(column), other.bytes(column)) {
        case (nil, nil): return true
        case (let p?, let q?): return p.count == q.count && (p.isEmpty || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0)
        default: return false
        }
    }

    /// The value for `diff --rows`: numbers as numbers, bytea as hex, everything else as its text.
    func value(_ column: Int, type: String) -> DiffValue {
        guard let field = bytes(column) else { return .null }
        let text = String(decoding: field, as: UTF8.self)
        switch type {
        case "int2", "int4", "int8": return Int64(text).map(DiffValue.integer) ?? .text(text)
        case "float4", "float8": return Double(text).flatMap { $0.isFinite ? DiffValue.real($0) : nil } ?? .text(text)
        case "bytea" where text.hasPrefix("\\x"): return .blob(hex: text.dropFirst(2).uppercased())
        default: return .text(text)
        }
    }
}
