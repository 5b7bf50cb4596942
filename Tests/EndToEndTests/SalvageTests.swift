import Foundation
import Testing

extension Project {
    /// The example seeded at 0002, with `migration` as 0003 (its body: the `upgrade()` lines), and
    /// `migsnap upgrade` run through it: S0 is the pre-upgrade snapshot, S1 the post-upgrade one.
    /// `prepare` runs at 0002 before the upgrade.
    static func salvageStory(_ upgrade: String, prepare: (Project) throws -> Void = { _ in }) throws -> Project {
        let p = try Project().seeded()
        try p.writeStep0003(upgrade)
        try prepare(p)
        try p.ok("upgrade")
        return p
    }

    /// 0003 with `upgrade` (Python lines) as the body of its `upgrade()`.
    func writeStep0003(_ upgrade: String) throws {
        try writeMigration("0003_drop_inactive_customers", """
            from alembic import op
            import sqlalchemy as sa

            revision = "0003"
            down_revision = "0002"

            def upgrade():
            \(upgrade.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))

            def downgrade():
                pass
            """)
    }

    /// Deletes the inactive customers (3, 6, 9) and their orders, rewrites every name, drops phone.
    static let destructiveMigration = """
        op.execute("DELETE FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE NOT active)")
        op.execute("DELETE FROM customers WHERE NOT active")
        op.execute("UPDATE customers SET name = upper(name)")
        with op.batch_alter_table("customers") as batch:
            batch.drop_column("phone")
        """

    /// What the application does after the migration, some of it to rows the migration rewrote.
    static let applicationWrites = """
        INSERT INTO customers (id, name, email, active) VALUES (11, 'Eve', 'eve@example.com', 1);
        INSERT INTO orders (id, customer_id, total_cents) VALUES (11, 11, 500);
        UPDATE customers SET email = 'first@example.com' WHERE id = 1;
        UPDATE orders SET total_cents = 1 WHERE id = 4;
        DELETE FROM orders WHERE id IN (2, 5);
        DELETE FROM customers WHERE id = 2;
        """
}

@Suite("Salvage: rollback --keep-new (SQLite, real Alembic)")
struct SalvageTests {
    @Test func theNewRowsStayAndWhatTheMigrationTookComesBack() throws {
        let s0 = FileManager.default.temporaryDirectory.appendingPathComponent("salvage-s0-\(UUID().uuidString).db").path
        defer { try? FileManager.default.removeItem(atPath: s0) }
        let p = try Project.salvageStory(Project.destructiveMigration) { p in
            try FileManager.default.copyItem(atPath: p.database, toPath: s0)
        }
        _ = try p.sqlite(Project.applicationWrites)
        let manifests = try p.manifests()
        #expect(manifests.map { $0["reason"] as? String } == ["pre-upgrade", "post-upgrade"])

        let plan = try #require(try p.json(try p.ok("rollback", "--keep-new", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["via"] as? String == "salvage")
        #expect(plan["snapshot"] as? String == manifests[0]["id"] as? String)
        #expect(plan["after"] as? String == manifests[1]["id"] as? String)
        #expect(plan["undone"] as? [String] == ["0003"])
        let tables = try #require(plan["tables"] as? [[String: Any]])
        func counts(_ name: String) -> [Int?] {
            let t = tables.first { $0["name"] as? String == name }
            return ["inserted", "updated", "deleted", "come_back", "conflicts"].map { t?[$0] as? Int }
        }
        // customers: 1 and 2 were rewritten by the migration and changed again (conflicts); 3, 6, 9
        // deleted and 4, 5, 7, 8, 10 rewritten by it, untouched since: back as they were.
        #expect(counts("customers") == [1, 1, 1, 8, 2], "\(tables)")
        #expect(tables.first { $0["name"] as? String == "customers" }?["conflict_keys"] as? [String] == ["id=1", "id=2"])
        #expect(counts("orders") == [1, 1, 2, 3, 0], "\(tables)")
        #expect(try p.manifests().count == 2, "a dry run writes nothing")

        let human = try p.ok("rollback", "--keep-new", "--dry-run").stdout
        #expect(human.contains("customers conflicts: id=1, id=2"), "\(human)")

        let r = try p.ok("rollback", "--keep-new", "--yes")
        #expect(r.stdout.contains("Salvaged") && r.stdout.contains("back at 0002"), "\(r.output)")

        // The expected result, written by hand on a copy of S0: the application's changes on top,
        // the conflicts with the application's values (customer 1's name as the application read
        // it, rewritten), the inserted customer without a phone (the column the migration dropped).
        _ = try p.sqlite("""
            UPDATE customers SET name = 'CUSTOMER 1', email = 'first@example.com' WHERE id = 1;
            DELETE FROM orders WHERE id IN (2, 5);
            DELETE FROM customers WHERE id = 2;
            UPDATE orders SET total_cents = 1 WHERE id = 4;
            INSERT INTO customers (id, name, email, active, phone) VALUES (11, 'Eve', 'eve@example.com', 1, NULL);
            INSERT INTO orders (id, customer_id, total_cents) VALUES (11, 11, 500);
            """, database: s0)
        #expect(try p.dump() == (try p.dump(s0)))
        #expect(try p.sqlite("SELECT name, phone FROM customers WHERE id = 3") == "Customer 3|+1-555-0103")
        #expect(try p.alembic("current").stdout.contains("0002"))
        #expect(try p.sqlite("PRAGMA integrity_check") == "ok")

        // As for a rollback: a pre-restore safety snapshot of the state replaced, and a guard.
        let after = try p.manifests()
        #expect(after.last?["reason"] as? String == "pre-restore" && p.revisionsOf(after.last!) == ["0003"])
        let status = try #require(try p.json(try p.ok("status", "--json").stdout) as? [String: Any])
        let guards = try #require(status["guards"] as? [[String: Any]])
        #expect(guards.map { $0["revision"] as? String } == ["0003"])
        #expect((guards.first?["by"] as? String)?.contains("--keep-new") == true)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: p.dir).filter { $0.contains("migsnap-staging") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func restoreByIdDoesTheSameAsRollback() throws {
        let p = try Project.salvageStory(Project.destructiveMigration)
        _ = try p.sqlite(Project.applicationWrites)
        let s0 = try #require(try p.manifests().first?["id"] as? String)
        let viaRollback = try p.ok("rollback", "--keep-new", "--dry-run", "--json").stdout
        let viaRestore = try p.ok("restore", s0, "--keep-new", "--dry-run", "--json").stdout
        #expect(viaRestore == viaRollback)
        try p.ok("restore", s0, "--keep-new", "--yes")
        #expect(try p.sqlite("SELECT count(*), sum(id) FROM customers") == "10|64")
        #expect(try p.alembic("current").stdout.contains("0002"))
        let bad = try p.migsnap("restore", s0, "--keep-new", "--no-safety-snapshot", "--yes")
        #expect(bad.status == 64, "\(bad.output)")
    }

