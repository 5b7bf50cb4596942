import Foundation
import Testing

/// The hot tier on PostgreSQL (issue 11): the pre-upgrade snapshot is dumped from a clone of the
/// database made on the server, which is kept closed to connections, and a rollback to it is a
/// rename swap.
@Suite("Hot tier (PostgreSQL, real server, real Alembic)", .serialized)
struct PostgresHotTierTests {
    func afterABadUpgrade() throws -> (PostgresDatabase, Project, before: String, hot: String) {
        let (db, p, before) = try Project.postgresAfterABadUpgrade()
        let hot = try #require(try p.preUpgradeIDs().last)
        return (db, p, before, hot)
    }

    @Test func rollbackRightAfterABadUpgradeSwapsTheCloneIn() throws {
        let (db, p, before, hot) = try afterABadUpgrade()
        #expect(try p.hotIDs() == [hot])
        let clones = db.hotCopies()
        #expect(clones.count == 1 && clones.first?.hasSuffix(hot.filter(\.isNumber)) == true, "\(clones)")
        #expect(try db.psql("SELECT datallowconn FROM pg_database WHERE datname = '\(clones.first ?? "")'", database: "postgres") == "f")
        #expect(try p.migsnap("verify").status == 0)
        // A dry run stages the clone without opening or changing it.
        let dry = try p.ok("rollback", "--dry-run")
        #expect(dry.stderr.contains("via its hot copy"), "\(dry.stderr)")
        #expect(db.hotCopies() == clones)
        #expect(try db.psql("SELECT datallowconn FROM pg_database WHERE datname = '\(clones.first ?? "")'", database: "postgres") == "f")

        let rollback = try p.ok("rollback", "--yes")
        #expect(rollback.stderr.contains("Restoring snapshot \(hot) via its hot copy"), "\(rollback.stderr)")
        expectSameState(try db.state(), before)
        #expect(try p.alembic("current").stdout.contains("0002"))
        // The clone is the database now: used up, and the manifest says so.
        #expect(db.hotCopies() == [])
        #expect(try p.hotIDs() == [])
    }

    @Test func anOpenedCloneIsNotTrustedAndTheDumpServes() throws {
        let (db, p, before, _) = try afterABadUpgrade()
        let clone = try #require(db.hotCopies().first)
        try db.psql("ALTER DATABASE \(clone) ALLOW_CONNECTIONS true", database: "postgres")
        try db.psql("DELETE FROM orders", database: clone)
        let rollback = try p.ok("rollback", "--yes")
        #expect(rollback.stderr.contains("cannot be trusted"), "\(rollback.stderr)")
        #expect(!rollback.stderr.contains("via its hot copy"))
        expectSameState(try db.state(), before)
        #expect(db.hotCopies() == [])
        #expect(try p.hotIDs() == [])
    }

    @Test func anotherSessionMeansNoHotCopyAndTheUpgradeGoesOn() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        // A client holding a connection to the database for the whole upgrade.
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        client.arguments = ["-X", "-c", "SELECT pg_sleep(30)"]
        client.environment = db.admin.with(database: db.name).environment
        client.standardOutput = FileHandle.nullDevice
        client.standardError = FileHandle.nullDevice
        try client.run()
        defer {
            kill(client.processIdentifier, SIGKILL)
            client.waitUntilExit()
        }
        var connected = false
        for _ in 0..<100 where !connected {
            connected = try db.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = '\(db.name)' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()", database: "postgres") == "1"
            if !connected { usleep(50_000) }
        }
        try #require(connected)
        let upgrade = try p.ok("upgrade")
        #expect(upgrade.stderr.contains("no hot copy this time"), "\(upgrade.stderr)")
        // The copy from the earlier run is older than this upgrade's snapshot: dropped too.
        #expect(try p.hotIDs() == [])
        #expect(db.hotCopies() == [])
        #expect(try db.psql("SELECT count(*) FROM customers") == "7")
    }

    @Test func aNewerUpgradeReplacesTheCloneAndPruneDropsIt() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0001")
        let first = try #require(try p.hotIDs().first)
        try p.ok("upgrade")
        let hot = try p.hotIDs()
        #expect(hot.count == 1 && hot != [first], "\(hot)")
        #expect(db.hotCopies().count == 1)
        #expect(db.hotCopies().first?.hasSuffix(hot.first?.filter(\.isNumber) ?? "-") == true)
        try p.ok("snapshot", "--quiet")
        try p.writePolicy("""
            {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_per_revision": 0, "keep_tags": []}
            """)
        try p.ok("prune", "--yes")
        #expect(try p.hotIDs() == [])
        #expect(db.hotCopies() == [])
    }

    @Test func keepHotZeroClonesNothing() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.writePolicy(#"{"keep_hot": 0}"#)
        try p.ok("upgrade")
        #expect(try p.hotIDs() == [])
        #expect(db.hotCopies() == [])
    }
}
