import Foundation
import Testing

@Suite("SQLite end to end: snapshot, list, show, verify, restore")
struct SQLiteSliceTests {
    @Test func theDataLossStory() throws {
        let p = try Project().seeded()
        let before = try p.dump()
        let snap = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.alembic("upgrade", "head")
        #expect(try p.sqlite("SELECT count(*) FROM customers") == "7")
        #expect(try p.dump() != before)

        let restored = try p.ok("restore", snap, "--yes")
        #expect(restored.stdout.contains("Restored"))
        #expect(try p.dump() == before)
        #expect(try p.sqlite("PRAGMA integrity_check") == "ok")
        #expect(try p.alembic("current").stdout.contains("0002"))

        // The safety snapshot holds the state that was replaced, at 0003.
        let manifests = try p.manifests()
        #expect(manifests.count == 2)
        #expect(manifests.last?["reason"] as? String == "pre-restore")
        #expect(manifests.last?["revisions"] as? [String] == ["0003"])
        #expect(manifests.first?["revisions"] as? [String] == ["0002"])
        #expect(manifests.first?["reason"] as? String == "manual")
    }

    @Test func snapshotManifestAndStoreFiles() throws {
        let p = try Project().seeded()
        let r = try p.ok("snapshot", "--json", "--tag", "release", "--tag", "before-0003", "--pin", "--note", "hello")
        let m = try #require(try p.json(r.stdout) as? [String: Any])
        #expect(m["engine"] as? String == "sqlite")
        #expect(m["revisions"] as? [String] == ["0002"])
        #expect(m["reason"] as? String == "manual")
        #expect(m["target_revision"] is NSNull)
        #expect(m["pinned"] as? Bool == true)
        #expect(m["tags"] as? [String] == ["release", "before-0003"])
        #expect(m["database"] as? String == p.database)
        #expect(m["format_version"] as? Int == 1)
        #expect((m["raw_bytes"] as? Int ?? 0) > (m["stored_bytes"] as? Int ?? 0))
        #expect((m["sha256"] as? String)?.count == 64)
        let id = try #require(m["id"] as? String)

        let attributes = try FileManager.default.attributesOfItem(atPath: p.store)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        let file = p.store + "/" + (m["file"] as? String ?? "")
        #expect((try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) == 0o600)
        #expect(FileManager.default.fileExists(atPath: p.store + "/.gitignore"))

        // The stored file is plain gzip of a working database.
        let copy = p.dir + "/by-hand.db"
        let gunzip = try run("/bin/sh", ["-c", "gunzip -c '\(file)' > '\(copy)'"], in: p.dir)
        #expect(gunzip.status == 0)
        #expect(try p.dump(copy) == p.dump())

        let show = try p.ok("show", String(id.prefix(15)), "--json")
        #expect((try p.json(show.stdout) as? [String: Any])?["id"] as? String == id)
        let text = try p.ok("show", id).stdout
        #expect(text.contains(file) && text.contains("0002"))
        #expect(try p.ok("list").stdout.contains(id))
        #expect(try p.ok("list", "--tag", "release", "--json").stdout.contains(id))
        let untagged = try #require(try p.json(try p.ok("list", "--tag", "nope", "--json").stdout) as? [Any])
        #expect(untagged.isEmpty)
    }

    @Test func corruptedSnapshotIsRefusedAndTheDatabaseUntouched() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.alembic("upgrade", "head")
        let m = try #require(try p.manifests().first)
        let file = p.store + "/" + (m["file"] as! String)
        var bytes = try #require(fileBytes(file))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: file))
        let dbBefore = try #require(fileBytes(p.database))

