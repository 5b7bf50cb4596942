import Foundation
import Testing

extension Project {
    /// The PostgreSQL example seeded at 0002, with `upgrade` (the `upgrade()` lines) as 0003 and
    /// `migsnap upgrade` run through it. `prepare` runs at 0002, before the upgrade.
    static func postgresSalvageStory(_ db: PostgresDatabase, _ upgrade: String,
                                     prepare: (Project) throws -> Void = { _ in }) throws -> Project {
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        try p.writeStep0003(upgrade)
        try prepare(p)
        try p.ok("upgrade")
        return p
    }
}

/// What the names of the scratch and old databases migsnap swaps `db` with start with (DatabaseSwap's naming).
func swapPrefix(of db: PostgresDatabase) -> String {
    let hash = db.name.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    return "migsnap_\(String(hash, radix: 16))_"
}

/// The scratch databases migsnap stages copies of `db` in, space-separated.
func scratchDatabases(of db: PostgresDatabase) throws -> String {
    try db.psql("SELECT coalesce(string_agg(datname, ' '), '') FROM pg_database WHERE starts_with(datname, '\(swapPrefix(of: db))')",
                database: "postgres")
}

@Suite("Salvage on PostgreSQL: rollback --keep-new (real server, real Alembic)")
struct PostgresSalvageTests {
    @Test func theNewRowsStayAndWhatTheMigrationTookComesBack() throws {
        let db = try PostgresDatabase()
        // S0 as a database of its own, copied before the upgrade: the expected merge is written on it by hand.
        let expected = db.name + "_expected"
        defer { _ = try? db.psql("DROP DATABASE IF EXISTS \(expected) WITH (FORCE)", database: "postgres") }
        let p = try Project.postgresSalvageStory(db, Project.destructiveMigration) { _ in
            try db.psql("CREATE DATABASE \(expected) TEMPLATE \(db.name)", database: "postgres")
        }
        // The application: order 11 and 12 take ids from the sequence, 12 is deleted again.
        try db.psql("""
            INSERT INTO customers (id, name, email, active) VALUES (11, 'Eve', 'eve@example.com', true);
            INSERT INTO orders (customer_id, total_cents) VALUES (11, 500), (1, 7);
            UPDATE customers SET email = 'first@example.com' WHERE id = 1;
            UPDATE orders SET total_cents = 1 WHERE id = 4;
            DELETE FROM orders WHERE id IN (2, 5, 12);
            DELETE FROM customers WHERE id = 2;
            """)
        let manifests = try p.manifests().filter { ["pre-upgrade", "post-upgrade"].contains($0["reason"] as? String) }
        let plan = try #require(try p.json(try p.ok("rollback", "--keep-new", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["via"] as? String == "salvage")
        #expect(plan["snapshot"] as? String == manifests.last { $0["reason"] as? String == "pre-upgrade" }?["id"] as? String)
        #expect(plan["after"] as? String == manifests.last?["id"] as? String)
        #expect(plan["undone"] as? [String] == ["0003"])
        let tables = try #require(plan["tables"] as? [[String: Any]])
        func counts(_ name: String) -> [Int?] {
            let t = tables.first { $0["name"] as? String == name }
            return ["inserted", "updated", "deleted", "come_back", "conflicts"].map { t?[$0] as? Int }
        }
        #expect(counts("public.customers") == [1, 1, 1, 8, 2], "\(tables)")
        #expect(tables.first { $0["name"] as? String == "public.customers" }?["conflict_keys"] as? [String] == ["id=1", "id=2"])
        #expect(counts("public.orders") == [1, 1, 2, 3, 0], "\(tables)")
        #expect(try scratchDatabases(of: db) == "", "a dry run leaves no scratch database")

        let r = try p.ok("rollback", "--keep-new", "--yes")
        #expect(r.stdout.contains("Salvaged") && r.stdout.contains("back at 0002"), "\(r.output)")

        // The expected result, by hand on S0: the application's changes on top, the conflicts with
        // the application's values (customer 1's name as the application read it, rewritten), the
        // new customer without a phone (the column the migration dropped).
        try db.psql("""
            UPDATE customers SET name = 'CUSTOMER 1', email = 'first@example.com' WHERE id = 1;
            DELETE FROM orders WHERE id IN (2, 5);
            DELETE FROM customers WHERE id = 2;
            UPDATE orders SET total_cents = 1 WHERE id = 4;
            INSERT INTO customers (id, name, email, active, phone) VALUES (11, 'Eve', 'eve@example.com', true, NULL);
            INSERT INTO orders (id, customer_id, total_cents) VALUES (11, 11, 500);
            """, database: expected)
        expectSameState(try db.state(), try db.state(expected))
        #expect(try db.psql("SELECT name || '|' || phone FROM customers WHERE id = 3") == "Customer 3|+1-555-0103")
        #expect(try p.alembic("current").stdout.contains("0002"))
        // Ids 11 and 12 were handed out by the application: the sequence goes on above them.
        #expect(try db.psql("INSERT INTO orders (customer_id, total_cents) VALUES (1, 1) RETURNING id").hasPrefix("13"))
        #expect(try db.psql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'migsnap%'") == "0")

        let after = try p.manifests()
        #expect(after.last?["reason"] as? String == "pre-restore" && p.revisionsOf(after.last!) == ["0003"])
        #expect(try scratchDatabases(of: db) == "")
    }

