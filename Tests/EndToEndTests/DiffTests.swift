import Foundation
import Testing

@Suite("diff: a snapshot against another or the live database, by primary key")
struct DiffTests {
    private func snapshot(_ p: Project) throws -> String {
        try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func diffJSON(_ p: Project, _ arguments: String...) throws -> [String: Any] {
        let r = try p.migsnap(["diff"] + arguments + ["--json"])
        #expect(r.status == 0, "\(r.output)")
        return try #require(try p.json(r.stdout) as? [String: Any])
    }

    private func table(_ report: [String: Any], _ name: String) throws -> [String: Any] {
        let tables = try #require(report["tables"] as? [[String: Any]])
        return try #require(tables.first { $0["name"] as? String == name }, "no table \(name) in \(tables)")
    }

    private func storeFiles(_ p: Project) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: p.store).sorted()
    }

    @Test func theDestructiveMigrationShowsAsRowsAndAColumnOnlyInTheSnapshot() throws {
        let p = try Project().seeded()
        let id = try snapshot(p)
        try p.alembic("upgrade", "head")
        let database = try #require(fileBytes(p.database))
        let store = try storeFiles(p)

        let report = try diffJSON(p, id)
        #expect(Set(report.keys) == ["a", "b", "tables", "tables_only_in_a", "tables_only_in_b"])
        let a = try #require(report["a"] as? [String: Any]), b = try #require(report["b"] as? [String: Any])
        #expect(a["kind"] as? String == "snapshot" && a["id"] as? String == id && a["revisions"] as? [String] == ["0002"])
        #expect(b["kind"] as? String == "live" && b["id"] is NSNull && b["revisions"] as? [String] == ["0003"])
        #expect(b["database"] as? String == p.database)
        let customers = try table(report, "customers")
        #expect(Set(customers.keys) == ["name", "key", "only_in_a", "only_in_b", "changed", "columns_only_in_a", "columns_only_in_b", "rows"])
        let key = try #require(customers["key"] as? [String: Any])
        #expect(key["kind"] as? String == "primary_key" && key["columns"] as? [String] == ["id"])
        #expect(customers["only_in_a"] as? Int == 3)
        #expect(customers["only_in_b"] as? Int == 0)
        #expect(customers["changed"] as? Int == 0)
        #expect(customers["columns_only_in_a"] as? [String] == ["phone"])
        #expect(customers["columns_only_in_b"] as? [String] == [])
        #expect(customers["rows"] is NSNull)
        #expect(try table(report, "orders")["only_in_a"] as? Int == 3)
        #expect(report["tables_only_in_a"] as? [String] == [])

        let human = try p.ok("diff", id).stdout
        #expect(human.contains("TABLE"), "\(human)")
        #expect(human.contains("ONLY IN A") && human.contains("CHANGED"))
        #expect(human.split(separator: "\n").contains { $0.hasPrefix("customers") && $0.split(separator: " ") == ["customers", "id", "3", "0", "0"] }, "\(human)")
        #expect(human.contains("Columns only in A: customers.phone"))

        // Reading only: the live database and the store are as they were, byte for byte and file for file.
        #expect(fileBytes(p.database) == database)
        #expect(try storeFiles(p) == store)
    }

    @Test func twoSnapshotsTablesColumnsAndChangedValues() throws {
        let p = try Project().seeded()
        let first = try snapshot(p)
        _ = try p.sqlite("""
            CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
            UPDATE customers SET name = 'Renamed', phone = NULL WHERE id = 2;
            INSERT INTO customers (id, name, email, active) VALUES (11, 'New', 'n@example.com', 1);
            """)
        let second = try snapshot(p)

        let report = try diffJSON(p, first, second, "--table", "customers", "--rows")
        #expect((report["b"] as? [String: Any])?["id"] as? String == second)
        let customers = try table(report, "customers")
        #expect(customers["only_in_a"] as? Int == 0)
        #expect(customers["only_in_b"] as? Int == 1)
        #expect(customers["changed"] as? Int == 1)
        let rows = try #require(customers["rows"] as? [String: Any])
        #expect(rows["only_in_b"] as? [[String: Int]] == [["id": 11]])
        let changed = try #require(rows["changed"] as? [[String: Any]])
        #expect(changed.count == 1)
        #expect(changed.first?["key"] as? [String: Int] == ["id": 2])
        let changes = try #require(changed.first?["changes"] as? [[String: Any]])
        #expect(changes.map { $0["column"] as? String } == ["name", "phone"])
        #expect(changes.first?["a"] as? String == "Customer 2" && changes.first?["b"] as? String == "Renamed")
        #expect(changes.last?["a"] as? String == "+1-555-0102" && changes.last?["b"] is NSNull)

        let all = try diffJSON(p, first, second)
        #expect(all["tables_only_in_b"] as? [String] == ["notes"])
        let reverse = try diffJSON(p, second, first)
        #expect(reverse["tables_only_in_a"] as? [String] == ["notes"])
        #expect(try table(reverse, "customers")["only_in_a"] as? Int == 1)
        #expect(try p.ok("diff", first, first).stdout.contains("No differences."))
    }

    @Test func aTableWithoutAPrimaryKeyIsAMultisetOfWholeRows() throws {
        let p = try Project().seeded()
        _ = try p.sqlite("CREATE TABLE log (msg TEXT, n INTEGER); INSERT INTO log VALUES ('a', 1), ('a', 1), ('a', 1), ('b', NULL), ('c', 2);")
        let id = try snapshot(p)
        // One of three duplicates goes, a NULL row stays (NULLs match), another duplicate arrives.
        _ = try p.sqlite("DELETE FROM log WHERE rowid IN (1, 5); INSERT INTO log VALUES ('b', NULL), ('d', 4);")

        let log = try table(try diffJSON(p, id, "--table", "log", "--rows"), "log")
        let key = try #require(log["key"] as? [String: Any])
        #expect(key["kind"] as? String == "whole_row" && key["columns"] as? [String] == ["msg", "n"])
        #expect(log["only_in_a"] as? Int == 2)
        #expect(log["only_in_b"] as? Int == 2)
        let rows = try #require(log["rows"] as? [String: Any])
        let onlyInA = try #require(rows["only_in_a"] as? [[String: Any]])
        #expect(onlyInA.map { "\($0["msg"] as? String ?? "?")=\($0["n"] as? Int ?? -1)" } == ["a=1", "c=2"])
        let onlyInB = try #require(rows["only_in_b"] as? [[String: Any]])
        #expect(onlyInB.count == 2)
        #expect(onlyInB.first?["msg"] as? String == "b" && onlyInB.first?["n"] is NSNull)

        let human = try p.ok("diff", id, "--table", "log").stdout
        #expect(human.contains("whole row"), "\(human)")
    }

    @Test func rowsAreListedUpToTheLimit() throws {
        let p = try Project().seeded()
        let id = try snapshot(p)
        try p.alembic("upgrade", "head")
        let out = try p.ok("diff", id, "--table", "customers", "--rows", "--limit", "2").stdout
        #expect(out.contains("Only in A (customers, 3):"), "\(out)")
        #expect(out.contains("  id=3\n  id=6\n"))
        #expect(!out.contains("id=9"))
        #expect(out.contains("and 1 more"))
        #expect(!out.contains("orders"), "--table shows that table only")
    }

    @Test func badInputExitsTwoAndMisusedFlags64() throws {
        let p = try Project().seeded()
        let id = try snapshot(p)
        let bogus = try p.migsnap("diff", "nosuchid")
        #expect(bogus.status == 2, "\(bogus.output)")
        #expect(bogus.stderr.contains("Error:"))
        let absent = try p.migsnap("diff", "29990101")
        #expect(absent.status == 2, "\(absent.output)")
        let noTable = try p.migsnap("diff", id, "--table", "nope")
        #expect(noTable.status == 2, "\(noTable.output)")
        #expect(noTable.stderr.contains("nope"))
        #expect(try p.migsnap("diff", id, "--rows").status == 64)
        #expect(try p.migsnap("diff", id, "--table", "customers", "--limit", "2").status == 64)
    }
}

