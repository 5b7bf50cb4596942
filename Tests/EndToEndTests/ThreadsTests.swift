import Foundation
import Testing

@Suite("--threads and MIGSNAP_THREADS")
struct ThreadsTests {
    @Test("one thread or several write the same snapshot bytes, and restore on any count")
    func sameBytesAnyThreads() throws {
        let p = try Project().seeded()
        let before = try p.dump()
        let one = try p.ok("snapshot", "--quiet", "--threads", "1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let two = try p.migsnap(["snapshot", "--quiet"], env: ["MIGSNAP_THREADS": "2"])
        #expect(two.status == 0)
        let files = try p.manifests().compactMap { $0["file"] as? String }
        #expect(files.count == 2)
        #expect(files.count == 2 && fileBytes(p.store + "/" + files[0]) == fileBytes(p.store + "/" + files[1]))
        #expect(try p.ok("verify", one, "--threads", "3").status == 0)

        try p.alembic("upgrade", "head")
        #expect(try p.dump() != before)
        _ = try p.ok("restore", one, "--yes", "--threads", "3")
        #expect(try p.dump() == before)
    }

    @Test("a snapshot that fails SQLite's integrity check is refused before the database is touched, on one thread or several",
          arguments: ["1", "2"])
    func damagedContentIsRefused(threads: String) throws {
        let p = try Project().seeded()
        // An index that disagrees with its table: only integrity_check sees it, and the snapshot's
        // checksum is that of the damaged bytes, so the content check alone must refuse it.
        _ = try p.sqlite("""
            CREATE TABLE points (a INTEGER, b INTEGER);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO points SELECT i, i * 7 FROM n;
            CREATE INDEX points_a ON points (a);
            PRAGMA writable_schema = ON;
            UPDATE sqlite_master SET sql = 'CREATE INDEX points_a ON points (b)' WHERE name = 'points_a';
            """)
        let (id, after) = try p.snapshotThenMigrate()
        let r = try p.migsnap("restore", id, "--yes", "--threads", threads)
        #expect(r.status == 3, "\(r.output)")
        #expect(r.stderr.contains("integrity check") && r.stderr.contains("points_a"), "\(r.stderr)")
        #expect(try p.dump() == after)
        #expect(try p.manifests().count == 1, "no safety snapshot before a refusal")
        let debris = try FileManager.default.contentsOfDirectory(atPath: p.dir).filter { $0.contains("migsnap-staging") }
        #expect(debris.isEmpty, "\(debris)")
    }

    @Test("a thread count that is not 1 to 64 is a malformed command line",
          arguments: [(["--threads", "0"], [String: String]()), (["--threads", "65"], [:]), ([], ["MIGSNAP_THREADS": "many"])])
    func invalid(arguments: [String], env: [String: String]) throws {
        let p = try Project().seeded()
        let result = try p.migsnap(["snapshot", "--quiet"] + arguments, env: env)
        #expect(result.status == 64)
        #expect(result.stderr.contains("threads") || result.stderr.contains("MIGSNAP_THREADS"))
        #expect(try p.manifests().isEmpty)
    }
}
