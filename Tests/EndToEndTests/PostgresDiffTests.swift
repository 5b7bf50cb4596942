import Foundation
import Testing

@Suite("diff on PostgreSQL: generated data against a reference computed in SQL")
struct PostgresDiffTests {
    /// Tables in `public` and a copy of each in `ref`, taken before the snapshot: `ref` is state A
    /// inside the live database, so the test can count the differences in SQL with EXCEPT.
    private static let generated = """
        CREATE TABLE items (id int PRIMARY KEY, name text, qty int, price numeric(10,2), note text, data bytea);
        INSERT INTO items SELECT g, 'item ' || g, g % 7, g * 1.25, CASE WHEN g % 5 = 0 THEN NULL ELSE 'n' || g END,
            decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g;
        CREATE TABLE tags (label text, n int);
        INSERT INTO tags SELECT 'tag' || (g % 50), g % 3 FROM generate_series(1, 2000) g;
        CREATE TABLE pairs (a text, b int, v text, PRIMARY KEY (a, b));
        INSERT INTO pairs SELECT x, g, 'v' || g FROM unnest(ARRAY['a', 'B', 'é', 'e', 'Z', 'ab', '10', '9']) x, generate_series(1, 40) g;
        CREATE TABLE gone (id int PRIMARY KEY);
        INSERT INTO gone SELECT generate_series(1, 10);
        CREATE SCHEMA ref;
        CREATE TABLE ref.items AS SELECT * FROM items;
        CREATE TABLE ref.tags AS SELECT * FROM tags;
        CREATE TABLE ref.pairs AS SELECT * FROM pairs;
        """

    /// Inserts, updates and deletes; a dropped column, a widened type, a dropped and a new table.
    private static let changes = """
        DELETE FROM items WHERE id % 97 = 0;
        UPDATE items SET qty = qty + 1 WHERE id % 31 = 0;
        UPDATE items SET name = NULL WHERE id % 53 = 0;
        UPDATE items SET note = 'only the dropped column' WHERE id % 11 = 0;
        UPDATE items SET data = NULL WHERE id % 401 = 0;
        INSERT INTO items SELECT g, 'new ' || g, 1, 2.5, NULL, NULL FROM generate_series(5001, 5300) g;
        ALTER TABLE items DROP COLUMN note;
        ALTER TABLE items ALTER COLUMN qty TYPE bigint;
        DELETE FROM tags WHERE ctid IN (SELECT ctid FROM tags WHERE label = 'tag7' LIMIT 3);
        UPDATE tags SET n = 9 WHERE label = 'tag8' AND n = 1;
        INSERT INTO tags VALUES ('tag7', 1), ('new', NULL), ('new', NULL);
        DELETE FROM pairs WHERE b = 3;
        UPDATE pairs SET v = 'changed' WHERE b = 5 AND a IN ('é', 'Z');
        INSERT INTO pairs VALUES ('ü', 1, 'x'), ('a', 41, NULL);
        DROP TABLE gone;
        CREATE TABLE fresh (id int PRIMARY KEY);
        """

    /// only_in_a, only_in_b, changed as SQL counts them: `ref.T` is A, `public.T` is B.
    private func reference(_ db: PostgresDatabase, _ table: String, key: String?, values: String) throws -> [Int] {
        func count(_ sql: String) throws -> Int { Int(try db.psql("SELECT count(*) FROM (\(sql)) s")) ?? -1 }
        guard let key else {
            return [try count("SELECT \(values) FROM ref.\(table) EXCEPT ALL SELECT \(values) FROM public.\(table)"),
                    try count("SELECT \(values) FROM public.\(table) EXCEPT ALL SELECT \(values) FROM ref.\(table)"), 0]
        }
        let columns = values.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let differs = columns.map { "x.\($0)::text IS DISTINCT FROM y.\($0)::text" }.joined(separator: " OR ")
        return [try count("SELECT \(key) FROM ref.\(table) EXCEPT SELECT \(key) FROM public.\(table)"),
                try count("SELECT \(key) FROM public.\(table) EXCEPT SELECT \(key) FROM ref.\(table)"),
                try count("SELECT 1 FROM ref.\(table) x JOIN public.\(table) y USING (\(key)) WHERE \(differs)")]
    }