    @Test func aKeylessTableTheMigrationLeftAloneTakesTheApplicationsRows() throws {
        let p = try Project.salvageStory(Project.destructiveMigration) { p in
            _ = try p.sqlite("CREATE TABLE audit (what TEXT); INSERT INTO audit VALUES ('a'), ('a'), ('b');")
        }
        _ = try p.sqlite("INSERT INTO audit VALUES ('a'), ('c'); DELETE FROM audit WHERE what = 'b';")
        try p.ok("rollback", "--keep-new", "--yes")
        #expect(try p.sqlite("SELECT group_concat(what, '') FROM (SELECT what FROM audit ORDER BY what)") == "aaac")
        #expect(try p.sqlite("SELECT count(*) FROM customers") == "10")
    }

    @Test func aRunOfSeveralStepsIsSalvagedWhole() throws {
        // 0003 and 0004 in one run: S1 is the run's post-upgrade snapshot, reached through the
        // pre-upgrade snapshot of 0004 (the state right after 0003).
        let s0 = FileManager.default.temporaryDirectory.appendingPathComponent("salvage-s0-\(UUID().uuidString).db").path
        defer { try? FileManager.default.removeItem(atPath: s0) }
        let p = try Project.salvageStory(Project.destructiveMigration) { p in
            try p.writeMigration("0004_zero_totals", """
                from alembic import op

                revision = "0004"
                down_revision = "0003"

                def upgrade():
                    op.execute("UPDATE orders SET total_cents = 0")

                def downgrade():
                    pass
                """)
            try FileManager.default.copyItem(atPath: p.database, toPath: s0)
        }
        #expect(try p.manifests().map { $0["reason"] as? String } == ["pre-upgrade", "pre-upgrade", "post-upgrade"])
        _ = try p.sqlite("INSERT INTO customers (id, name, email, active) VALUES (11, 'Eve', 'eve@example.com', 1); UPDATE orders SET total_cents = 1 WHERE id = 4;")
        let plan = try #require(try p.json(try p.ok("rollback", "-2", "--keep-new", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["undone"] as? [String] == ["0004", "0003"])
        #expect(plan["after"] as? String == (try p.manifests().last?["id"] as? String))
        try p.ok("rollback", "-2", "--keep-new", "--yes")
        _ = try p.sqlite("""
            INSERT INTO customers (id, name, email, active, phone) VALUES (11, 'Eve', 'eve@example.com', 1, NULL);
            UPDATE orders SET total_cents = 1 WHERE id = 4;
            """, database: s0)
        #expect(try p.dump() == (try p.dump(s0)))
        #expect(try p.alembic("current").stdout.contains("0002"))
    }

