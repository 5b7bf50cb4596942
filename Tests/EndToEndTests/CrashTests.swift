import Foundation
import Testing

/// kill -9 at random moments: the database is always exactly the old or the new state, and the
/// store never lists a half snapshot.
@Suite("Crash safety (SQLite)", .serialized)
struct CrashTests {
    /// State A: a database large enough that a restore takes a while.
    static let stateA = """
        PRAGMA journal_mode=WAL;
        CREATE TABLE meta(state TEXT);
        CREATE TABLE blobs(id INTEGER PRIMARY KEY, body TEXT);
        INSERT INTO meta VALUES ('A');
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
        INSERT INTO blobs SELECT i, hex(randomblob(150)) FROM n;
        """

    /// From state A to a clearly different state B.
    static let toStateB = """
        UPDATE meta SET state = 'B';
        DELETE FROM blobs WHERE id % 3 = 0;
        UPDATE blobs SET body = lower(body) WHERE id % 2 = 0;
        """

    /// The two states, each snapshotted.
    func twoStates() throws -> (Project, a: String, b: String) {
        let p = try Project()
        _ = try p.sqlite(Self.stateA)
        let a = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try p.sqlite(Self.toStateB)
        let b = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return (p, a, b)
    }

    func digest(_ p: Project) throws -> String {
        try p.sqlite("SELECT (SELECT state FROM meta) || ':' || count(*) || ':' || sum(length(body)) || ':' || sum(id) FROM blobs")
    }

    func killAfter(_ p: Project, _ arguments: [String], microseconds: UInt32) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: p.dir)
        process.environment = p.environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(microseconds)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    @Test func killedRestoresLeaveTheOldOrTheNewState() throws {
        let (p, a, b) = try twoStates()
        let stateB = try digest(p)
        let started = Date()
        try p.ok("restore", a, "--yes", "--no-safety-snapshot")
        // Kill anywhere from the start to a little past the end of a whole restore on this machine.
        let window = UInt32(min(Date().timeIntervalSince(started) * 1.3, 20) * 1_000_000)
        let stateA = try digest(p)
        #expect(stateA != stateB)
        var rng = SystemRandomNumberGenerator()
        var seen: [String: Int] = [:]
        for round in 0..<40 {
            let current = try digest(p)
            let target = current == stateA ? b : a
            let safety = round % 4 == 0 ? [] : ["--no-safety-snapshot"]
            try killAfter(p, ["restore", target, "--yes"] + safety, microseconds: UInt32.random(in: 0..<window, using: &rng))
            let now = try digest(p)
            #expect(now == stateA || now == stateB, "round \(round): a half-restored database: \(now)")
            #expect(try p.sqlite("PRAGMA integrity_check") == "ok", "round \(round)")
            seen[now == current ? "old" : "new", default: 0] += 1
        }
        // The kills must have landed on both sides of the swap, or the test proved nothing.
        #expect(seen["old", default: 0] > 0 && seen["new", default: 0] > 0, "outcomes: \(seen)")
        // The two snapshots the rounds restore from are still listed, whatever was killed.
        let listed = Set(try p.manifests().compactMap { $0["id"] as? String })
        #expect(listed.isSuperset(of: [a, b]))
        let verify = try p.migsnap("verify")
        #expect(verify.status == 0, "\(verify.output)")
        // The next restore removes the staging files that killed ones left beside the database.
        try p.ok("restore", a, "--yes", "--no-safety-snapshot")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: p.dir).filter { $0.contains("migsnap-staging") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func killedSnapshotsLeaveNothingHalfListed() throws {
        let (p, _, _) = try twoStates()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<15 {
            try killAfter(p, ["snapshot"], microseconds: UInt32.random(in: 0..<400_000, using: &rng))
            let verify = try p.migsnap("verify")
            #expect(verify.status == 0, "\(verify.output)")
        }
        // The next run cleans the debris: the store holds only listed snapshots and their files.
        try p.ok("snapshot", "--quiet")
        let listed = try p.manifests()
        // No scratch directory or temporary file of a killed run is left, only the store's own files.
        // One exception: a run killed between creating its scratch directory and marking it leaves
        // an empty directory, which cleanup spares for a minute (it could be a live run's, a
        // moment old) and removes after.
        let files = try FileManager.default.contentsOfDirectory(atPath: p.store)
            .filter { ![".gitignore", ".lock", ".migsnap-store", "index.json"].contains($0) }
            .filter { name in
                !(name.hasPrefix(".scratch-") && (try? FileManager.default.contentsOfDirectory(atPath: p.store + "/" + name).isEmpty) == true)
            }
        #expect(files.count == listed.count * 2, "\(files)")
        #expect(try p.migsnap("verify").status == 0)
    }
}
