import Foundation
import Testing

/// Issue 13 on PostgreSQL, through the built binary: passwords (4), two stores (9), an unreadable
/// table (14), a missing TMPDIR (12).
@Suite("PostgreSQL hardening end to end", .serialized)
struct PostgresHardeningEndToEndTests {
    /// pg_dump and pg_restore wrappers that log their arguments and which password source they got.
    func loggingClientTools() throws -> (bindir: String, log: String) {
        let real = try #require(ProcessInfo.processInfo.environment["MIGSNAP_TEST_PG_BINDIR"])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-tools-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let log = dir + "/calls.log"
        for tool in ["pg_dump", "pg_restore"] {
            let script = """
                #!/bin/sh
                echo "ARGS $*" >> \(log)
                [ -n "$PGPASSWORD" ] && echo "ENV PGPASSWORD" >> \(log)
                [ -n "$PGPASSFILE" ] && echo "ENV PGPASSFILE" >> \(log)
                exec \(real)/\(tool) "$@"
                """
            FileManager.default.createFile(atPath: dir + "/" + tool, contents: Data(script.utf8), attributes: [.posixPermissions: 0o755])
        }
        return (dir, log)
    }

    func withoutPassword(_ url: String, _ password: String) -> String {
        url.replacingOccurrences(of: ":" + (password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password) + "@", with: "@")
    }

    @Test func passwordsFromPGPASSWORDOrPgpassReachLibpqAndEveryChildButNoCommandLine() throws {
        let db = try PostgresDatabase()
        let copy = try PostgresDatabase()
        let p = try Project.postgres(db)
        let bare = withoutPassword(db.url, db.password)
        #expect(!bare.contains(db.password) && bare != db.url)
        let tools = try loggingClientTools()
        p.environment["MIGSNAP_PG_BINDIR"] = tools.bindir
        p.environment["DATABASE_URL"] = bare
        p.environment["PGPASSWORD"] = db.password
        try p.ok("upgrade")
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.ok("restore", id, "--yes")

        // ~/.pgpass's format, through PGPASSFILE; the copy's URL only in MIGSNAP_RESTORE_TO_URL.
        let passfile = tools.bindir + "/pgpass"
        FileManager.default.createFile(atPath: passfile, contents: Data("*:*:*:*:\(db.password.replacingOccurrences(of: ":", with: "\\:"))\n".utf8),
                                       attributes: [.posixPermissions: 0o600])
        p.environment["PGPASSWORD"] = nil
        p.environment["PGPASSFILE"] = passfile
        try db.psql("DELETE FROM orders")
        let live = try db.state()
        let r = try p.migsnap(["restore", id, "--yes"], env: ["MIGSNAP_RESTORE_TO_URL": withoutPassword(copy.url, copy.password)])
        #expect(r.status == 0, "\(r.output)")
        #expect(try copy.psql("SELECT count(*) FROM alembic_version") == "1", "restored into the database of MIGSNAP_RESTORE_TO_URL")
        expectSameState(try db.state(), live)

        let calls = try String(contentsOfFile: tools.log, encoding: .utf8)
        #expect(calls.contains("ARGS --format=custom") && calls.contains("ARGS --dbname="))
        #expect(calls.contains("ENV PGPASSWORD") && calls.contains("ENV PGPASSFILE"))
        #expect(!calls.contains(db.password))
    }

    @Test func aSecondUpgradePlansOnlyOnceItHoldsTheDatabaseLock() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0001")
        // Another store's run holds the database lock (PostgresEngine.withAdvisoryLock's key).
        let hash = db.name.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        holder.arguments = ["-X", "-q", "-c", "SELECT pg_advisory_lock(\(0x6D69_6773), \(Int32(truncatingIfNeeded: hash)))", "-c", "SELECT pg_sleep(60)"]
        let holderName = "lock-holder-\(db.name)"
        holder.environment = ProcessInfo.processInfo.environment.merging(db.admin.with(database: "postgres").environment) { $1 }
            .merging(["PGAPPNAME": holderName]) { $1 }
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        sleep(1)

        let waiting = Process()
        waiting.executableURL = URL(fileURLWithPath: Paths.binary)
        waiting.arguments = ["upgrade", "--store", p.dir + "/other-store"]
        waiting.currentDirectoryURL = URL(fileURLWithPath: p.dir)
        waiting.environment = ProcessInfo.processInfo.environment.merging(p.environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        waiting.standardOutput = out
        waiting.standardError = err
        try waiting.run()
        sleep(2)
        // Meanwhile the holder's run upgrades the database, then ends.
        try p.alembic("upgrade", "head")
        // The server notices a vanished client only after pg_sleep; end its session instead.
        try db.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '\(holderName)'", database: "postgres")
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        waiting.waitUntilExit()
        #expect(waiting.terminationStatus == 0, "\(stdout)\(stderr)")
        #expect(stdout.contains("Nothing to do"), "\(stdout)\(stderr)")
        #expect(try db.psql("SELECT version_num FROM alembic_version") == "0003")
    }

    @Test func aTableTheRoleCannotReadIsCountedAsUnknownAndTheRestoreFailsBeforeAnyChange() throws {
        let appURL = try #require(ProcessInfo.processInfo.environment["MIGSNAP_TEST_PG_APP_URL"])
        let db = try PostgresDatabase()
        try db.psql("ALTER DATABASE \(db.name) OWNER TO migsnap_app; ALTER SCHEMA public OWNER TO migsnap_app")
        let p = try Project()
        p.environment["DATABASE_URL"] = PostgresDatabase.url(appURL, database: db.name)
        try p.ok("upgrade")
        // Another role's table, no grant to the app's role.
        try db.psql("CREATE SCHEMA audit; CREATE TABLE audit.secret (x int); INSERT INTO audit.secret VALUES (1)")
        let before = try db.state()

        let r = try p.migsnap("rollback", "--dry-run", "--json")
        #expect(r.status == 0, "\(r.output)")
        let plan = try #require(try p.json(r.stdout) as? [String: Any])
        let unknown = try #require(plan["unknown_rows"] as? [String: String], "\(r.stdout)")
        #expect(unknown["audit.secret"]?.contains("permission denied") == true, "\(unknown)")
        #expect((plan["discarded_rows"] as? [String: Int])?["audit.secret"] == nil)
        #expect((plan["rows_now"] as? [String: Int])?["public.customers"] != nil)

        let human = try p.migsnap("rollback", "--dry-run")
        #expect(human.status == 0 && human.stdout.contains("audit.secret: rows now unknown (permission denied"), "\(human.output)")

        let refused = try p.migsnap("rollback", "--yes")
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.stderr.contains("permission denied"), "\(refused.stderr)")
        expectSameState(try db.state(), before)
    }

    @Test func aMissingTMPDIRIsNoObstacle() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade")
        let missing = ["TMPDIR": "/nonexistent-\(UUID().uuidString)"]
        let snapshot = try p.migsnap(["snapshot", "--quiet"], env: missing)
        #expect(snapshot.status == 0, "\(snapshot.output)")
        let restore = try p.migsnap(["restore", snapshot.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "--yes"], env: missing)
        #expect(restore.status == 0, "\(restore.output)")
    }
}