    private func counts(_ report: [String: Any], _ name: String) throws -> [Int] {
        let tables = try #require(report["tables"] as? [[String: Any]])
        let table = try #require(tables.first { $0["name"] as? String == name }, "no \(name) in \(tables)")
        return [table["only_in_a"] as? Int ?? -1, table["only_in_b"] as? Int ?? -1, table["changed"] as? Int ?? -1]
    }

    private func table(_ report: [String: Any], _ name: String) throws -> [String: Any] {
        let tables = try #require(report["tables"] as? [[String: Any]])
        return try #require(tables.first { $0["name"] as? String == name }, "no \(name) in \(tables)")
    }

    @Test func countsMatchEXCEPTQueriesLiveAndSnapshotAgainstSnapshot() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try db.psql(Self.generated)
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try db.psql(Self.changes)
        let before = try db.state()

        let r = try p.migsnap("diff", a, "--json")
        #expect(r.status == 0, "\(r.output)")
        let report = try #require(try p.json(r.stdout) as? [String: Any])
        #expect(Set(report.keys) == ["a", "b", "tables", "tables_only_in_a", "tables_only_in_b"])
        #expect((report["b"] as? [String: Any])?["kind"] as? String == "live")

        let items = try reference(db, "items", key: "id", values: "name, qty, price, data")
        #expect(items[0] > 0 && items[1] == 300 && items[2] > 0, "the changes must show in every count: \(items)")
        #expect(try counts(report, "public.items") == items)
        #expect(try table(report, "public.items")["columns_only_in_a"] as? [String] == ["note"])
        #expect(try counts(report, "public.tags") == reference(db, "tags", key: nil, values: "label, n"))
        let tagsKey = try #require(try table(report, "public.tags")["key"] as? [String: Any])
        #expect(tagsKey["kind"] as? String == "whole_row" && tagsKey["columns"] as? [String] == ["label", "n"])
        #expect(try counts(report, "public.pairs") == reference(db, "pairs", key: "a, b", values: "v"))
        for same in ["ref.items", "ref.tags", "ref.pairs"] {
            #expect(try counts(report, same) == [0, 0, 0], "\(same)")
        }
        #expect(report["tables_only_in_a"] as? [String] == ["public.gone"])
        #expect(report["tables_only_in_b"] as? [String] == ["public.fresh"])

        // A second snapshot of the changed state: snapshot against snapshot says the same.
        let b = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let both = try #require(try p.json(try p.ok("diff", a, b, "--json").stdout) as? [String: Any])
        #expect(NSDictionary(dictionary: ["t": both["tables"] ?? 0]) == NSDictionary(dictionary: ["t": report["tables"] ?? 1]))

