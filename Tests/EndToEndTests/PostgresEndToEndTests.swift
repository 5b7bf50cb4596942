import Foundation
import MigsnapCore
import MigsnapPostgres
import Testing

/// A database of its own on the test cluster (scripts/pg-cluster), dropped afterwards.
final class PostgresDatabase {
    let name: String
    let url: String
    let password: String
    let admin: PostgresTarget
    let target: PostgresTarget

    init() throws {
        let raw = try #require(ProcessInfo.processInfo.environment["MIGSNAP_TEST_PG_URL"],
                               "MIGSNAP_TEST_PG_URL is not set: run the tests through scripts/test, which starts PostgreSQL.")
        guard case .postgresql(let admin) = try DatabaseURL.parse(raw) else {
            throw MigsnapError.invalidInput("MIGSNAP_TEST_PG_URL is not a PostgreSQL URL")
        }
        self.admin = admin
        password = admin.password ?? ""
        name = "e2e_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        target = admin.with(database: name)
        url = Self.url(raw, database: name)
        try psql("CREATE DATABASE \(name)", database: "postgres")
    }

    deinit {
        _ = try? psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", database: "postgres")
        // The hot copies migsnap cloned from it (an upgrade keeps one by default).
        for clone in hotCopies() {
            _ = try? psql("DROP DATABASE IF EXISTS \(clone) WITH (FORCE)", database: "postgres")
        }
    }

    /// The hot copies of this database on the server, by name.
    func hotCopies() -> [String] {
        let prefix = PostgresEngine.hotCopyPrefix(forDatabase: name)
        let names = (try? psql("SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE starts_with(datname, '\(prefix)')",
                               database: "postgres")) ?? ""
        return names.split(separator: " ").map(String.init)
    }

    static func url(_ raw: String, database: String) -> String {
        let query = raw.firstIndex(of: "?").map { String(raw[$0...]) } ?? ""
        let base = raw.firstIndex(of: "?").map { String(raw[..<$0]) } ?? raw
        return String(base[..<base.lastIndex(of: "/")!]) + "/" + database + query
    }

    /// Runs SQL with psql, the password in the environment; returns unaligned output.
    @discardableResult
    func psql(_ sql: String, database: String? = nil) throws -> String {
        let env = admin.with(database: database ?? name).environment
        let r = try run("/usr/bin/psql", ["-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], in: "/tmp", environment: env)
        #expect(r.status == 0, "psql: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Schema (pg_dump, without the random \restrict lines) and every table's rows, as one text.
    func state(_ database: String? = nil) throws -> String {
        let db = database ?? name
        let env = admin.with(database: db).environment
        let schema = try run("/usr/bin/pg_dump", ["--schema-only", "--no-owner"], in: "/tmp", environment: env)
        #expect(schema.status == 0, "pg_dump: \(schema.stderr)")
        let lines = schema.stdout.split(separator: "\n").filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
        let tables = try psql("SELECT string_agg(format('%I.%I', schemaname, tablename), ' ' ORDER BY schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')", database: db)
        var rows: [String] = []
        for table in tables.split(separator: " ") {
            rows.append("\(table): " + (try psql("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM \(table) t", database: db)))
        }
        return lines.joined(separator: "\n") + "\n" + rows.joined(separator: "\n")
    }
}

extension Project {
    /// The example project, pointed at a PostgreSQL database through DATABASE_URL (as env.py reads it).
    static func postgres(_ db: PostgresDatabase) throws -> Project {
        let p = try Project()
        p.environment["DATABASE_URL"] = db.url
        return p
    }

    /// A database of its own at 0002 with data, then `migsnap upgrade` through 0003 (which deletes
    /// rows): the project, and the state before that upgrade.
    static func postgresAfterABadUpgrade() throws -> (PostgresDatabase, Project, before: String) {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        let before = try db.state()
        try p.ok("upgrade")
        return (db, p, before)
    }

    func seedPostgres(_ db: PostgresDatabase) throws {
        try db.psql("""
            INSERT INTO customers (id, name, email, active, phone)
            SELECT i, 'Customer ' || i, 'c' || i || '@example.com', i % 3 <> 0, '+1-555-01' || lpad(i::text, 2, '0')
            FROM generate_series(1, 10) i;
            INSERT INTO orders (customer_id, total_cents) SELECT i, 1000 * i FROM generate_series(1, 10) i;
            """)
    }
}

/// Equal states, or a failure that shows the first lines that differ.
func expectSameState(_ actual: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual != expected else { return }
    let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
    let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let onlyActual = a.filter { !e.contains($0) }.prefix(8).joined(separator: "\n")
    let onlyExpected = e.filter { !a.contains($0) }.prefix(8).joined(separator: "\n")
    Issue.record("states differ.\nonly now:\n\(onlyActual)\nonly expected:\n\(onlyExpected)", sourceLocation: sourceLocation)
}

@Suite("PostgreSQL end to end (real server, real Alembic)", .serialized)
struct PostgresEndToEndTests {
    @Test func theDataLossStoryOnPostgres() throws {
        let (db, p, before) = try Project.postgresAfterABadUpgrade()
        #expect(try db.psql("SELECT count(*) FROM customers") == "7")

        let plan = try #require(try p.json(try p.ok("rollback", "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["via"] as? String == "restore")
        #expect(plan["undone"] as? [String] == ["0003"])
        #expect(plan["current"] as? [String] == ["0003"])
        #expect((plan["rows_in_snapshot"] as? [String: Int])?["public.customers"] == 10, "counted in the staged copy")
        #expect((plan["rows_now"] as? [String: Int])?["public.customers"] == 7)

        try p.ok("rollback", "--yes")
        expectSameState(try db.state(), before)
        #expect(try p.alembic("current").stdout.contains("0002"))
        let manifests = try p.manifests()
        #expect(manifests.allSatisfy { $0["engine"] as? String == "postgresql" })
        #expect(manifests.allSatisfy { !($0["database"] as? String ?? "").contains(db.password) })
        #expect(try p.migsnap("verify").status == 0)

        // The shapes recorded by pg_dump's transaction tell what 0003 removed; 0001 and 0002 only added.
        let before0003 = manifests.first { $0["target_revision"] as? String == "0003" }
        let tables = (before0003?["shape"] as? [String: Any])?["tables"] as? [String: [String: Any]]
        #expect(tables?["public.customers"]?["columns"] as? [String] == ["id", "name", "email", "active", "phone"])
        #expect(tables?["public.customers"]?["rows"] as? Int == 10)
        #expect(try p.guards().map { $0["removed"] as? String } == [
            "dropped column public.customers.phone; 3 rows fewer in public.customers; 3 rows fewer in public.orders"])
        try p.ok("rollback", "base", "--yes")
        #expect(try p.guards().map { $0["revision"] as? String } == ["0003"])
    }

    @Test func objectsCreatedAfterTheSnapshotAreGoneAndSequencesComeBack() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        try db.psql("CREATE SCHEMA audit; CREATE TABLE audit.log (id serial PRIMARY KEY, what text); INSERT INTO audit.log (what) VALUES ('a'), ('b')")
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try db.state()
        let sequenceBefore = try db.psql("SELECT last_value FROM audit.log_id_seq")
        try db.psql("""
            CREATE TABLE later (x int); CREATE VIEW later_view AS SELECT 1 AS one; CREATE TYPE mood AS ENUM ('ok');
            CREATE SCHEMA extra; INSERT INTO audit.log (what) SELECT 'x' FROM generate_series(1, 50);
            DELETE FROM orders; ALTER TABLE customers DROP COLUMN email;
            """)
        try p.ok("restore", id, "--yes")
        expectSameState(try db.state(), before)
        #expect(try db.psql("SELECT last_value FROM audit.log_id_seq") == sequenceBefore)
        #expect(try db.psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'extra'") == "0")
        #expect(try db.psql("SELECT to_regclass('public.later') IS NULL") == "t")
    }

    @Test func restoreIntoAnotherDatabaseLeavesTheLiveOneAlone() throws {
        let db = try PostgresDatabase()
        let copy = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let atSnapshot = try db.state()
        try p.ok("upgrade")
        let live = try db.state()
        try p.ok("restore", id, "--to", copy.url, "--yes")
        expectSameState(try copy.state(), atSnapshot)
        expectSameState(try db.state(), live)
    }

    @Test func asyncDriverURLsWork() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade")
        let async = db.url.replacingOccurrences(of: "postgresql://", with: "postgresql+asyncpg://")
        let r = try p.migsnap(["snapshot", "--url", async, "--json"])
        #expect(r.status == 0, "\(r.output)")
        let m = try #require(try p.json(r.stdout) as? [String: Any])
        #expect(m["revisions"] as? [String] == ["0003"])
        let psycopg = db.url.replacingOccurrences(of: "postgresql://", with: "postgresql+psycopg://")
        #expect(try p.migsnap(["status", "--url", psycopg, "--json"]).status == 0)
    }

    @Test func thePasswordIsInNoFileAndNoMessage() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        var outputs: [String] = []
        outputs.append(try p.ok("upgrade").output)
        outputs.append(try p.ok("snapshot", "--json").output)
        outputs.append(try p.ok("list", "--json").output)
        outputs.append(try p.ok("status", "--json").output)
        outputs.append(try p.ok("rollback", "--yes").output)
        let wrong = db.url.replacingOccurrences(of: ":" + (db.url.split(separator: ":")[2].split(separator: "@")[0]) + "@", with: ":not-the-password@")
        let refused = try p.migsnap(["status", "--url", wrong])
        #expect(refused.status == 2, "\(refused.output)")
        outputs.append(refused.output)
        for text in outputs {
            #expect(!text.contains(db.password), "a password in the output")
        }
        let encodedPassword = db.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? db.password
        for name in try FileManager.default.contentsOfDirectory(atPath: p.store) {
            let content = try #require(fileBytes(p.store + "/" + name))
            #expect(content.range(of: Data(db.password.utf8)) == nil, "\(name) holds the password")
            #expect(content.range(of: Data(encodedPassword.utf8)) == nil, "\(name) holds the encoded password")
        }
    }

    @Test func killedRestoresLeaveTheOldOrTheNewDatabase() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try db.psql("INSERT INTO customers (name, email) SELECT 'n' || i, md5(i::text) FROM generate_series(1, 30000) i")
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let stateA = try db.psql("SELECT count(*) FROM customers")
        try p.ok("upgrade")
        try db.psql("DELETE FROM customers WHERE id % 2 = 0")
        let b = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let stateB = try db.psql("SELECT count(*) FROM customers")
        #expect(stateA != stateB)
        let started = Date()
        try p.ok("restore", a, "--yes", "--no-safety-snapshot")
        // Twice a whole restore: about half the kills land after the swap, so that both outcomes
        // occur in 16 rounds except with a chance of about 1 in 30,000.
        let window = UInt32(min(Date().timeIntervalSince(started) * 2, 30) * 1_000_000)
        var outcomes: [String: Int] = [:]
        for round in 0..<16 {
            let current = try db.psql("SELECT count(*) FROM customers")
            let target = current == stateA ? b : a
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Paths.binary)
            process.arguments = ["restore", target, "--yes", "--no-safety-snapshot"]
            process.currentDirectoryURL = URL(fileURLWithPath: p.dir)
            process.environment = p.environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32.random(in: 0..<window))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // pg_restore may outlive migsnap for a moment; the live database never shows a half state.
            let now = try db.psql("SELECT count(*) FROM customers")
            #expect(now == stateA || now == stateB, "round \(round): \(now)")
            outcomes[now == current ? "old" : "new", default: 0] += 1
        }
        #expect(outcomes.count == 2, "kills landed on both sides of the swap: \(outcomes)")
        // The debris of killed runs is dropped by the next restore.
        try p.ok("restore", a, "--yes", "--no-safety-snapshot")
        #expect(try db.psql("SELECT count(*) FROM pg_database WHERE datname LIKE '\(db.name)%' AND datname <> '\(db.name)'") == "0")
    }
}
