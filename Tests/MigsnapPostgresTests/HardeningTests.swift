import Foundation
import MigsnapCore
@testable import MigsnapPostgres
import Testing

/// Issue 13, items 10, 11 and 13: scratch databases of live runs, failing restores, stderr debris.
@Suite("PostgreSQL hardening", .serialized)
struct PostgresHardeningTests {
    func databases(like prefix: String, _ server: PostgresTarget) throws -> [String] {
        try Connection(server).column("SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", [prefix])
    }

    @Test func debrisCleanupSparesTheScratchCopyOfALiveRun() throws {
        let db = try TestDatabase()
        let prefix = DatabaseSwap.debrisPrefix(db.name)
        let live = DatabaseSwap(admin: try Connection(db.server), live: db.name, context: "test")
        try live.createScratch()
        defer { live.dropScratch() }
        // A killed run's copy: nobody holds its lock.
        try Connection(db.server).execute("CREATE DATABASE \(quoteIdentifier(prefix + "_new_dead1"))")
        let other = DatabaseSwap(admin: try Connection(db.server), live: db.name, context: "test")
        try other.dropDebris()
        #expect(try databases(like: prefix, db.server) == [live.scratch], "the live run's scratch copy survives, the dead one's is gone")
    }

    @Test("A failing pg_restore says its first error and drops the scratch copy", arguments: [
        ("simulated failure in check_total", "simulated failure in check_total"),
        ("could not extend file \"base/1/2\": No space left on device", "ran out of disk space"),
    ])
    func failingRestoreSurfacesTheCause(raise: String, expected: String) throws {
        let db = try TestDatabase()
        // Valid while the snapshot is taken; fails for every row loaded into a scratch copy.
        try db.sql("""
            CREATE FUNCTION check_total(int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
            BEGIN
              IF current_database() LIKE 'migsnap\\_%' THEN RAISE EXCEPTION '\(raise.replacingOccurrences(of: "'", with: "''"))'; END IF;
              RETURN true;
            END $$;
            CREATE TABLE big (id int PRIMARY KEY, total int CHECK (check_total(total)));
            INSERT INTO big SELECT i, i FROM generate_series(1, 1000) i;
            CREATE TABLE other (id int PRIMARY KEY);
            INSERT INTO other SELECT generate_series(1, 1000);
            """)
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        let before = try db.state()
        do {
            _ = try db.engine.stageRestore(payload: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
            Issue.record("the restore succeeded")
        } catch let error as MigsnapError {
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(!error.message.hasSuffix("a worker process died unexpectedly"), "\(error.message)")
        }
        #expect(try databases(like: DatabaseSwap.debrisPrefix(db.name), db.server).isEmpty, "the scratch copy was dropped")
        #expect(try db.state() == before)
    }

    /// A payload pg_restore cannot read is found by the restore into the scratch copy itself (no
    /// separate read first), and still reported as a damaged snapshot, not as a failing server.
    @Test func anUnreadablePayloadIsAVerificationFailure() throws {
        let db = try TestDatabase()
        try db.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);")
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        let whole = try Data(contentsOf: db.payload())
        try whole.prefix(whole.count / 2).write(to: db.payload())
        let before = try db.state()
        do {
            _ = try db.engine.stageRestore(payload: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
            Issue.record("a truncated payload was restored")
        } catch let error as MigsnapError {
            guard case .verificationFailed = error else {
                Issue.record("not a verification failure: \(error)")
                return
            }
            #expect(error.message.contains("pg_restore cannot read"), "\(error.message)")
        }
        #expect(try databases(like: DatabaseSwap.debrisPrefix(db.name), db.server).isEmpty, "the scratch copy was dropped")
        #expect(try db.state() == before)
    }

    /// The child's stderr goes through a pipe drained as it runs. (That no temporary file is needed
    /// is checked end to end, with TMPDIR missing for the migsnap process alone, in
    /// PostgresHardeningTests: changing this process's TMPDIR would break tests running beside it.)
    @Test func childStderrIsDrainedThroughAPipe() throws {
        // More than a pipe holds, so an undrained pipe would block the child.
        let output = try ChildProcess.run("/bin/sh", ["-c", "head -c 300000 /dev/zero | tr '\\0' e >&2; echo >&2; echo 'pg_restore: error: the real one' >&2; exit 3"],
                                          environment: [:], captureOutput: false)
        #expect(output.status == 3)
        #expect(output.reason == "pg_restore: error: the real one")
    }
}
