import Foundation
import Testing

extension Project {
    func writeMigration(_ name: String, _ body: String) throws {
        try body.write(toFile: dir + "/migrations/versions/\(name).py", atomically: true, encoding: .utf8)
    }

    func revisionsOf(_ manifest: [String: Any]) -> [String] { manifest["revisions"] as? [String] ?? [] }

    /// 0004 after 0003: runs `first` (Python, module `os` at hand), deletes every order through
    /// its own connection (so Alembic's rollback cannot undo it), then fails half way.
    func writeBrokenStep0004(first: String = "pass") throws {
        try writeMigration("0004_broken", """
        \"\"\"deletes orders through its own connection, then fails\"\"\"
        import os, sqlite3
        from alembic import op

        revision = "0004"
        down_revision = "0003"

        def upgrade():
        \(first.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            db = sqlite3.connect(op.get_bind().engine.url.database)
            db.execute("DELETE FROM orders")
            db.commit()
            db.close()
            raise RuntimeError("boom half way")

        def downgrade():
            pass
        """)
    }
}

@Suite("Upgrade and rollback end to end (SQLite, real Alembic)")
struct UpgradeRollbackTests {
    @Test func upgradeSnapshotsEveryStepThenRollbackBringsTheRowsBack() throws {
        let p = try Project()
        // A first deploy: no database file yet.
        let first = try p.ok("upgrade", "0002")
        #expect(first.stdout.contains("Upgraded"))
        var manifests = try p.manifests()
        let steps = first.stderr.split(separator: "\n").filter { $0.hasPrefix("step ") }
        #expect(steps.map { $0.prefix(8) } == ["step 1/2", "step 2/2"], "each step prints once: \(first.stderr)")
        #expect(steps.first?.contains("snapshot \(manifests[0]["id"] as? String ?? "?") taken") == true, "\(first.stderr)")
        // A snapshot before each step, and one after the last: S1 of a salvage (`rollback --keep-new`).
        #expect(manifests.map(p.revisionsOf) == [[], ["0001"], ["0002"]])
        #expect(manifests.map { $0["target_revision"] as? String } == ["0001", "0002", nil])
        #expect(manifests.map { $0["reason"] as? String } == ["pre-upgrade", "pre-upgrade", "post-upgrade"])
        #expect(first.stderr.contains("post-upgrade snapshot \(manifests[2]["id"] as? String ?? "?") taken at 0002"), "\(first.stderr)")
        let listed = try p.ok("list").stdout
        #expect(listed.contains("post-upgrade"), "\(listed)")

        try p.python("seed.py", p.database)
        let before = try p.dump()
        try p.ok("upgrade")
        #expect(try p.sqlite("SELECT count(*) FROM customers") == "7")
        manifests = try p.manifests()
        #expect(manifests.count == 5)
        #expect(p.revisionsOf(manifests[3]) == ["0002"] && manifests[3]["reason"] as? String == "pre-upgrade")
        #expect(p.revisionsOf(manifests[4]) == ["0003"] && manifests[4]["reason"] as? String == "post-upgrade")

        let nothing = try p.ok("upgrade")
        #expect(nothing.stdout.contains("already at 0003"))
        #expect(try p.manifests().count == 5, "nothing ran: no post-upgrade snapshot either")

        let plan = try #require(try p.json(try p.ok("rollback", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["current"] as? [String] == ["0003"])
        #expect(plan["target"] as? [String] == ["0002"])
        #expect(plan["undone"] as? [String] == ["0003"])
        #expect(plan["via"] as? String == "restore")
        // The newest snapshot at 0002 is the pre-upgrade one of this run, not the post-upgrade one
        // of the first run, which holds the state before the seed.
        #expect(plan["snapshot"] as? String == manifests[3]["id"] as? String)
        #expect(plan["discarded_rows"] as? [String: Int] == [:])
        #expect(plan["restored_rows"] as? [String: Int] == ["customers": 3, "orders": 3], "what 0003 deleted comes back")

        let rollback = try p.ok("rollback", "-1", "--yes")
        #expect(rollback.stdout.contains("Restored"))
        #expect(try p.dump() == before)
        #expect(try p.alembic("current").stdout.contains("0002"))

        // rollback base restores the empty database of the first deploy.
        try p.ok("rollback", "base", "--yes")
        #expect(try p.sqlite("SELECT count(*) FROM sqlite_schema WHERE name = 'customers'") == "0")
        let status = try #require(try p.json(try p.ok("status", "--json").stdout) as? [String: Any])
        #expect(status["current"] as? [String] == [])
    }

