import Foundation
import Testing

extension Project {
    /// The example through migsnap step by step, with application rows written at 0002, so
    /// that every step has a snapshot before it: 0001 and 0002 only add, 0003 removes.
    func upgradedWithSnapshots() throws -> Project {
        try ok("upgrade", "0002")
        try python("seed.py", database)
        try ok("upgrade")
        return self
    }

    /// Upgraded to head by Alembic alone (no snapshot around 0002 and 0003), then restored to a
    /// manual snapshot at 0001: migsnap cannot tell what 0002 and 0003 removed.
    func restoredOverStepsWithoutSnapshots() throws -> Project {
        try alembic("upgrade", "0001")
        try ok("snapshot")
        try alembic("upgrade", "head")
        try ok("restore", "--revision", "0001", "--yes")
        return self
    }

    func guards() throws -> [[String: Any]] {
        let status = try #require(try json(try ok("status", "--json").stdout) as? [String: Any])
        return try #require(status["guards"] as? [[String: Any]])
    }
}

@Suite("Guards: only migrations that lost data")
struct GuardTests {
    @Test func manifestsRecordTablesColumnsAndRows() throws {
        let p = try Project().upgradedWithSnapshots()
        let last = try #require(try p.manifests().last { $0["reason"] as? String == "pre-upgrade" })
        let tables = try #require((last["shape"] as? [String: Any])?["tables"] as? [String: [String: Any]])
        #expect(tables["customers"]?["columns"] as? [String] == ["id", "name", "email", "active", "phone"])
        #expect(tables["customers"]?["rows"] as? Int == 10)
        #expect(tables["orders"]?["rows"] as? Int == 10)
    }

    @Test func onlyTheDestructiveMigrationIsGuardedAndItSaysWhatItRemoved() throws {
        let p = try Project().upgradedWithSnapshots()
        try p.ok("rollback", "0001", "--yes")
        let guards = try p.guards()
        #expect(guards.map { $0["revision"] as? String } == ["0003"], "0002 only adds a column: \(guards)")
        let removed = try #require(guards.first?["removed"] as? String)
        #expect(removed == "dropped column customers.phone; 3 rows fewer in customers; 3 rows fewer in orders")

        // 0002 is applied again without --force; 0003 is refused, naming what it removed.
        try p.ok("upgrade", "0002")
        let refused = try p.migsnap("upgrade")
        #expect(refused.status == 4, "\(refused.output)")
        #expect(refused.stderr.contains("Migration 0003") && refused.stderr.contains("dropped column customers.phone"), "\(refused.stderr)")
        #expect(try p.alembic("current").stdout.contains("0002"))
    }

    @Test func whereMigsnapCannotTellItGuardsAndSaysWhy() throws {
        let p = try Project().restoredOverStepsWithoutSnapshots()
        let guards = try p.guards()
        #expect(Set(guards.compactMap { $0["revision"] as? String }) == ["0002", "0003"])
        for g in guards {
            #expect((g["removed"] as? String)?.contains("cannot tell") == true, "\(g)")
            #expect((g["removed"] as? String)?.contains("no snapshot was taken right before it") == true, "\(g)")
        }
    }

    @Test func theRefusalNamesTheFirstGuardedStepAndTheDryRunExitsAsTheRunWould() throws {
        let p = try Project().restoredOverStepsWithoutSnapshots()

        let refused = try p.migsnap("upgrade")
        #expect(refused.status == 4)
        #expect(refused.stderr.contains("Migration 0002"), "the first guarded step, not the last: \(refused.stderr)")

        let dry = try p.migsnap("upgrade", "--dry-run")
        #expect(dry.status == 4, "\(dry.output)")
        #expect(dry.stdout.contains("guarded:"), "\(dry.stdout)")
        #expect(dry.stderr.contains("Migration 0002"))

        let json = try p.migsnap("upgrade", "--dry-run", "--json")
        #expect(json.status == 4)
        let plan = try #require(try p.json(json.stdout) as? [String: Any])
        let details = try #require(plan["refused"] as? [String: Any])
        #expect(details["revision"] as? String == "0002")
        #expect((details["message"] as? String)?.contains("Migration 0002") == true)
        #expect((plan["steps"] as? [[String: Any]])?.count == 2)

        let forced = try p.migsnap("upgrade", "--dry-run", "--json", "--force")
        #expect(forced.status == 0, "\(forced.output)")
        #expect(try #require(try p.json(forced.stdout) as? [String: Any])["refused"] is NSNull)
        #expect(try p.alembic("current").stdout.contains("0001"))
    }

    @Test func unguardClearsNamedGuardsOrAllAndSaysWhat() throws {
        let p = try Project().restoredOverStepsWithoutSnapshots()
        let unknown = try p.migsnap("unguard", "0001")
        #expect(unknown.status == 2, "\(unknown.output)")
        #expect(unknown.stderr.contains("No guard on 0001"))
        #expect(try p.migsnap("unguard").status == 64)

        let dry = try p.ok("unguard", "0002", "--dry-run")
        #expect(dry.stdout.contains("Would clear the guard on 0002"), "\(dry.stdout)")
        #expect(try p.guards().count == 2)

        let one = try p.ok("unguard", "0002")
        #expect(one.stdout.contains("Cleared the guard on 0002") && one.stdout.contains("cannot tell"), "\(one.stdout)")
        #expect(try p.guards().map { $0["revision"] as? String } == ["0003"])

        let all = try p.ok("unguard", "--all")
        #expect(all.stdout.contains("Cleared the guard on 0003"), "\(all.stdout)")
        #expect(try p.guards().isEmpty)
        #expect(try p.ok("unguard", "--all").stdout.contains("No guards to clear"))
        try p.ok("upgrade")
    }

    @Test func aGuardNeverOutlivesItsMeaning() throws {
        // Restoring a snapshot taken at head clears the guards of head and everything before it.
        let p = try Project().upgradedWithSnapshots()
        try p.ok("snapshot", "--tag", "at-head")
        try p.ok("rollback", "--yes")
        #expect(try p.guards().map { $0["revision"] as? String } == ["0003"])
        let atHead = try #require(try p.manifests().first { ($0["tags"] as? [String]) == ["at-head"] }?["id"] as? String)
        try p.ok("restore", atHead, "--yes")
        #expect(try p.guards().isEmpty, "status shows no guard on 0003 at head")
        let store = try #require(String(data: fileBytes(p.store + "/guards.json") ?? Data(), encoding: .utf8))
        #expect(!store.contains("0003"), "the guard is gone from the store, not only hidden: \(store)")

        // An upgrade that applies a guarded revision again (forced) clears its guard.
        try p.ok("rollback", "--yes")
        #expect(try p.guards().count == 1)
        try p.ok("upgrade", "--force")
        #expect(try p.guards().isEmpty)
        #expect(!(String(data: fileBytes(p.store + "/guards.json") ?? Data(), encoding: .utf8) ?? "").contains("0003"))
    }
}
