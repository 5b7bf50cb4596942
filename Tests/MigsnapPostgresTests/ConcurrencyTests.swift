import Foundation
import MigsnapCore
@testable import MigsnapPostgres
import Testing

/// A psql child that runs `script` until stopped; what it prints goes to `output`.
final class BackgroundClient {
    private let process = Process()
    let output: URL

    init(_ db: TestDatabase, shellLoop script: String) throws {
        output = db.directory.appendingPathComponent("client-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, "client", try TestServer.tool("psql")]
        process.environment = ProcessInfo.processInfo.environment.merging(db.target.environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() -> [String] {
        // SIGKILL: children spawned from Swift Testing's worker threads inherit a mask that blocks SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }
}

@Suite("PostgreSQL under concurrent clients")
struct ConcurrencyTests {
    @Test("a snapshot taken while transfers commit holds a consistent sum and the matching revision")
    func consistentUnderWrites() throws {
        let db = try TestDatabase()
        try db.sql("""
            CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
            INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 100) g;
            CREATE TABLE alembic_version (version_num varchar(32));
            INSERT INTO alembic_version VALUES ('rev0');
            CREATE TABLE counter (n int, stop boolean); INSERT INTO counter VALUES (0, false);
            CREATE TABLE filler AS SELECT md5(g::text) AS h FROM generate_series(1, 200000) g;
            """)
        // Each transaction moves money and bumps the counter and the revision together.
        let writer = try BackgroundClient(db, shellLoop: """
            exec "$1" -X -q -v ON_ERROR_STOP=1 -c "DO \\$\\$ DECLARE a int; b int; BEGIN
              WHILE NOT (SELECT stop FROM counter) LOOP
                a := 1 + (random() * 99)::int; b := 1 + (random() * 99)::int;
                UPDATE accounts SET balance = balance - 7 WHERE id = a;
                UPDATE accounts SET balance = balance + 7 WHERE id = b;
                UPDATE counter SET n = n + 1;
                UPDATE alembic_version SET version_num = 'rev' || (SELECT n FROM counter);
                COMMIT;
              END LOOP; END \\$\\$"
            """)
        var attempts = 0
        while try Int(db.sql("SELECT n FROM counter")[0])! < 50 && attempts < 200 {
            attempts += 1
            usleep(50_000)
        }
        let capture = try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        try db.sql("UPDATE counter SET stop = true")
        _ = writer.stop()
        // The snapshot saw at least the 50 commits waited for, and nothing the writer did later.
        let live = try Int(db.sql("SELECT n FROM counter")[0])!

        let copy = try TestDatabase()
        try Connection(copy.server).execute("DROP DATABASE \(quoteIdentifier(copy.name))")
        try copy.engine.restore(payload: db.payload(), expectedRevisions: capture.revisions, versionTable: VersionTable(), progress: SilentProgress())
        #expect(try copy.sql("SELECT sum(balance) FROM accounts") == ["10000"])
        let n = try copy.sql("SELECT n FROM counter")[0]
        #expect(capture.revisions == ["rev\(n)"])
        #expect(Int(n)! >= 50 && Int(n)! <= live)
    }

    @Test("a client that keeps querying during a restore sees the old state or the new one, nothing between")
    func clientsSeeOldOrNew() throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: VersionTable())
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        try damage(db, versionTable: VersionTable())
        let damagedCount = try db.sql("SELECT count(*) FROM app.orders")[0]
        // A reader that holds a session while the restore loads, and reconnects when it is ended.
        let reader = try BackgroundClient(db, shellLoop: """
            while :; do
              "$1" -X -At -c "SELECT count(*) || ' ' || (SELECT version_num FROM alembic_version) FROM app.orders" \
                   -c "SELECT pg_sleep(0.05)" -c "SELECT count(*) || ' ' || (SELECT version_num FROM alembic_version) FROM app.orders" \
                   | grep -v '^$'
            done
            """)
        let observer = try Connection(db.target)
        try db.engine.restore(payload: db.payload(), expectedRevisions: ["abc123"], versionTable: VersionTable(), progress: SilentProgress())
        var seen = Set(reader.stop())
        seen.remove("")
        #expect(seen.isSubset(of: ["\(damagedCount) def456", "300 abc123"]), "observed \(seen)")
        #expect(seen.contains("\(damagedCount) def456"))
        // A session open across the swap was ended rather than left on the old copy.
        #expect(throws: QueryError.self) { try observer.execute("SELECT 1") }
        #expect(try db.sql("SELECT count(*) FROM app.orders") == ["300"])
    }

    @Test("the advisory lock refuses a second holder, naming the first, and is free again afterwards")
    func advisoryLock() throws {
        let db = try TestDatabase()
        let first = db.engine
        let second = db.engine
        try first.withAdvisoryLock {
            #expect {
                try second.withAdvisoryLock(wait: 0.3) {}
            } throws: { error in
                guard case .refused(let message, _) = error as? MigsnapError else { return false }
                return message.contains("pid ") && message.contains("'migsnap'") && message.contains(db.name)
            }
        }
        #expect(try second.withAdvisoryLock(wait: 0.3) { 42 } == 42)
    }
}