    @Test func rollbackMinusTwoAndAFullRevision() throws {
        let p = try Project()
        try p.ok("upgrade")
        let r = try p.ok("rollback", "-2", "--dry-run", "--json")
        let plan = try #require(try p.json(r.stdout) as? [String: Any])
        #expect(plan["target"] as? [String] == ["0001"])
        #expect(plan["undone"] as? [String] == ["0003", "0002"])
        try p.ok("rollback", "0001", "--yes")
        #expect(try p.alembic("current").stdout.contains("0001"))
        let bad = try p.migsnap("rollback", "-1", "-2")
        #expect(bad.status == 64)
        let unknown = try p.migsnap("rollback", "--frob")
        #expect(unknown.status == 64)
    }

    @Test func onceTakesOneSnapshotForTheWholeUpgrade() throws {
        let p = try Project()
        try p.ok("upgrade", "0001")
        try p.ok("upgrade", "--once")
        let manifests = try p.manifests()
        #expect(manifests.count == 4)
        #expect(p.revisionsOf(manifests[2]) == ["0001"])
        #expect(manifests[2]["target_revision"] as? String == "0003")
        #expect(manifests[3]["reason"] as? String == "post-upgrade" && p.revisionsOf(manifests[3]) == ["0003"])
        #expect(try p.alembic("current").stdout.contains("0003"))
    }

    @Test func upgradeDryRunJSON() throws {
        let p = try Project()
        try p.ok("upgrade", "0001")
        let plan = try #require(try p.json(try p.ok("upgrade", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["current"] as? [String] == ["0001"])
        let steps = try #require(plan["steps"] as? [[String: Any]])
        #expect(steps.map { $0["to"] as? String } == ["0002", "0003"])
        #expect(steps.map { $0["from"] as? [String] } == [["0001"], ["0002"]])
        #expect(try p.manifests().count == 2)
        let human = try p.ok("upgrade", "--dry-run").stdout
        #expect(human.contains("then a post-upgrade snapshot at 0003"), "\(human)")
    }

    @Test func aMigrationThatFailsHalfWayIsUndone() throws {
        let p = try Project().seeded()
        try p.writeBrokenStep0004()
        try p.alembic("upgrade", "0003")
        let before = try p.dump()
        let r = try p.migsnap("upgrade")
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("0004") && r.stderr.contains("restored"), "\(r.stderr)")
        #expect(r.stderr.contains("boom half way"), "Alembic's output is passed through")
        #expect(try p.dump() == before)

