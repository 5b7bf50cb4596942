import Foundation
import MigsnapCore
import MigsnapSQLite
import Testing

@Suite("SQLite engine")
struct SQLiteEngineTests {
    let directory: TemporaryDirectory
    let live: String
    let engine: SQLiteEngine
    let versionTable = VersionTable()

    init() throws {
        directory = try TemporaryDirectory()
        live = directory.file("app.db")
        engine = SQLiteEngine(path: live)
    }

    private func payload(_ name: String = "snap") -> URL {
        URL(fileURLWithPath: directory.file("\(name).\(engine.kind.payloadExtension)"))
    }

    private func snapshot(_ name: String = "snap") throws -> (URL, SnapshotCapture) {
        let url = payload(name)
        return (url, try engine.snapshot(into: url, versionTable: versionTable, progress: SilentProgress()))
    }

    private func restore(_ url: URL, _ revisions: [String], into target: SQLiteEngine? = nil) throws {
        try (target ?? engine).restore(payload: url, expectedRevisions: revisions, versionTable: versionTable,
                                       progress: SilentProgress())
    }

    /// Files a run may leave behind by mistake: temporary copies and staging files.
    private func debris() throws -> [String] {
        try directory.names().filter { $0.hasPrefix(".tmp-") || $0.contains("migsnap-staging") }
    }

    // MARK: - Reading the live database

    @Test("revisions: none when the file, the table or its rows are missing; sorted otherwise")
    func revisions() throws {
        #expect(try engine.currentRevisions(versionTable: versionTable) == [])
        try sqlite(live, "CREATE TABLE t (x);")
        #expect(try engine.currentRevisions(versionTable: versionTable) == [])
        try sqlite(live, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);")
        #expect(try engine.currentRevisions(versionTable: versionTable) == [])
        try sqlite(live, "INSERT INTO alembic_version VALUES ('ffff'), ('0aaa');")
        #expect(try engine.currentRevisions(versionTable: versionTable) == ["0aaa", "ffff"])
    }