@Suite("diff on generated data, against counts the test computes in SQL itself")
struct DiffReferenceTests {
    @Test(arguments: [1, 2, 3])
    func countsMatchTheReference(seed: Int) throws {
        let p = try Project().seeded()
        // Random rows with NULLs and duplicates; then random deletes, updates (some to NULL) and inserts.
        try p.python("-c", """
            import random, sqlite3, sys
            random.seed(\(seed))
            db = sqlite3.connect(sys.argv[1])
            pick = lambda: random.choice([None, 1, 2, 'x', 'y', 2.5])
            with db:
                db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v, w)")
                db.execute("CREATE TABLE pair (a TEXT, b INTEGER, v, PRIMARY KEY (a, b))")
                # A key that is never NULL (and not the rowid) takes the one-pass count; pair's, which
                # may be NULL, the NOT EXISTS one.
                db.execute("CREATE TABLE code (c TEXT NOT NULL PRIMARY KEY, v)")
                db.execute("CREATE TABLE bag (v, w)")
                for i in range(1, 2001):
                    db.execute("INSERT INTO t VALUES (?, ?, ?)", (i, pick(), pick()))
                    db.execute("INSERT INTO pair VALUES (?, ?, ?)", (str(i % 37), i, pick()))
                    db.execute("INSERT INTO code VALUES (?, ?)", ("c%d" % i, pick()))
                    db.execute("INSERT INTO bag VALUES (?, ?)", (pick(), pick()))
            """, p.database)
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.python("-c", """
            import random, sqlite3, sys
            random.seed(\(seed) + 100)
            db = sqlite3.connect(sys.argv[1])
            pick = lambda: random.choice([None, 1, 2, 'x', 'y', 2.5])
            with db:
                for _ in range(300):
                    op = random.random()
                    i = random.randint(1, 2600)
                    if op < 0.3:
                        db.execute("DELETE FROM t WHERE id = ?", (i,))
                        db.execute("DELETE FROM pair WHERE b = ?", (i,))
                        db.execute("DELETE FROM code WHERE c = ?", ("c%d" % i,))
                        db.execute("DELETE FROM bag WHERE rowid = ?", (i,))
                    elif op < 0.7:
                        db.execute("UPDATE t SET v = ? WHERE id = ?", (pick(), i))
                        db.execute("UPDATE pair SET v = ? WHERE b = ?", (pick(), i))
                        db.execute("UPDATE code SET v = ? WHERE c = ?", (pick(), "c%d" % i))
                    else:
                        db.execute("INSERT OR IGNORE INTO t VALUES (?, ?, ?)", (i, pick(), pick()))
                        db.execute("INSERT OR IGNORE INTO pair VALUES (?, ?, ?)", (str(i % 37), i, pick()))
                        db.execute("INSERT OR IGNORE INTO code VALUES (?, ?)", ("c%d" % i, pick()))
                        db.execute("INSERT INTO bag VALUES (?, ?)", (pick(), pick()))
            """, p.database)

        let m = try #require(try p.manifests().first)
        let copy = p.dir + "/a.db"
        #expect(try run("/bin/sh", ["-c", "gunzip -c '\(p.store)/\(m["file"] as! String)' > '\(copy)'"], in: p.dir).status == 0)
        func reference(_ sql: String) throws -> Int {
            Int(try p.sqlite("ATTACH '\(copy)' AS a; " + sql)) ?? -1
        }
        let report = try #require(try p.json(try p.ok("diff", id, "--json").stdout) as? [String: Any])
        let tables = try #require(report["tables"] as? [[String: Any]])
        func counts(_ name: String) -> [Int?] {
            let t = tables.first { $0["name"] as? String == name }
            return ["only_in_a", "only_in_b", "changed"].map { t?[$0] as? Int }
        }
        for (table, key) in [("t", "id"), ("pair", "a, b"), ("code", "c")] {
            // INTERSECT and EXCEPT treat NULLs as equal: rows on both sides minus identical rows are the changed ones.
            let expected = [
                try reference("SELECT count(*) FROM (SELECT \(key) FROM a.\(table) EXCEPT SELECT \(key) FROM main.\(table))"),
                try reference("SELECT count(*) FROM (SELECT \(key) FROM main.\(table) EXCEPT SELECT \(key) FROM a.\(table))"),
                try reference("SELECT (SELECT count(*) FROM (SELECT \(key) FROM a.\(table) INTERSECT SELECT \(key) FROM main.\(table)))"
                              + " - (SELECT count(*) FROM (SELECT * FROM a.\(table) INTERSECT SELECT * FROM main.\(table)))"),
            ]
            #expect(counts(table) == expected.map { $0 }, "\(table)")
            #expect(expected.allSatisfy { $0 > 0 }, "the generated changes touch every kind in \(table)")
        }
        // A multiset, computed in Python: the excess of each distinct row on each side.
        let bag = try run(p.venv + "/bin/python", ["-c", """
            import collections, sqlite3, sys
            rows = lambda path: collections.Counter(sqlite3.connect(path).execute("SELECT v, w FROM bag").fetchall())
            a, b = rows(sys.argv[1]), rows(sys.argv[2])
            print(sum((a - b).values()), sum((b - a).values()), 0)
            """, copy, p.database], in: p.dir)
        #expect(bag.status == 0, "\(bag.output)")
        #expect(counts("bag").map { $0.map(String.init) ?? "nil" }.joined(separator: " ") == bag.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