        let kept = try p.migsnap("upgrade", "--no-restore-on-failure")
        #expect(kept.status == 1)
        #expect(kept.stderr.contains("left as Alembic left it"))
        #expect(try p.sqlite("SELECT count(*) FROM orders") == "0")
    }

    @Test func theGuardRefusesTheSameMigrationAgainButAcceptsAnEditedOne() throws {
        let p = try Project().seeded()
        try p.ok("upgrade")
        try p.ok("rollback", "--yes")
        let refused = try p.migsnap("upgrade")
        #expect(refused.status == 4, "\(refused.output)")
        #expect(refused.stderr.contains("0003") && refused.stderr.contains("0003_drop_inactive_customers.py"))
        #expect(try p.alembic("current").stdout.contains("0002"))

        let status = try #require(try p.json(try p.ok("status", "--json").stdout) as? [String: Any])
        #expect((status["guards"] as? [[String: Any]])?.first?["revision"] as? String == "0003")

        let file = p.dir + "/migrations/versions/0003_drop_inactive_customers.py"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try (text.replacingOccurrences(of: "WHERE NOT active\")\n    with", with: "WHERE NOT active AND 0\")\n    with"))
            .write(toFile: file, atomically: true, encoding: .utf8)
        try p.ok("upgrade")
        #expect(try p.alembic("current").stdout.contains("0003"))
    }

    @Test func forceAppliesAGuardedMigration() throws {
        let p = try Project().seeded()
        try p.ok("upgrade")
        try p.ok("rollback", "--yes")
        try p.ok("upgrade", "--force")
        #expect(try p.alembic("current").stdout.contains("0003"))
    }

    @Test func rollbackWithoutASnapshotFallsBackToDowngrade() throws {
        let p = try Project().seeded()
        try p.alembic("upgrade", "head")
        let refused = try p.migsnap("rollback", "--yes", "--no-fallback")
        #expect(refused.status == 4, "\(refused.output)")
        #expect(try p.manifests().isEmpty)

        let dry = try #require(try p.json(try p.ok("rollback", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(dry["via"] as? String == "downgrade")
        #expect(dry["snapshot"] is NSNull)

        let r = try p.ok("rollback", "--yes")
        #expect(r.stderr.contains("NOT deleted rows"))
        #expect(try p.alembic("current").stdout.contains("0002"))
        let manifests = try p.manifests()
        #expect(manifests.map { $0["reason"] as? String } == ["pre-downgrade"])
        #expect(manifests.map(p.revisionsOf) == [["0003"]])
    }

    @Test func branchesAndMergePoints() throws {
        let p = try Project()
        for (rev, down) in [("0004a", "\"0003\""), ("0004b", "\"0003\""), ("0005", "(\"0004a\", \"0004b\")")] {
            try p.writeMigration(rev, """
            revision = "\(rev)"
            down_revision = \(down)
            branch_labels = None
            depends_on = None

            def upgrade():
                pass

            def downgrade():
                pass
            """)
        }
        let plan = try #require(try p.json(try p.ok("upgrade", "--dry-run", "--json").stdout) as? [String: Any])
        let steps = try #require(plan["steps"] as? [[String: Any]]).compactMap { $0["to"] as? String }
        #expect(steps.count == 6)
        #expect(steps.last == "0005")
        try p.ok("upgrade")
        #expect(try p.alembic("current").stdout.contains("0005"))
        #expect(try p.manifests().count == 7)

        // -1 from a merge point is ambiguous, as in Alembic: the message names what to type.
        let ambiguous = try p.migsnap("rollback", "--dry-run")
        #expect(ambiguous.status == 2, "\(ambiguous.output)")
        #expect(ambiguous.stderr.contains("0004a") && ambiguous.stderr.contains("0004b"), "\(ambiguous.stderr)")
    }

    @Test func twoHeadsNeedHeads() throws {
        let p = try Project()
        try p.writeMigration("0004x", "revision = '0004x'\ndown_revision = '0003'\n\ndef upgrade():\n    pass\n\ndef downgrade():\n    pass\n")
        try p.writeMigration("0004y", "revision: str = '0004y'\ndown_revision: str | None = '0003'\n\ndef upgrade():\n    pass\n\ndef downgrade():\n    pass\n")
        let head = try p.migsnap("upgrade", "--dry-run")
        #expect(head.status == 2)
        #expect(head.stderr.contains("0004x") && head.stderr.contains("0004y"))
        try p.ok("upgrade", "heads")
        let current = try p.alembic("current").stdout
        #expect(current.contains("0004x") && current.contains("0004y"))
        let status = try #require(try p.json(try p.ok("status", "--json").stdout) as? [String: Any])
        #expect(status["current"] as? [String] == ["0004x", "0004y"])
    }
}

@Suite("The env.py hook for teams that keep typing alembic upgrade")
struct HookTests {
    @Test func thePrintedSnippetSnapshotsBeforeAlembicUpgradeOnly() throws {
        let p = try Project()
        let snippet = try p.ok("hook").stdout
        let envPy = p.dir + "/migrations/env.py"
        let text = try String(contentsOfFile: envPy, encoding: .utf8)
        try text.replacingOccurrences(of: "config = context.config\n", with: "config = context.config\n" + snippet + "\n")
            .write(toFile: envPy, atomically: true, encoding: .utf8)
        try p.ok("upgrade", "0001")
        #expect(try p.manifests().count == 2, "migsnap upgrade's own Alembic runs skip the hook")
        try p.alembic("upgrade", "head")
        let manifests = try p.manifests()
        #expect(manifests.count == 3)
        #expect(manifests.last?["tags"] as? [String] == ["alembic-hook"])
        #expect(manifests.last?["revisions"] as? [String] == ["0001"])
        try p.alembic("current")
        #expect(try p.manifests().count == 3, "only upgrade triggers it")
    }
}

@Suite("Older code over a newer database")
struct MissingRevisionFileTests {
    @Test func rollbackExplainsAndRestoreByRevisionStillWorks() throws {
        let p = try Project().seeded()
        let before = try p.dump()
        try p.ok("upgrade")
        try FileManager.default.removeItem(atPath: p.dir + "/migrations/versions/0003_drop_inactive_customers.py")
        let rollback = try p.migsnap("rollback", "--yes")
        #expect(rollback.status == 2, "\(rollback.output)")
        #expect(rollback.stderr.contains("0003") && rollback.stderr.contains("restore --revision"))
        #expect(try p.ok("status").stderr.contains("Cannot tell the pending migrations"))
        try p.ok("restore", "--revision", "0002", "--yes")
        #expect(try p.dump() == before)
    }
}
