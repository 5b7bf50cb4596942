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

@Suite("The restore plan's row counts")
struct PlanRowsTests {
    @Test func columnsAreLabelledForWhatTheyAreAndTheLimitIsSaid() throws {
        let p = try Project().seeded()
        try p.ok("snapshot")
        // One customer deleted and another added: the net count of customers does not move.
        _ = try p.sqlite("DELETE FROM orders WHERE customer_id = 1; DELETE FROM customers WHERE id = 1; INSERT INTO customers (id, name, email, active) VALUES (99, 'New', 'n@example.com', 1); INSERT INTO orders (customer_id, total_cents) VALUES (99, 5), (99, 6)")
        let id = try #require(try p.manifests().first?["id"] as? String)
        let plan = try p.ok("restore", id, "--dry-run").stdout
        let header = try #require(plan.split(separator: "\n").first { $0.contains("TABLE") })
        #expect(header.contains("ROWS NOW") && header.contains("IN SNAPSHOT") && header.contains("NET") && !header.contains("DISCARDED"), "\(plan)")
        let customers = try #require(plan.split(separator: "\n").first { $0.contains("customers") })
        #expect(customers.split(separator: " ").map(String.init) == ["customers", "10", "10", "0"], "\(plan)")
        let orders = try #require(plan.split(separator: "\n").first { $0.contains("orders") })
        #expect(orders.split(separator: " ").map(String.init) == ["orders", "11", "10", "+1"], "\(plan)")
        #expect(plan.contains("rows changed since the snapshot"), "\(plan)")
    }

    @Test func noNoteWhereTheCountsTellItAll() throws {
        let p = try Project()
        try p.ok("upgrade", "0002")
        try p.python("seed.py", p.database)
        let id = try #require(try p.manifests().last?["id"] as? String)
        let plan = try p.ok("restore", id, "--dry-run").stdout
        #expect(plan.contains("+10"), "\(plan)")
        #expect(!plan.contains("rows changed since the snapshot"), "the snapshot's tables are empty: nothing hides: \(plan)")
    }
}