        // The live database is only read, and no scratch copy is left behind.
        expectSameState(try db.state(), before)
        #expect(try scratchDatabases(of: db) == "")
    }

    @Test func rowsAreListedInKeyOrderWithTypedValues() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try db.psql(Self.generated)
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try db.psql(Self.changes)

        let report = try #require(try p.json(try p.ok("diff", a, "--table", "items", "--rows", "--limit", "3", "--json").stdout) as? [String: Any])
        let tables = try #require(report["tables"] as? [[String: Any]])
        #expect(tables.map { $0["name"] as? String } == ["public.items"])
        let rows = try #require(tables.first?["rows"] as? [String: Any])
        #expect(rows["only_in_a"] as? [[String: Int]] == [["id": 97], ["id": 194], ["id": 291]])
        #expect(rows["only_in_b"] as? [[String: Int]] == [["id": 5001], ["id": 5002], ["id": 5003]])
        let changed = try #require(rows["changed"] as? [[String: Any]])
        #expect(changed.count == 3)
        #expect(changed.first?["key"] as? [String: Int] == ["id": 31])
        let change = try #require((changed.first?["changes"] as? [[String: Any]])?.first)
        #expect(change["column"] as? String == "qty" && change["a"] as? Int == 3 && change["b"] as? Int == 4, "\(change)")

        let human = try p.ok("diff", a, "--table", "public.items", "--rows", "--limit", "1").stdout
        #expect(human.contains("Only in A (public.items, ") && human.contains("  id=97"), "\(human)")
        #expect(human.contains("id=31  qty: 3 -> 4"), "\(human)")
    }

    @Test func theExampleDestructiveMigrationAndASnapshotAgainstItself() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.alembic("upgrade", "head")
        let before = try db.state()
        let store = try FileManager.default.subpathsOfDirectory(atPath: p.store).sorted()

        let human = try p.ok("diff", id).stdout
        #expect(human.split(separator: "\n").contains { $0.split(separator: " ") == ["public.customers", "id", "3", "0", "0"] }, "\(human)")
        #expect(human.contains("Columns only in A: public.customers.phone"), "\(human)")
        let itself = try p.ok("diff", id, id).stdout
        #expect(itself.contains("No differences."), "\(itself)")

        expectSameState(try db.state(), before)
        #expect(try FileManager.default.subpathsOfDirectory(atPath: p.store).sorted() == store)
        #expect(try scratchDatabases(of: db) == "")
    }

    /// A table whose row count is unchanged is still read row by row when anything in it
    /// changed: the whole-table fingerprint (count and a sum of row hashes) must not pass it by.
    @Test func changesThatKeepTheRowCountAreFound() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try db.psql("""
            CREATE TABLE big (id int PRIMARY KEY, v text);
            INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 20000) g;
            CREATE TABLE swapped (id int PRIMARY KEY, v text);
            INSERT INTO swapped VALUES (1, 'a'), (2, 'b'), (3, 'c');
            CREATE TABLE empties (id int PRIMARY KEY, v text);
            INSERT INTO empties VALUES (1, NULL), (2, ''), (3, 'x');
            CREATE TABLE bag (v text);
            INSERT INTO bag VALUES ('x'), ('x'), ('y');
            CREATE TABLE still (id int PRIMARY KEY, v text);
            INSERT INTO still SELECT g, 'same' FROM generate_series(1, 1000) g;
            """)
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try db.psql("""
            UPDATE big SET v = 'changed' WHERE id = 12345;
            UPDATE swapped SET v = CASE id WHEN 1 THEN 'b' WHEN 2 THEN 'a' ELSE v END;
            UPDATE empties SET v = CASE id WHEN 1 THEN '' WHEN 2 THEN NULL ELSE v END;
            UPDATE bag SET v = 'y' WHERE ctid = (SELECT ctid FROM bag WHERE v = 'x' LIMIT 1);
            """)
        try expectCounted(p, a, ["big": [0, 0, 1], "swapped": [0, 0, 2], "empties": [0, 0, 2], "bag": [1, 1, 0], "still": [0, 0, 0]])
    }

    /// Snapshot `a` against the live database, table by table, as `[only in a, only live, changed]`:
    /// by `diff`, by `diff --table T --rows` (each row travels whole, no hash), and by the restore
    /// plan (which discards the rows only live, brings back those only in `a`).
    private func expectCounted(_ p: Project, _ a: String, _ expected: [String: [Int]],
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = try #require(try p.json(try p.ok("diff", a, "--json").stdout) as? [String: Any], sourceLocation: sourceLocation)
        for (name, counted) in expected {
            #expect(try counts(report, "public.\(name)") == counted, "\(name)", sourceLocation: sourceLocation)
            let rows = try #require(try p.json(try p.ok("diff", a, "--table", name, "--rows", "--json").stdout) as? [String: Any],
                                    sourceLocation: sourceLocation)
            #expect(try counts(rows, "public.\(name)") == counted, "\(name) --rows", sourceLocation: sourceLocation)
        }
        let plan = try #require(try p.json(try p.ok("restore", a, "--dry-run", "--json").stdout) as? [String: Any], sourceLocation: sourceLocation)
        func nonZero(_ at: Int) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: expected.filter { $0.value[at] > 0 }.map { ("public.\($0.key)", $0.value[at]) })
        }
        #expect(plan["restored_rows"] as? [String: Int] == nonZero(0), "\(plan)", sourceLocation: sourceLocation)
        #expect(plan["discarded_rows"] as? [String: Int] == nonZero(1), "\(plan)", sourceLocation: sourceLocation)
        #expect(plan["changed_rows"] as? [String: Int] == nonZero(2), "\(plan)", sourceLocation: sourceLocation)
    }

    /// A table whose columns' types all have an equality that holds only for equal text forms is
    /// hashed by those types' own hashes (cheaper than printing rows); any other is hashed by its
    /// text. So a change that only the text shows is counted: numeric `1.0` to `1.00`, float `0`
    /// to `-0`, interval `1 day` to `24 hours`, a case change under a collation that ignores case,
    /// trailing blanks in an unbounded bpchar, jsonb `1.0` to `1.00`, and bigint `1` to `2^32`
    /// (which int8's own hash folds alike). And a change in each column
    /// of a table of the cheaper kind is counted too. Every table has a column named `t`, the
    /// alias the comparison reads rows by: the row is still the whole row, not that column.
    @Test func aChangeOnlyTheTextShowsIsCountedAndEveryTypeIsCompared() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try db.psql("""
            CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
            CREATE TABLE loose_numeric (id int PRIMARY KEY, v numeric, t text);
            CREATE TABLE loose_float (id int PRIMARY KEY, v float8, t text);
            CREATE TABLE loose_interval (id int PRIMARY KEY, v interval, t text);
            CREATE TABLE loose_nocase (id int PRIMARY KEY, v text COLLATE nocase, t text);
            CREATE TABLE loose_bpchar (id int PRIMARY KEY, v bpchar, t text);
            CREATE TABLE loose_jsonb (id int PRIMARY KEY, v jsonb, t text);
            INSERT INTO loose_numeric SELECT g, 1.0, 'same' FROM generate_series(1, 8) g;
            INSERT INTO loose_float SELECT g, 0, 'same' FROM generate_series(1, 8) g;
            INSERT INTO loose_interval SELECT g, '1 day', 'same' FROM generate_series(1, 8) g;
            INSERT INTO loose_nocase SELECT g, 'abc', 'same' FROM generate_series(1, 8) g;
            INSERT INTO loose_bpchar SELECT g, 'x', 'same' FROM generate_series(1, 8) g;
            INSERT INTO loose_jsonb SELECT g, '{"a": 1.0}', 'same' FROM generate_series(1, 8) g;
            CREATE TABLE loose_int8 (id int PRIMARY KEY, v bigint, t text);
            INSERT INTO loose_int8 SELECT g, 1, 'same' FROM generate_series(1, 8) g;
            CREATE TABLE strict (id int PRIMARY KEY, b bool, u uuid, d date, raw bytea, v varchar(10), c char(4), x text, t text);
            INSERT INTO strict SELECT g, g % 2 = 0, md5(g::text)::uuid, date '2020-01-01' + g, decode(md5(g::text), 'hex'),
                                      'v' || g, 'c', 'x' || g, 't' || g
            FROM generate_series(1, 2000) g;
            """)
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try db.psql("""
            UPDATE loose_numeric SET v = 1.00 WHERE id = 1;
            UPDATE loose_float SET v = '-0' WHERE id = 2;
            UPDATE loose_interval SET v = '24 hours' WHERE id = 3;
            UPDATE loose_nocase SET v = 'ABC' WHERE id = 4;
            UPDATE loose_bpchar SET v = 'x ' WHERE id = 5;
            UPDATE loose_jsonb SET v = '{"a": 1.00}' WHERE id = 6;
            UPDATE loose_int8 SET v = 4294967296 WHERE id = 7;
            UPDATE strict SET b = NOT b WHERE id = 11;
            UPDATE strict SET u = md5('other')::uuid WHERE id = 12;
            UPDATE strict SET d = d + 1 WHERE id = 13;
            UPDATE strict SET t = 'T' WHERE id = 15;
            UPDATE strict SET raw = raw || '\\x00' WHERE id = 16;
            UPDATE strict SET v = 'V16' WHERE id = 17;
            UPDATE strict SET c = 'C' WHERE id = 18;
            UPDATE strict SET x = NULL WHERE id = 19;
            DELETE FROM strict WHERE id = 1999;
            INSERT INTO strict (id) VALUES (-5);
            """)
        var expected = ["strict": [1, 1, 8]]
        for type in ["numeric", "float", "interval", "nocase", "bpchar", "jsonb", "int8"] { expected["loose_\(type)"] = [0, 0, 1] }
        try expectCounted(p, a, expected)
    }

    /// A bigint key with negative values, rows added at the end, a block deleted, one row changed,
    /// and a key that is only A's primary key, NULL and duplicated in B: counted as the EXCEPT
    /// queries count them, by `diff`, `diff --rows` and the restore plan.
    @Test func blocksAndAKeyThatIsNullInBAreCountedAsEXCEPTCountsThem() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try db.psql("""
            CREATE TABLE ranged (id bigint PRIMARY KEY, v text);
            INSERT INTO ranged SELECT g * 3 - 1000, 'v' || g FROM generate_series(1, 50000) g;
            CREATE TABLE nulled (id int PRIMARY KEY, v text);
            INSERT INTO nulled SELECT g, 'n' || g FROM generate_series(1, 5000) g;
            CREATE SCHEMA ref;
            CREATE TABLE ref.ranged AS SELECT * FROM ranged;
            CREATE TABLE ref.nulled AS SELECT * FROM nulled;
            """)
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try db.psql("""
            INSERT INTO ranged SELECT 149000 + g, 'new' FROM generate_series(1, 5) g;
            DELETE FROM ranged WHERE id BETWEEN 60000 AND 60300;
            UPDATE ranged SET v = 'changed' WHERE id = 119000;
            ALTER TABLE nulled DROP CONSTRAINT nulled_pkey;
            ALTER TABLE nulled ALTER COLUMN id DROP NOT NULL;
            INSERT INTO nulled VALUES (NULL, 'no key'), (2500, 'twice');
            """)
        let ranged = try reference(db, "ranged", key: "id", values: "v")
        #expect(ranged == [100, 5, 1], "\(ranged)")
        let report = try #require(try p.json(try p.ok("diff", a, "--json").stdout) as? [String: Any])
        #expect(try counts(report, "public.ranged") == ranged)
        // The NULL key matches nothing; the duplicate 2500 pairs with A's row once, the other is only in B.
        let nulled = try counts(report, "public.nulled")
        #expect(nulled == [0, 2, 0], "\(nulled)")
        let rows = try #require(try p.json(try p.ok("diff", a, "--table", "ranged", "--rows", "--json").stdout) as? [String: Any])
        #expect(try counts(rows, "public.ranged") == ranged)
        let plan = try #require(try p.json(try p.ok("restore", a, "--dry-run", "--json").stdout) as? [String: Any])
        #expect((plan["restored_rows"] as? [String: Int])?["public.ranged"] == ranged[0], "\(plan)")
        #expect((plan["discarded_rows"] as? [String: Int])?["public.ranged"] == ranged[1], "\(plan)")
        #expect((plan["changed_rows"] as? [String: Int])?["public.ranged"] == ranged[2], "\(plan)")
    }

    @Test func aFailedDiffLeavesNoScratchDatabase() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try db.psql("CREATE TABLE t (id int PRIMARY KEY)")
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let r = try p.migsnap("diff", a, "--table", "nosuch")
        #expect(r.status == 2, "\(r.output)")
        #expect(r.stderr.contains("Error: Neither side has a table"), "\(r.stderr)")
        #expect(try scratchDatabases(of: db) == "")
    }
}

@Suite("Restore and rollback plans on PostgreSQL count rows by key")
struct PostgresPlanRowsTests {
    @Test func anAddedAndADeletedRowDoNotCancelOutAndAnUpdateShows() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try db.psql(PlanRowsTests.changes)
        let before = try db.state()
        PlanRowsTests.expectByKey(try #require(try p.json(try p.ok("restore", id, "--dry-run", "--json").stdout) as? [String: Any]),
                                  schema: "public.")
        PlanRowsTests.expectByKey(human: try p.ok("restore", id, "--dry-run").stdout, schema: "public.")
        expectSameState(try db.state(), before)
    }

    @Test func rollbackOverADestructiveMigrationCountsWhatComesBack() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        try p.ok("snapshot")
        try p.alembic("upgrade", "head")
        try db.psql(PlanRowsTests.changes)
        let plan = try #require(try p.json(try p.ok("rollback", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["discarded_rows"] as? [String: Int] == ["public.customers": 1, "public.orders": 2], "\(plan)")
        #expect(plan["changed_rows"] as? [String: Int] == ["public.customers": 1], "\(plan)")
        #expect(plan["restored_rows"] as? [String: Int] == ["public.customers": 4, "public.orders": 4], "\(plan)")
    }
}