    @Test func aWALDatabaseWithTriggersAndAutoincrementCounters() throws {
        let p = try Project.salvageStory(Project.destructiveMigration) { p in
            _ = try p.sqlite("""
                PRAGMA journal_mode = WAL;
                CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT);
                INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');
                CREATE TABLE audit (what TEXT);
                CREATE TRIGGER orders_audit AFTER INSERT ON orders BEGIN INSERT INTO audit VALUES ('order ' || new.id); END;
                """)
        }
        // The trigger fires in the application's database; the salvage must not fire it again.
        _ = try p.sqlite(Project.applicationWrites + """
            INSERT INTO notes (body) VALUES ('d'), ('e');
            DELETE FROM notes WHERE id = 5;
            """)
        try p.ok("rollback", "--keep-new", "--yes")
        #expect(try p.sqlite("SELECT group_concat(what, ',') FROM audit") == "order 11")
        #expect(try p.sqlite("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'orders_audit'") == "1")
        #expect(try p.sqlite("SELECT group_concat(body, '') FROM notes") == "abcd")
        // Id 5 was handed out by the application: the counter does not go back to 4.
        #expect(try p.sqlite("SELECT seq FROM sqlite_sequence WHERE name = 'notes'") == "5")
        #expect(try p.sqlite("PRAGMA journal_mode") == "wal")
        #expect(try p.sqlite("SELECT count(*) FROM customers") == "10")
    }

    // MARK: - Refusals (exit 4): nothing changed, no safety snapshot taken

    func expectRefused(_ p: Project, _ arguments: [String] = ["rollback", "--keep-new", "--yes"], saying words: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try p.dump(), snapshots = try p.manifests().count
        let r = try p.migsnap(arguments)
        #expect(r.status == 4, "\(r.output)", sourceLocation: sourceLocation)
        for word in words {
            #expect(r.stderr.contains(word), "\(word) in: \(r.stderr)", sourceLocation: sourceLocation)
        }
        #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, sourceLocation: sourceLocation)
        #expect(r.stderr.contains("Try: "), sourceLocation: sourceLocation)
        #expect(try p.dump() == before, sourceLocation: sourceLocation)
        #expect(try p.manifests().count == snapshots, sourceLocation: sourceLocation)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: p.dir).filter { $0.contains("migsnap-staging") }
        #expect(leftovers.isEmpty, "\(leftovers)", sourceLocation: sourceLocation)
    }

    @Test func noStateRightAfterTheMigration() throws {
        let p = try Project.salvageStory(Project.destructiveMigration)
        // The post-upgrade snapshot pruned: the next one, taken later, holds the application's
        // writes too, which would read as the migration's.
        let s0 = try #require(try p.manifests().first?["id"] as? String)
        try p.ok("pin", s0)
        try p.ok("snapshot")
        try #"{"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_per_revision": 0, "keep_tags": ["release"]}"#
            .write(toFile: p.dir + "/retention.json", atomically: true, encoding: .utf8)
        try p.ok("prune", "--yes")
        #expect(try p.manifests().map { $0["reason"] as? String } == ["pre-upgrade", "manual"])
        try expectRefused(p, saying: ["(manual, at 0003), not the state right after the migration to 0003"])

        // A manual snapshot was not taken before a migration step: no S1 belongs to it.
        let q = try Project().seeded()
        let manual = try q.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try q.alembic("upgrade", "head")
        try expectRefused(q, ["restore", manual, "--keep-new", "--yes"], saying: ["not taken right before a migration step"])
    }

    @Test func aDatabaseThatMovedOnSinceHasNoStateRightAfter() throws {
        // Upgraded to 0002 by one run, to 0003 by another: what followed 0002's step includes the
        // application's writes and the next run's migration, so 0002's step cannot be salvaged.
        let p = try Project()
        try p.ok("upgrade", "0002")
        try p.python("seed.py", p.database)
        try p.ok("upgrade")
        try expectRefused(p, ["rollback", "-2", "--keep-new", "--yes"], saying: ["The database is at 0003", "ended at 0002", "moved on"])
    }