        let verify = try p.migsnap("verify")
        #expect(verify.status == 3, "\(verify.output)")
        #expect(verify.stdout.contains("FAILED"))
        let restore = try p.migsnap("restore", id, "--yes")
        #expect(restore.status == 3, "\(restore.output)")
        #expect(restore.stderr.contains("checksum"))
        #expect(fileBytes(p.database) == dbBefore)
        #expect(try p.manifests().count == 1, "no safety snapshot may be taken for a refused restore")
    }

    @Test func refusalsAndDryRunChangeNothing() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.alembic("upgrade", "head")
        let dbBefore = try #require(fileBytes(p.database))

        let noTTY = try p.migsnap("restore", id)
        #expect(noTTY.status == 4, "\(noTTY.output)")
        #expect(noTTY.stderr.contains("--yes"))

        let dry = try p.migsnap("restore", id, "--dry-run", "--json")
        #expect(dry.status == 0, "\(dry.output)")
        let plan = try #require(try p.json(dry.stdout) as? [String: Any])
        #expect(plan["current"] as? [String] == ["0003"])
        #expect(plan["target"] as? [String] == ["0002"])
        #expect(plan["via"] as? String == "restore")
        #expect(plan["snapshot"] as? String == id)
        #expect(plan["undone"] as? [String] == ["0003"])
        #expect((plan["discarded_rows"] as? [String: Int]) == [:])
        #expect((plan["changed_rows"] as? [String: Int]) == [:])
        #expect((plan["restored_rows"] as? [String: Int]) == ["customers": 3, "orders": 3])
        let rowsInSnapshot = try #require(plan["rows_in_snapshot"] as? [String: Int])
        #expect(rowsInSnapshot["customers"] == 10)

        let human = try p.migsnap("restore", id, "--dry-run")
        #expect(human.stdout.contains("Dry run"))
        #expect(human.stdout.contains("customers"))
        #expect(fileBytes(p.database) == dbBefore)
        #expect(try p.manifests().count == 1)
    }

    @Test func discardedRowsCountsWhatTheRestoreThrowsAway() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try p.sqlite("INSERT INTO orders (customer_id, total_cents) VALUES (1, 5), (2, 6), (3, 7)")
        let plan = try #require(try p.json(try p.ok("restore", id, "--dry-run", "--json").stdout) as? [String: Any])
        #expect(plan["discarded_rows"] as? [String: Int] == ["orders": 3])
        #expect(plan["changed_rows"] as? [String: Int] == [:] && plan["restored_rows"] as? [String: Int] == [:])
        #expect(plan["undone"] as? [String] == [])
    }

    @Test func badInputHasTheDocumentedStatus() throws {
        let p = try Project().seeded()
        for (args, status) in [
            (["show", "../../etc/passwd"], Int32(2)),
            (["show", "2099"], 2),
            (["restore", "20990101-000000-000", "--yes"], 2),
            (["snapshot", "--url", "sqlite:///missing.db"], 2),
            (["snapshot", "--url", "mysql://x/y"], 2),
            (["snapshot", "--url", "sqlite://"], 2),
            (["list", "-c", "nope.ini"], 2),
            (["restore"], 64),
            (["frobnicate"], 64),
        ] {
            let r = try p.migsnap(args)
            #expect(r.status == status, "\(args): \(r.output)")
            #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack"), "\(args)")
            if status == 2 { #expect(r.stderr.hasPrefix("Error: "), "\(args): \(r.stderr)") }
        }
        #expect(try p.migsnap("snapshot", "--url", "sqlite:///missing.db").stderr.contains("No database at"))
        #expect(!FileManager.default.fileExists(atPath: p.dir + "/missing.db"))
    }

    @Test func restoreToAnotherFileLeavesTheLiveDatabaseAlone() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try p.dump()
        try p.alembic("upgrade", "head")
        let live = try #require(fileBytes(p.database))
        let r = try p.ok("restore", id, "--to", "sqlite:///recovered.db", "--yes")
        #expect(r.status == 0)
        #expect(try p.dump(p.dir + "/recovered.db") == before)
        #expect(fileBytes(p.database) == live)
        #expect(try p.manifests().count == 1, "--to takes no safety snapshot of the live database")
    }

    @Test func restoreRecreatesADeletedDatabase() throws {
        let p = try Project().seeded()
        let before = try p.dump()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.removeItem(atPath: p.database)
        try p.ok("restore", id, "--yes")
        #expect(try p.dump() == before)
    }

    @Test func aSecondRunWaitsThenRefusesWhileTheLockIsHeld() throws {
        let p = try Project().seeded()
        try p.ok("snapshot", "--quiet")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        // -o: only flock itself holds the lock, so killing it releases the lock at once.
        holder.arguments = ["-o", p.store + "/.lock", "sleep", "8"]
        try holder.run()
        // SIGKILL: processes started from test threads may have SIGTERM blocked.
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        // Wait until the holder really has the lock (flock -n fails with 1 while it is held).
        var held = false
        for _ in 0..<100 where !held {
            held = try run("/usr/bin/flock", ["-n", p.store + "/.lock", "true"], in: p.dir).status == 1
            if !held { Thread.sleep(forTimeInterval: 0.1) }
        }
        try #require(held, "the flock holder never took the lock")
        let r = try p.migsnap("snapshot")
        #expect(r.status == 4, "\(r.output)")
        #expect(r.stderr.contains("lock"))
        #expect(try p.manifests().count == 1)
    }

    @Test func pinAndUnpin() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.ok("pin", id)
        #expect(try p.manifests().first?["pinned"] as? Bool == true)
        #expect(try p.ok("pin", id).stdout.contains("already"))
        try p.ok("unpin", String(id.prefix(17)))
        #expect(try p.manifests().first?["pinned"] as? Bool == false)
    }

    @Test func statusReportsTheDatabaseAndStore() throws {
        let p = try Project().seeded()
        try p.ok("snapshot")
        let s = try #require(try p.json(try p.ok("status", "--json").stdout) as? [String: Any])
        #expect(s["engine"] as? String == "sqlite")
        #expect(s["current"] as? [String] == ["0002"])
        #expect(s["snapshots"] as? Int == 1)
        #expect(s["database"] as? String == p.database)
    }
}