    @Test func restoreByIdDoesTheSameAsRollback() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, Project.destructiveMigration)
        try db.psql("INSERT INTO customers (id, name, email, active) VALUES (11, 'Eve', 'eve@example.com', true)")
        let s0 = try #require(try p.manifests().last { $0["reason"] as? String == "pre-upgrade" }?["id"] as? String)
        let viaRollback = try p.ok("rollback", "--keep-new", "--dry-run", "--json").stdout
        let viaRestore = try p.ok("restore", s0, "--keep-new", "--dry-run", "--json").stdout
        #expect(viaRestore == viaRollback)
        try p.ok("restore", s0, "--keep-new", "--yes")
        #expect(try db.psql("SELECT count(*) || '|' || sum(id) FROM customers") == "11|66")
        #expect(try p.alembic("current").stdout.contains("0002"))
    }

    @Test func triggersIdentityColumnsAKeylessTableAndATableTheMigrationCreated() throws {
        let db = try PostgresDatabase()
        let migration = Project.destructiveMigration + "\nop.create_table(\"coupons\", sa.Column(\"id\", sa.Integer, primary_key=True))"
        let p = try Project.postgresSalvageStory(db, migration) { _ in
            try db.psql("""
                CREATE TABLE notes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);
                INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');
                CREATE TABLE audit (what text);
                CREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN INSERT INTO audit VALUES ('order ' || new.id); RETURN new; END $$;
                CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION audit_order();
                """)
        }
        // The trigger fires in the application's database; the salvage must not fire it again.
        try db.psql("""
            INSERT INTO customers (id, name, email, active) VALUES (11, 'Eve', 'eve@example.com', true);
            INSERT INTO orders (customer_id, total_cents) VALUES (11, 500);
            INSERT INTO notes (body) VALUES ('d'), ('e');
            DELETE FROM notes WHERE id = 5;
            INSERT INTO coupons VALUES (1), (2);
            """)
        let plan = try #require(try p.json(try p.ok("rollback", "--keep-new", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["dropped_tables"] as? [String: Int] == ["public.coupons": 2], "\(plan)")
        let audit = (plan["tables"] as? [[String: Any]])?.first { $0["name"] as? String == "public.audit" }
        #expect(audit?["inserted"] as? Int == 1 && (audit?["note"] as? String)?.contains("left it alone") == true, "\(String(describing: audit))")

        try p.ok("rollback", "--keep-new", "--yes")
        #expect(try db.psql("SELECT string_agg(what, ',') FROM audit") == "order 11")
        #expect(try db.psql("SELECT tgenabled FROM pg_trigger WHERE tgname = 'orders_audit'") == "O")
        #expect(try db.psql("SELECT string_agg(body, '' ORDER BY id) FROM notes") == "abcd")
        // Id 5 was handed out by the application: the identity does not go back to it.
        #expect(try db.psql("INSERT INTO notes (body) VALUES ('f') RETURNING id").hasPrefix("6"))
        #expect(try db.psql("SELECT to_regclass('coupons') IS NULL") == "t")
        #expect(try db.psql("SELECT count(*) FROM customers") == "11")
    }

    // MARK: - Refusals (exit 4): nothing changed, no safety snapshot, no scratch database

    func expectRefused(_ db: PostgresDatabase, _ p: Project, saying words: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try db.state(), snapshots = try p.manifests().count
        let r = try p.migsnap("rollback", "--keep-new", "--yes")
        #expect(r.status == 4, "\(r.output)", sourceLocation: sourceLocation)
        for word in words {
            #expect(r.stderr.contains(word), "\(word) in: \(r.stderr)", sourceLocation: sourceLocation)
        }
        #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1, sourceLocation: sourceLocation)
        #expect(r.stderr.contains("Try: "), sourceLocation: sourceLocation)
        expectSameState(try db.state(), before, sourceLocation: sourceLocation)
        #expect(try p.manifests().count == snapshots, sourceLocation: sourceLocation)
        #expect(try scratchDatabases(of: db) == "", sourceLocation: sourceLocation)
    }

    @Test func aRenamedColumn() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, "op.alter_column(\"customers\", \"email\", new_column_name=\"mail\")")
        try db.psql("UPDATE customers SET mail = 'x@example.com' WHERE id = 4")
        try expectRefused(db, p, saying: ["public.customers.email is missing in S1", "public.customers.mail", "renamed"])
    }

    @Test func aRenamedTable() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, "op.rename_table(\"orders\", \"purchases\")")
        try expectRefused(db, p, saying: ["Table public.orders is missing in S1", "public.purchases", "renamed"])
    }

    @Test func aKeylessTableBothSidesChanged() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, "op.execute(\"DELETE FROM audit WHERE what = 'b'\")") { _ in
            try db.psql("CREATE TABLE audit (what text); INSERT INTO audit VALUES ('a'), ('b')")
        }
        try db.psql("INSERT INTO audit VALUES ('c')")
        try expectRefused(db, p, saying: ["Table public.audit has no primary key", "both the migration and the application"])
    }

    @Test func aResultThatBreaksAForeignKeyNamesTheRow() throws {
        // The migration deleted order 1; the application then deleted its customer. Order 1 would
        // come back pointing at nobody.
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, "op.execute(\"DELETE FROM orders WHERE id = 1\")")
        try db.psql("DELETE FROM customers WHERE id = 1")
        try expectRefused(db, p, saying: ["public.orders id=1 refers to a missing row of public.customers"])
    }

    @Test func aColumnWhoseTypeChanged() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, "op.alter_column(\"orders\", \"total_cents\", type_=sa.String(20))")
        try db.psql("INSERT INTO orders (id, customer_id, total_cents) VALUES (11, 1, 'twelve')")
        try expectRefused(db, p, saying: ["public.orders.total_cents is integer in S0 but character varying(20) now"])
    }

    @Test func aNotNullColumnTheMigrationDroppedCannotTakeNewRows() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, "op.drop_column(\"customers\", \"email\")")
        try db.psql("INSERT INTO customers (id, name, active) VALUES (11, 'Eve', true)")
        try expectRefused(db, p, saying: ["do not fit table public.customers", "email"])
    }
}