    @Test func aKeylessTableBothSidesChanged() throws {
        let p = try Project.salvageStory(Project.destructiveMigration + "\nop.execute(\"DELETE FROM audit WHERE what = 'b'\")") { p in
            _ = try p.sqlite("CREATE TABLE audit (what TEXT); INSERT INTO audit VALUES ('a'), ('b');")
        }
        _ = try p.sqlite("INSERT INTO audit VALUES ('c')")
        try expectRefused(p, saying: ["Table audit has no primary key", "both the migration and the application"])
    }

    @Test func aRenamedColumn() throws {
        let p = try Project.salvageStory("""
            with op.batch_alter_table("customers") as batch:
                batch.alter_column("email", new_column_name="mail")
            """)
        try expectRefused(p, saying: ["customers.email is missing in S1", "customers.mail", "renamed"])
    }

    @Test func aRenamedTable() throws {
        let p = try Project.salvageStory("op.rename_table(\"orders\", \"purchases\")")
        try expectRefused(p, saying: ["Table orders is missing in S1", "purchases", "renamed"])
    }

    @Test func aColumnWhoseTypeChanged() throws {
        let p = try Project.salvageStory("""
            with op.batch_alter_table("orders") as batch:
                batch.alter_column("total_cents", type_=sa.String(20))
            """)
        _ = try p.sqlite("INSERT INTO orders (id, customer_id, total_cents) VALUES (11, 1, 'twelve')")
        try expectRefused(p, saying: ["orders.total_cents is INTEGER in S0 but VARCHAR(20) now"])
    }

    @Test func aResultThatBreaksAForeignKeyNamesTheRow() throws {
        // The migration deleted order 1; the application then deleted its customer. Order 1 would
        // come back pointing at nobody.
        let p = try Project.salvageStory("op.execute(\"DELETE FROM orders WHERE id = 1\")")
        _ = try p.sqlite("DELETE FROM customers WHERE id = 1")
        try expectRefused(p, saying: ["orders id=1 refers to a missing row of customers"])
    }

    @Test func aNotNullColumnTheMigrationDroppedCannotTakeNewRows() throws {
        let p = try Project.salvageStory("""
            with op.batch_alter_table("customers") as batch:
                batch.drop_column("email")
            """)
        _ = try p.sqlite("INSERT INTO customers (id, name, active) VALUES (11, 'Eve', 1)")
        try expectRefused(p, saying: ["do not fit table customers", "NOT NULL constraint failed: customers.email"])
    }
}

@Suite("Salvage under kill -9 (SQLite)", .serialized)
struct SalvageCrashTests {
    func digest(_ p: Project) throws -> String {
        try p.sqlite("""
            SELECT (SELECT version_num FROM alembic_version) || ':' || (SELECT count(*) || '/' || sum(id) FROM customers)
              || ':' || count(*) || '/' || sum(length(body)) || '/' || sum(id) FROM events
            """)
    }

    @Test func aKilledSalvageLeavesTheOldOrTheNewState() throws {
        let p = try Project.salvageStory(Project.destructiveMigration) { p in
            _ = try p.sqlite("""
                CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT);
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
                INSERT INTO events SELECT i, hex(randomblob(150)) FROM n;
                """)
        }
        _ = try p.sqlite(Project.applicationWrites + """
            UPDATE events SET body = lower(body) WHERE id % 2 = 0;
            DELETE FROM events WHERE id % 5 = 0;
            """)
        let old = try digest(p)
        let started = Date()
        try p.ok("rollback", "--keep-new", "--yes")
        let window = UInt32(min(Date().timeIntervalSince(started) * 1.3, 20) * 1_000_000)
        let new = try digest(p)
        #expect(new != old)
        // The safety snapshot holds the live state before the salvage: each round starts from it.
        let live = try #require(try p.manifests().last?["id"] as? String)
        var rng = SystemRandomNumberGenerator()
        var seen: [String: Int] = [:]
        for round in 0..<24 {
            try p.ok("restore", live, "--yes", "--no-safety-snapshot")
            #expect(try digest(p) == old)
            // Until a kill has landed after the swap, the window widens round by round: a machine
            // slower now than at the timed run must see that side too.
            let widened = seen["new", default: 0] > 0 ? window : window / 8 * UInt32(8 + round)
            try CrashTests().killAfter(p, ["rollback", "--keep-new", "--yes"], microseconds: UInt32.random(in: 0..<widened, using: &rng))
            let now = try digest(p)
            #expect(now == old || now == new, "round \(round): a half-salvaged database: \(now)")
            #expect(try p.sqlite("PRAGMA integrity_check") == "ok", "round \(round)")
            seen[now == old ? "old" : "new", default: 0] += 1
        }
        #expect(seen["old", default: 0] > 0 && seen["new", default: 0] > 0, "outcomes: \(seen)")
    }
}
