import Foundation
import Testing

extension Project {
    /// A migration whose downgrade() deletes the orders through its own connection, then fails:
    /// Alembic leaves the database half way.
    func addBrokenDowngrade() throws {
        try writeMigration("0004_broken_downgrade", """
        \"\"\"adds a table; its downgrade deletes orders, then fails\"\"\"
        import sqlite3
        from alembic import op
        import sqlalchemy as sa

        revision = "0004"
        down_revision = "0003"

        def upgrade():
            op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))

        def downgrade():
            db = sqlite3.connect(op.get_bind().engine.url.database)
            db.execute("DELETE FROM orders")
            db.commit()
            db.close()
            raise RuntimeError("downgrade broke half way")
        """)
    }
}

@Suite("Rollback's fallback to alembic downgrade")
struct FallbackTests {
    @Test func thePlanSaysPreDowngradeWarnsOnceAndTheEndSaysRowsWereNotRestored() throws {
        let p = try Project().seeded()
        try p.alembic("upgrade", "head")
        let dry = try p.ok("rollback", "--dry-run")
        #expect(dry.stdout.contains("a pre-downgrade snapshot of the current state is taken first"), "\(dry.stdout)")
        #expect(!dry.output.contains("pre-restore"), "\(dry.output)")
        #expect(dry.output.components(separatedBy: "NOT").count == 2, "one warning: \(dry.output)")

        let r = try p.ok("rollback", "--yes")
        #expect(r.stderr.components(separatedBy: "Warning:").count == 2, "one warning: \(r.stderr)")
        #expect(!r.stderr.contains("WARNING"), "\(r.stderr)")
        #expect(r.stdout.contains("Downgraded \(p.database) to 0002 with Alembic; rows deleted by the undone migrations were NOT restored."), "\(r.stdout)")
        #expect(!r.stdout.contains("Restored"), "\(r.stdout)")
    }

    @Test func aDowngradeThatFailsHalfWayIsUndoneFromThePreDowngradeSnapshot() throws {
        let p = try Project().seeded()
        try p.addBrokenDowngrade()
        try p.alembic("upgrade", "head")
        let before = try p.dump()

        let r = try p.migsnap("rollback", "--yes")
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("downgrade broke half way"), "Alembic's output is passed through")
        #expect(r.stderr.contains("The database was restored to 0004 from snapshot"), "\(r.stderr)")
        #expect(try p.dump() == before)
        #expect(try p.guards().isEmpty, "the rollback did not happen: nothing is guarded")

        let kept = try p.migsnap("rollback", "--yes", "--no-restore-on-failure")
        #expect(kept.status == 1, "\(kept.output)")
        #expect(kept.stderr.contains("left as Alembic left it") && kept.stderr.contains("migsnap restore"), "\(kept.stderr)")
        #expect(try p.sqlite("SELECT count(*) FROM orders") == "0")
    }

    @Test func rollingBackToWhereTheDatabaseIsIsANoOp() throws {
        let p = try Project().upgradedWithSnapshots()
        let before = try p.dump()
        let count = try p.manifests().count
        for target in ["head", "0003"] {
            let r = try p.ok("rollback", target, "--yes")
            #expect(r.stdout.contains("Nothing to do: the database is already at 0003"), "\(r.output)")
        }
        #expect(try p.dump() == before)
        #expect(try p.manifests().count == count, "no safety snapshot")
        #expect(try p.guards().isEmpty)
    }
}

@Suite("The restore plan's row counts, by key")
struct PlanRowsTests {
    /// The seeded example, then the application's changes since the snapshot: customer 1 and its
    /// order deleted, customer 99 added with two orders, customer 2 renamed. By count, customers
    /// do not move (10 and 10): by key, one is added, one changed, one comes back.
    static let changes = """
        DELETE FROM orders WHERE customer_id = 1; DELETE FROM customers WHERE id = 1;
        INSERT INTO customers (id, name, email, active) VALUES (99, 'New', 'n@example.com', true);
        UPDATE customers SET name = 'Renamed' WHERE id = 2;
        INSERT INTO orders (customer_id, total_cents) VALUES (99, 5), (99, 6)
        """

    static func expectByKey(_ plan: [String: Any], schema: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        let c = schema + "customers", o = schema + "orders"
        #expect(plan["discarded_rows"] as? [String: Int] == [c: 1, o: 2], "\(plan)", sourceLocation: sourceLocation)
        #expect(plan["changed_rows"] as? [String: Int] == [c: 1], "\(plan)", sourceLocation: sourceLocation)
        #expect(plan["restored_rows"] as? [String: Int] == [c: 1, o: 1], "\(plan)", sourceLocation: sourceLocation)
    }

    static func expectByKey(human plan: String, schema: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = plan.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let header = lines.first { $0.first == "TABLE" }?.joined(separator: " ") ?? ""
        #expect(header == "TABLE ROWS NOW IN SNAPSHOT ADDED SINCE CHANGED SINCE COME BACK", "\(plan)", sourceLocation: sourceLocation)
        #expect(lines.contains([schema + "customers", "10", "10", "1", "1", "1"]), "\(plan)", sourceLocation: sourceLocation)
        #expect(lines.contains([schema + "orders", "11", "10", "2", "0", "1"]), "\(plan)", sourceLocation: sourceLocation)
        #expect(lines.contains([schema + "alembic_version", "1", "1", "-", "-", "-"]), "\(plan)", sourceLocation: sourceLocation)
        #expect(!plan.contains("NET") && !plan.contains("rows changed since the snapshot"), "\(plan)", sourceLocation: sourceLocation)
    }

    @Test func anAddedAndADeletedRowDoNotCancelOutAndAnUpdateShows() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try p.sqlite(Self.changes)
        Self.expectByKey(try #require(try p.json(try p.ok("restore", id, "--dry-run", "--json").stdout) as? [String: Any]))
        Self.expectByKey(human: try p.ok("restore", id, "--dry-run").stdout)
    }

    @Test func rollbackOverADestructiveMigrationCountsWhatComesBack() throws {
        let p = try Project().seeded()
        // 0003 deletes the 3 inactive customers and their orders, and drops customers.phone.
        _ = try p.snapshotThenMigrate()
        _ = try p.sqlite(Self.changes)
        let plan = try #require(try p.json(try p.ok("rollback", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["discarded_rows"] as? [String: Int] == ["customers": 1, "orders": 2], "\(plan)")
        #expect(plan["changed_rows"] as? [String: Int] == ["customers": 1], "\(plan)")
        #expect(plan["restored_rows"] as? [String: Int] == ["customers": 4, "orders": 4], "\(plan)")
    }

    @Test func anEmptySnapshotCountsEveryRowAsAdded() throws {
        let p = try Project()
        try p.ok("upgrade", "0002")
        try p.python("seed.py", p.database)
        let id = try #require(try p.manifests().last?["id"] as? String)
        let plan = try p.ok("restore", id, "--dry-run").stdout
        #expect(plan.split(separator: "\n").contains { $0.split(separator: " ") == ["customers", "10", "0", "10", "0", "0"] }, "\(plan)")
    }
}