@Suite("Salvage under kill -9 (PostgreSQL)")
struct PostgresSalvageCrashTests {
    @Test func aKilledSalvageLeavesTheOldOrTheNewState() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgresSalvageStory(db, Project.destructiveMigration) { _ in
            try db.psql("""
                CREATE TABLE events (id int PRIMARY KEY, body text);
                INSERT INTO events SELECT i, md5(i::text) || md5((-i)::text) FROM generate_series(1, 10000) i;
                """)
        }
        try db.psql("""
            INSERT INTO customers (id, name, email, active) VALUES (11, 'Eve', 'eve@example.com', true);
            INSERT INTO orders (customer_id, total_cents) VALUES (11, 500);
            UPDATE customers SET email = 'first@example.com' WHERE id = 1;
            DELETE FROM orders WHERE customer_id = 2;
            DELETE FROM customers WHERE id = 2;
            UPDATE events SET body = upper(body) WHERE id % 2 = 0;
            DELETE FROM events WHERE id % 5 = 0;
            """)
        let old = try db.state()
        let started = Date()
        try p.ok("rollback", "--keep-new", "--yes")
        let run = Date().timeIntervalSince(started)
        let new = try db.state()
        #expect(new != old)
        // The safety snapshot holds the live state before the salvage: each round starts from it.
        let live = try #require(try p.manifests().last?["id"] as? String)
        let rounds = 6
        var seen: [String: Int] = [:]
        for round in 0..<rounds {
            try p.ok("restore", live, "--yes", "--no-safety-snapshot")
            expectSameState(try db.state(), old)
            // Round r kills somewhere in the r-th of `rounds` equal slices of two whole salvages: the
            // first rounds land before the swap, the last ones after the run has ended, even on a
            // machine somewhat slower now than at the timed run.
            let slice = run * 2 / Double(rounds)
            let delay = slice * (Double(round) + Double.random(in: 0..<1))
            try CrashTests().killAfter(p, ["rollback", "--keep-new", "--yes"], microseconds: UInt32(delay * 1_000_000))
            let now = try db.state()
            #expect(now == old || now == new, "round \(round), killed after \(delay) s: a half-salvaged database")
            seen[now == old ? "old" : "new", default: 0] += 1
            // What a killed run left (a lock, a scratch copy, the old database) does not stand in the next run's way.
            try p.ok("status")
            if now == old {
                try p.ok("rollback", "--keep-new", "--yes")
                expectSameState(try db.state(), new)
            }
        }
        #expect(seen["old", default: 0] > 0 && seen["new", default: 0] > 0, "outcomes: \(seen)")
        // The last round's debris, if any, is dropped by the next run that stages a copy.
        try p.ok("restore", live, "--yes", "--no-safety-snapshot")
        #expect(try scratchDatabases(of: db) == "")
    }
}