    @Test("a version table with an odd name is quoted, not injected")
    func quotedVersionTable() throws {
        try sqlite(live, #"CREATE TABLE "my ""versions"" ; --" (version_num TEXT); INSERT INTO "my ""versions"" ; --" VALUES ('r1');"#)
        let table = VersionTable(name: #"my "versions" ; --"#)
        #expect(try engine.currentRevisions(versionTable: table) == ["r1"])
        #expect(try engine.currentRevisions(versionTable: VersionTable(name: table.name, schema: "main")) == ["r1"])
    }

    @Test("a schema other than main is bad input")
    func otherSchema() throws {
        try makeDatabase(live)
        #expect { try engine.currentRevisions(versionTable: VersionTable(schema: "public")) } throws: {
            ($0 as? MigsnapError)?.isInvalidInput == true
        }
    }

    @Test("row counts cover every user table")
    func counts() throws {
        try makeDatabase(live, rows: 300)
        #expect(try engine.rowCounts() == ["alembic_version": 1, "users": 300, "orders": 600, "audit": 0])
    }

    @Test("a file that is not SQLite is bad input, naming the path")
    func notSQLite() throws {
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: live))
        let isBadInput: (any Error) -> Bool = {
            guard let error = $0 as? MigsnapError else { return false }
            return error.isInvalidInput && error.message.contains(live)
        }
        #expect(performing: { try engine.currentRevisions(versionTable: versionTable) }, throws: isBadInput)
        #expect(performing: { _ = try snapshot() }, throws: isBadInput)
        #expect(try debris() == [])
    }

    @Test("snapshot of a missing database is bad input and creates nothing")
    func snapshotMissing() throws {
        #expect(try !engine.databaseExists())
        #expect { _ = try snapshot() } throws: { error in
            guard let error = error as? MigsnapError else { return false }
            return error.isInvalidInput && error.message == "no database at \(live)"
        }
        #expect(try directory.names() == [])
    }

    // MARK: - Round trips

    @Test("snapshot, inspect and restore give back exactly the original database", arguments: ["delete", "wal"])
    func roundTrip(journalMode: String) throws {
        try makeDatabase(live, journalMode: journalMode)
        let original = try dump(live)

        let (url, capture) = try snapshot()
        #expect(capture.revisions == ["abc123"])
        #expect(capture.rawBytes == Int64(try fileBytes(live).count))
        #expect(try attributes(url.path).permissions == 0o600)
        #expect(try debris() == [])

        let content = try engine.inspect(payload: url, versionTable: versionTable, progress: SilentProgress())
        #expect(content == PayloadContent(revisions: ["abc123"],
                                          rowCounts: ["alembic_version": 1, "users": 2000, "orders": 4000, "audit": 0]))

        // The stored file is plain gzip of a working database.
        let plain = directory.file("plain.db")
        #expect(FileManager.default.createFile(atPath: plain, contents: nil))
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        gunzip.arguments = ["-d", "-c", url.path]
        gunzip.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: plain))
        try gunzip.run()
        gunzip.waitUntilExit()
        #expect(gunzip.terminationStatus == 0)
        #expect(try dump(plain) == original)

        try sqlite(live, """
            DELETE FROM orders WHERE id % 2 = 0; DROP TABLE users; CREATE TABLE added (x);
            UPDATE alembic_version SET version_num = 'def456';
            """)
        chmod(live, 0o640)
        let before = try attributes(live)
        #expect(try dump(live) != original)

        try restore(url, ["abc123"])
        #expect(try dump(live) == original)
        #expect(try attributes(live) == before, "same inode, same permissions")
        #expect(try sqlite(live, "PRAGMA journal_mode;") == journalMode + "\n")
        #expect(try sqlite(live, "PRAGMA integrity_check;") == "ok\n")
        #expect(try engine.currentRevisions(versionTable: versionTable) == ["abc123"])
        #expect(try debris() == [])
    }

    @Test("restore into a live database with another page size and journal mode",
          arguments: [(1024, "wal", 8192, "wal"), (8192, "delete", 1024, "wal"), (4096, "wal", 65536, "delete"),
                      (1024, "delete", 4096, "delete")])
    func otherPageSize(snapshotPageSize: Int, snapshotMode: String, livePageSize: Int, liveMode: String) throws {
        try makeDatabase(live, journalMode: snapshotMode, pageSize: snapshotPageSize)
        let original = try dump(live)
        let (url, _) = try snapshot()

        try FileManager.default.removeItem(atPath: live)
        try makeDatabase(live, revision: "def456", journalMode: liveMode, pageSize: livePageSize, rows: 10)
        try restore(url, ["abc123"])

        #expect(try dump(live) == original)
        #expect(try sqlite(live, "PRAGMA integrity_check;") == "ok\n")
        #expect(try sqlite(live, "PRAGMA journal_mode;") == liveMode + "\n", "the live database keeps its journal mode")
        #expect(try debris() == [])
    }

    @Test("restore recreates a deleted database, and leftovers of the old one are not replayed into it")
    func restoreOntoMissingFile() throws {
        try makeDatabase(live, journalMode: "wal")
        let original = try dump(live)
        let (url, _) = try snapshot()
        try FileManager.default.removeItem(atPath: live)
        for suffix in ["-wal", "-shm", "-journal"] {
            try Data(repeating: 0x55, count: 4096).write(to: URL(fileURLWithPath: live + suffix))
        }

        try restore(url, ["abc123"])
        #expect(try dump(live) == original)
        #expect(try sqlite(live, "PRAGMA integrity_check;") == "ok\n")
        #expect(try attributes(live).permissions & 0o600 == 0o600)
        #expect(!FileManager.default.fileExists(atPath: live + "-journal"))
        #expect(try debris() == [])
    }

    // MARK: - Refusals that leave the live database alone

    enum Damage: String, CaseIterable {
        case flippedByte, truncated, notSQLite
    }

    @Test("a damaged payload fails verification and the live database stays byte-identical", arguments: Damage.allCases)
    func damagedPayload(damage: Damage) throws {
        try makeDatabase(live)
        let (url, _) = try snapshot()
        var bytes = try fileBytes(url.path)
        switch damage {
        case .flippedByte:
            bytes[bytes.count / 2] ^= 0x40
        case .truncated:
            bytes = bytes.prefix(bytes.count * 2 / 3)
        case .notSQLite:
            try Data(repeating: 0x41, count: 100_000).write(to: URL(fileURLWithPath: directory.file("junk")))
            _ = try sqlite(live, "SELECT 1;")
            let gzip = Process()
            gzip.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
            gzip.arguments = ["-f", directory.file("junk")]
            try gzip.run()
            gzip.waitUntilExit()
            bytes = try fileBytes(directory.file("junk.gz"))
        }
        try bytes.write(to: url)
        try sqlite(live, "DELETE FROM orders WHERE id > 10; UPDATE alembic_version SET version_num = 'def456';")
        let before = try fileBytes(live)

        let failsVerification: (any Error) -> Bool = { ($0 as? MigsnapError)?.isVerificationFailure == true }
        #expect(performing: {
            _ = try engine.inspect(payload: url, versionTable: versionTable, progress: SilentProgress())
        }, throws: failsVerification)
        #expect(performing: { try restore(url, ["abc123"]) }, throws: failsVerification)
        #expect(try fileBytes(live) == before)
        #expect(try debris() == [])
    }

    /// Where to flip a byte of a blocked payload of `rawBytes` (1 MiB blocks; the index has one
    /// 16-byte member header, 24 bytes a block and a 10-byte end; the locator is the last 82 bytes).
    enum BlockDamage: String, CaseIterable {
        case firstBlock, middleBlock, lastBlock, index, locator

        func position(in size: Int, rawBytes: Int64) -> Int {
            let blocks = Int((rawBytes + (1 << 20) - 1) >> 20)
            let indexStart = size - 82 - (16 + 24 * blocks + 10)
            switch self {
            case .firstBlock: return 100
            case .middleBlock: return indexStart / 2
            case .lastBlock: return indexStart - 20
            case .index: return indexStart + 16 + 24 * (blocks - 1) + 4
            case .locator: return size - 30
            }
        }
    }

    @Test("a multi-block snapshot round trips on 1 and 3 threads, the same payload bytes either way")
    func threadedRoundTrip() throws {
        try makeDatabase(live, journalMode: "wal", rows: 40_000)
        let original = try dump(live)
        let one = SQLiteEngine(path: live, threads: 1)
        let three = SQLiteEngine(path: live, threads: 3)
        let capture = try one.snapshot(into: payload("one"), versionTable: versionTable, progress: SilentProgress())
        _ = try three.snapshot(into: payload("three"), versionTable: versionTable, progress: SilentProgress())
        #expect(capture.rawBytes > 3 << 20, "several blocks")
        #expect(try fileBytes(payload("one").path) == fileBytes(payload("three").path))

        try sqlite(live, "DELETE FROM orders WHERE id % 3 = 0; UPDATE alembic_version SET version_num = 'def456';")
        try restore(payload("one"), ["abc123"], into: three)
        #expect(try dump(live) == original)
        try sqlite(live, "DELETE FROM users WHERE id % 5 = 0;")
        try restore(payload("three"), ["abc123"], into: one)
        #expect(try dump(live) == original)
        #expect(try debris() == [])
    }

    @Test("an old single-stream snapshot (gzip -6 of the file, no index) still inspects and restores on several threads")
    func oldSingleStreamPayload() throws {
        try makeDatabase(live, rows: 40_000)
        let original = try dump(live)
        let url = payload("old")
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
        gzip.arguments = ["-c", "gzip -6 -c '\(live)' > '\(url.path)'"]
        try gzip.run()
        gzip.waitUntilExit()
        #expect(gzip.terminationStatus == 0)

        let threaded = SQLiteEngine(path: live, threads: 3)
        let content = try threaded.inspect(payload: url, versionTable: versionTable, progress: SilentProgress())
        #expect(content.revisions == ["abc123"])
        try sqlite(live, "DELETE FROM orders WHERE id % 3 = 0; UPDATE alembic_version SET version_num = 'def456';")
        try restore(url, ["abc123"], into: threaded)
        #expect(try dump(live) == original)
        #expect(try debris() == [])
    }

    @Test("a flipped byte in any block, the index or the locator fails verification; the live database is untouched",
          arguments: BlockDamage.allCases)
    func damagedBlock(damage: BlockDamage) throws {
        try makeDatabase(live, rows: 40_000)
        let threaded = SQLiteEngine(path: live, threads: 2)
        let url = payload()
        let capture = try threaded.snapshot(into: url, versionTable: versionTable, progress: SilentProgress())
        var bytes = try fileBytes(url.path)
        bytes[damage.position(in: bytes.count, rawBytes: capture.rawBytes)] ^= 0x04
        try bytes.write(to: url)
        try sqlite(live, "DELETE FROM orders WHERE id > 10; UPDATE alembic_version SET version_num = 'def456';")
        let before = try fileBytes(live)

        let failsVerification: (any Error) -> Bool = { ($0 as? MigsnapError)?.isVerificationFailure == true }
        #expect(performing: {
            _ = try threaded.inspect(payload: url, versionTable: versionTable, progress: SilentProgress())
        }, throws: failsVerification)
        #expect(performing: {
            _ = try threaded.stageRestore(payload: url, versionTable: versionTable, progress: SilentProgress())
        }, throws: failsVerification)
        #expect(performing: { try restore(url, ["abc123"], into: threaded) }, throws: failsVerification)
        #expect(try fileBytes(live) == before)
        #expect(try debris() == [])
    }

    @Test("an index that disagrees with its table fails the content check on one thread and on several",
          arguments: [1, 3])
    func indexDisagreesWithTable(threads: Int) throws {
        // quick_check passes such a file; only the index-against-table part of integrity_check sees it,
        // so the split check must still run that part for every table.
        try makeDatabase(live, rows: 2_000)
        try sqlite(live, """
            CREATE TABLE points (a INTEGER, b INTEGER);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
            INSERT INTO points SELECT i, i * 7 FROM n;
            CREATE INDEX points_a ON points (a);
            PRAGMA writable_schema = ON;
            UPDATE sqlite_master SET sql = 'CREATE INDEX points_a ON points (b)' WHERE name = 'points_a';
            """)
        #expect(try sqlite(live, "PRAGMA quick_check;") == "ok\n")
        let engine = SQLiteEngine(path: live, threads: threads)
        let url = payload()
        _ = try engine.snapshot(into: url, versionTable: versionTable, progress: SilentProgress())

        #expect(performing: {
            _ = try engine.inspect(payload: url, versionTable: versionTable, progress: SilentProgress())
        }, throws: { error in
            let error = error as? MigsnapError
            return error?.isVerificationFailure == true && error?.message.contains("missing from index points_a") == true
        })
        // Staged for a restore's plan, the check may run beside the comparison: the comparison's
        // answer and the copy into the live database both wait for it, and fail with it.
        try sqlite(live, "DELETE FROM orders WHERE id > 10;")
        let before = try fileBytes(live)
        let damaged: (any Error) -> Bool = { error in
            let error = error as? MigsnapError
            return error?.isVerificationFailure == true && error?.message.contains("missing from index points_a") == true
        }
        let stage = { try engine.stagingForPlan { try engine.stageRestore(payload: url, versionTable: versionTable, progress: SilentProgress()) } }
        #expect(performing: {
            let staged = try stage()
            _ = try staged.compareWithLive(scope: DiffScope(skipped: []), progress: SilentProgress())
        }, throws: damaged)
        #expect(performing: { try stage().commit(progress: SilentProgress()) }, throws: damaged)
        #expect(try fileBytes(live) == before)
        #expect(try debris() == [])
    }

    @Test("a payload at another revision than expected is refused before the live database is touched")
    func versionMismatch() throws {
        try makeDatabase(live)
        let (url, _) = try snapshot()
        try sqlite(live, "UPDATE alembic_version SET version_num = 'def456';")
        let before = try fileBytes(live)
        #expect { try restore(url, ["def456"]) } throws: { error in
            guard let error = error as? MigsnapError else { return false }
            return error.isVerificationFailure && error.message.contains("abc123") && error.message.contains("def456")
        }
        #expect(try fileBytes(live) == before)
        #expect(try debris() == [])
    }

    @Test("a live database locked by another connection makes restore fail, unchanged")
    func lockedLiveDatabase() throws {
        try makeDatabase(live)
        let (url, _) = try snapshot()
        try sqlite(live, "UPDATE alembic_version SET version_num = 'def456';")
        let before = try fileBytes(live)

        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        holder.arguments = ["-batch", live]
        let input = Pipe(), output = Pipe()
        holder.standardInput = input
        holder.standardOutput = output
        try holder.run()
        input.fileHandleForWriting.write(Data("BEGIN EXCLUSIVE;\nSELECT 'locked';\n".utf8))
        // Wait until the other connection holds the lock.
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("locked") {
            seen.append(output.fileHandleForReading.availableData)
        }

        #expect { try restore(url, ["abc123"]) } throws: { error in
            guard let error = error as? MigsnapError else { return false }
            return error.isFailure && error.message.contains("locked by another connection")
        }
        try input.fileHandleForWriting.close()
        holder.waitUntilExit()
        #expect(try fileBytes(live) == before)
        #expect(try debris() == [])
    }

    // MARK: - Concurrency

    @Test("a snapshot taken while another process writes continuously (WAL) is one consistent view")
    func snapshotUnderWrites() throws {
        let startBalance = 10_000_000
        try sqlite(live, """
            PRAGMA journal_mode = wal;
            CREATE TABLE alembic_version (version_num TEXT NOT NULL);
            INSERT INTO alembic_version VALUES ('r1');
            CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
            CREATE TABLE transfers (id INTEGER PRIMARY KEY, amount INTEGER, pad BLOB);
            INSERT INTO accounts VALUES (1, \(startBalance));
            WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
            INSERT INTO accounts SELECT i, 1000 FROM n;
            CREATE TABLE padding (x BLOB);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
            INSERT INTO padding SELECT randomblob(3000) FROM n;
            """)
        let total = startBalance + 999 * 1000

        // The writer: account 1 pays 5 to another account and logs it, one transaction each time,
        // until told to stop. Invariants: the sum of balances is constant, and account 1 has paid
        // exactly 5 per logged transfer.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        writer.arguments = ["-batch", "-bail", live]
        let pipe = Pipe()
        writer.standardInput = pipe
        writer.standardOutput = FileHandle.nullDevice
        try writer.run()
        let feed = pipe.fileHandleForWriting
        let feeder = Worker { shouldStop in
            feed.write(Data(".timeout 5000\n".utf8))
            var i = 0
            while !shouldStop() {
                i += 1
                feed.write(Data("""
                    BEGIN IMMEDIATE;
                    UPDATE accounts SET balance = balance - 5 WHERE id = 1;
                    UPDATE accounts SET balance = balance + 5 WHERE id = \(i % 999 + 2);
                    INSERT INTO transfers (amount, pad) VALUES (5, randomblob(1500));
                    COMMIT;

                    """.utf8))
            }
        }
        defer {
            feeder.stop()
            try? feed.close()
            writer.waitUntilExit()
        }
        while Int(try sqlite(live, "SELECT COUNT(*) FROM transfers;").trimmingCharacters(in: .whitespacesAndNewlines))! < 50 {
            Thread.sleep(forTimeInterval: 0.05)
        }

        for n in 1...3 {
            let (url, capture) = try snapshot("under-load-\(n)")
            #expect(capture.revisions == ["r1"])
            let copy = SQLiteEngine(path: directory.file("copy-\(n).db"))
            try restore(url, ["r1"], into: copy)
            let check = try sqlite(copy.path, """
                PRAGMA integrity_check;
                SELECT SUM(balance) FROM accounts;
                SELECT (SELECT balance FROM accounts WHERE id = 1) + 5 * (SELECT COUNT(*) FROM transfers);
                SELECT COUNT(*) > 0 FROM transfers;
                """)
            #expect(check == "ok\n\(total)\n\(startBalance)\n1\n")
        }
        #expect(try debris() == [])
    }

    @Test("during many restores a concurrent reader sees only the whole old or the whole new state",
          arguments: ["wal", "delete"])
    func atomicRestore(journalMode: String) throws {
        try makeDatabase(live, revision: "a", journalMode: journalMode, rows: 50)
        let (a, _) = try snapshot("a")
        let stateA = try engine.rowCounts()
        try sqlite(live, """
            UPDATE alembic_version SET version_num = 'b';
            DELETE FROM orders WHERE id > 30;
            CREATE TABLE extra (x);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
            INSERT INTO users SELECT 1000 + i, 'more' || i, NULL, NULL FROM n;
            """)
        let (b, _) = try snapshot("b")
        let stateB = try engine.rowCounts()
        #expect(stateA != stateB)

        let observations = Shared((good: 0, bad: [String]()))
        let path = live
        let reader = Worker { shouldStop in
            let engine = SQLiteEngine(path: path)
            while !shouldStop() {
                do {
                    let counts = try engine.rowCounts()
                    let revisions = try engine.currentRevisions(versionTable: VersionTable())
                    observations.withValue {
                        if counts == stateA || counts == stateB, revisions == ["a"] || revisions == ["b"] {
                            $0.good += 1
                        } else {
                            $0.bad.append("counts \(counts), revisions \(revisions)")
                        }
                    }
                } catch {
                    observations.withValue { $0.bad.append("\(error)") }
                }
            }
        }
        for round in 0..<20 {
            let (url, revision) = round % 2 == 0 ? (a, "a") : (b, "b")
            try restore(url, [revision])
        }
        reader.stop()

        #expect(try engine.rowCounts() == stateB)
        #expect(try sqlite(live, "PRAGMA integrity_check;") == "ok\n")
        let seen = observations.withValue { $0 }
        #expect(seen.bad == [])
        #expect(seen.good > 0)
    }

    // MARK: - Debris

    @Test("cleanDebris removes this database's staging files and nothing else")
    func cleansDebris() throws {
        try makeDatabase(live)
        let names = [".app.db.migsnap-staging-1234", ".app.db.migsnap-staging-1234-wal", ".other.db.migsnap-staging-1", "keep.txt"]
        for name in names {
            #expect(FileManager.default.createFile(atPath: directory.file(name), contents: Data("x".utf8)))
        }
        SQLiteEngine.cleanDebris(besideDatabase: live)
        #expect(try directory.names() == [".other.db.migsnap-staging-1", "app.db", "keep.txt"])
    }
}