@Suite("Version tables configured in env.py")
struct VersionTableTests {
    @Test func aCustomVersionTableIsReadWhenNamed() throws {
        let p = try Project()
        _ = try p.sqlite("CREATE TABLE my_versions (version_num VARCHAR(32) NOT NULL); INSERT INTO my_versions VALUES ('abc'), ('def'); CREATE TABLE t (x);")
        let named = try #require(try p.json(try p.ok("snapshot", "--version-table", "my_versions", "--json").stdout) as? [String: Any])
        #expect(named["revisions"] as? [String] == ["abc", "def"], "several rows are several heads")
        let unnamed = try #require(try p.json(try p.ok("snapshot", "--json").stdout) as? [String: Any])
        #expect(unnamed["revisions"] as? [String] == [], "no alembic_version table is base")
        #expect(try p.ok("list", "--revision", "abc", "--json").stdout.contains(named["id"] as! String))
        let bad = try p.migsnap("snapshot", "--version-table", "my_versions", "--version-table-schema", "other")
        #expect(bad.status == 2, "\(bad.output)")
    }
}

@Suite("A damaged manifest")
struct DamagedManifestTests {
    @Test func isReportedButDoesNotBlockTheOtherSnapshots() throws {
        let p = try Project().seeded()
        let good = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let bad = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "{ not json".write(toFile: p.store + "/\(bad).json", atomically: true, encoding: .utf8)

        let list = try p.migsnap("list", "--json")
        #expect(list.status == 0, "\(list.output)")
        #expect(list.stderr.contains("\(bad).json") && list.stderr.contains("damaged"))
        #expect((try p.json(list.stdout) as? [[String: Any]])?.compactMap { $0["id"] as? String } == [good])

        let verify = try p.migsnap("verify")
        #expect(verify.status == 3, "\(verify.output)")
        #expect(verify.stdout.contains("ok      \(good)"))

        try p.alembic("upgrade", "head")
        try p.ok("restore", good, "--yes")
        #expect(try p.alembic("current").stdout.contains("0002"))
        #expect(FileManager.default.fileExists(atPath: p.store + "/\(bad).sqlite.gz"), "its payload is not debris")
    }
}
