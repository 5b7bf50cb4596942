import Foundation
import Testing

extension Project {
    /// The hot copies in the store (`<id>.sqlite.hot`), sorted.
    func hotCopies() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".sqlite.hot") }.sorted()
    }

    /// The ids of the listed snapshots that say they have a hot copy.
    func hotIDs() throws -> [String] {
        try manifests().filter { $0["hot"] != nil }.compactMap { $0["id"] as? String }
    }

    /// The ids of the pre-upgrade snapshots, oldest first (an upgrade also ends with a post-upgrade
    /// snapshot, which is never hot).
    func preUpgradeIDs() throws -> [String] {
        try manifests().filter { $0["reason"] as? String == "pre-upgrade" }.compactMap { $0["id"] as? String }
    }

    func writePolicy(_ json: String) throws {
        try json.write(toFile: dir + "/retention.json", atomically: true, encoding: .utf8)
    }
}

/// The hot tier (issue 11): the newest pre-upgrade snapshot also keeps its uncompressed image, and
/// a rollback right after a bad migration restores from it once its checksum matches.
@Suite("Hot tier (SQLite, real Alembic)")
struct HotTierTests {
    /// Seeded at 0002, then `migsnap upgrade` runs 0003, which deletes the inactive customers.
    func afterABadUpgrade() throws -> (Project, before: String, hot: String) {
        let p = try Project().seeded()
        let before = try p.dump()
        try p.ok("upgrade")
        let hot = try #require(try p.preUpgradeIDs().last)
        return (p, before, hot)
    }

    @Test func rollbackRightAfterABadUpgradeUsesTheHotCopy() throws {
        let (p, before, hot) = try afterABadUpgrade()
        #expect(try p.hotIDs() == [hot])
        #expect(try p.hotCopies() == ["\(hot).sqlite.hot"])
        let attributes = try FileManager.default.attributesOfItem(atPath: p.store + "/\(hot).sqlite.hot")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // The hot copy is not a snapshot of its own, and the manifest says what it is (the other
        // snapshot is the upgrade's post-upgrade one).
        #expect(try p.manifests().count == 2)
        let show = try #require(try p.json(try p.ok("show", hot, "--json").stdout) as? [String: Any])
        let record = try #require(show["hot"] as? [String: Any])
        #expect((record["bytes"] as? Int) == Int(FileSystemSize.of(p.store + "/\(hot).sqlite.hot")))
        #expect(try p.ok("show", hot).stdout.split(separator: "\n").contains { $0.hasPrefix("hot ") && $0.contains("yes") })

        let rollback = try p.ok("rollback", "--yes")
        #expect(rollback.stderr.contains("Restoring snapshot \(hot) via its hot copy"), "\(rollback.stderr)")
        #expect(try p.dump() == before)
        #expect(try p.sqlite("PRAGMA integrity_check") == "ok")
        // Read, not used up: the hot copy is still there and still sound.
        #expect(try p.hotIDs() == [hot])
        try expectSoundHotCopy(p, hot, before: before)
    }

    @Test func aCorruptedHotCopyIsRefusedAndTheCompressedSnapshotServes() throws {
        let (p, before, hot) = try afterABadUpgrade()
        let file = p.store + "/\(hot).sqlite.hot"
        var bytes = try #require(fileBytes(file))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: file))

        let rollback = try p.ok("rollback", "--yes")
        #expect(rollback.stderr.contains("does not match its checksum"), "\(rollback.stderr)")
        #expect(!rollback.stderr.contains("via its hot copy"))
        #expect(try p.dump() == before)
        // Discarded, then rebuilt from the verified compressed snapshot (see HotTierRebuildTests).
        #expect(rollback.stderr.contains("rebuilt its hot copy"), "\(rollback.stderr)")
        #expect(try p.hotCopies() == ["\(hot).sqlite.hot"])
        #expect(try p.hotIDs() == [hot])
    }

    @Test func aDryRunLeavesARefusedHotCopyAlone() throws {
        let (p, _, hot) = try afterABadUpgrade()
        let file = p.store + "/\(hot).sqlite.hot"
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: file))
        let dry = try p.ok("rollback", "--dry-run")
        #expect(dry.stderr.contains("does not match its checksum"), "\(dry.stderr)")
        #expect(try p.hotCopies() == ["\(hot).sqlite.hot"])
        #expect(try p.hotIDs() == [hot])
    }

    @Test func keepHotZeroMakesNone() throws {
        let p = try Project().seeded()
        try p.writePolicy(#"{"keep_hot": 0}"#)
        try p.ok("upgrade")
        #expect(try p.preUpgradeIDs().count == 1)
        #expect(try p.hotIDs() == [])
        #expect(try p.hotCopies() == [])
        let rollback = try p.ok("rollback", "--yes")
        #expect(!rollback.stderr.contains("hot copy"), "\(rollback.stderr)")
    }

    @Test func aNewerUpgradeReplacesTheHotCopy() throws {
        let p = try Project()
        // Three steps in one run: only the last step's snapshot stays hot.
        try p.ok("upgrade", "0002")
        var steps = try p.preUpgradeIDs()
        #expect(steps.count == 2)
        #expect(try p.hotIDs() == [steps[1]])
        try p.ok("upgrade")
        steps = try p.preUpgradeIDs()
        let newest = try #require(steps.last)
        #expect(try p.hotIDs() == [newest])
        #expect(try p.hotCopies() == ["\(newest).sqlite.hot"])
    }

    @Test func keepHotTwoKeepsTheTwoNewest() throws {
        let p = try Project()
        try p.writePolicy(#"{"keep_hot": 2}"#)
        try p.ok("upgrade")
        let ids = try p.preUpgradeIDs()
        #expect(ids.count == 3)
        #expect(try p.hotIDs() == Array(ids.suffix(2)))
        #expect(try p.hotCopies().count == 2)
    }

    @Test func pruneRemovesTheHotCopyWithItsSnapshot() throws {
        let (p, _, hot) = try afterABadUpgrade()
        try p.ok("snapshot", "--quiet")
        try p.writePolicy("""
            {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_per_revision": 0, "keep_tags": []}
            """)
        let prune = try p.ok("prune", "--yes")
        #expect(prune.stdout.contains(hot), "\(prune.stdout)")
        #expect(try !p.manifests().contains { $0["id"] as? String == hot })
        #expect(try p.hotCopies() == [])
    }

    @Test func anOrphanHotCopyIsDebris() throws {
        let (p, _, hot) = try afterABadUpgrade()
        // What a run killed between storing the image and writing the manifest leaves.
        let orphan = p.store + "/20200101-000000-000.sqlite.hot"
        try FileManager.default.copyItem(atPath: p.store + "/\(hot).sqlite.hot", toPath: orphan)
        try p.ok("snapshot", "--quiet")
        #expect(!FileManager.default.fileExists(atPath: orphan))
        #expect(try p.hotCopies() == ["\(hot).sqlite.hot"])
    }

    @Test func aDeletedDatabaseComesBackFromTheHotCopy() throws {
        let (p, before, hot) = try afterABadUpgrade()
        try FileManager.default.removeItem(atPath: p.database)
        let restore = try p.ok("restore", hot, "--yes")
        #expect(restore.stderr.contains("via its hot copy"), "\(restore.stderr)")
        #expect(try p.dump() == before)
        // The database is a copy, not the store's file: writing to it leaves the hot copy sound.
        _ = try p.sqlite("DELETE FROM orders")
        #expect(try p.ok("restore", hot, "--yes", "--no-safety-snapshot").stderr.contains("via its hot copy"))
        #expect(try p.dump() == before)
    }

    @Test func aCopyToAnotherStoreLeavesTheHotCopyBehind() throws {
        let (p, _, hot) = try afterABadUpgrade()
        let other = p.dir + "/other-store"
        try p.ok("copy", "--all", "--to", other)
        let copied = try #require(try p.json(try p.ok("show", hot, "--json", "--store", other).stdout) as? [String: Any])
        #expect(copied["hot"] == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: other).filter { $0.hasSuffix(".hot") } == [])
        #expect(try p.hotIDs() == [hot])
    }

    /// A bucket would send the whole uncompressed image back (slower than the compressed payload),
    /// and an encrypted store must not hold the image in clear: neither keeps a hot copy.
    @Test func aBucketKeepsNoHotCopy() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.useStore(in: bucket)
        let before = try p.dump()
        try p.ok("upgrade")
        #expect(try p.hotIDs() == [])
        #expect(try bucket.names().filter { $0.hasSuffix(".hot") } == [])
        let rollback = try p.ok("rollback", "--yes")
        #expect(!rollback.stderr.contains("hot copy"), "\(rollback.stderr)")
        #expect(try p.dump() == before)
    }

    @Test func anEncryptedStoreKeepsNoHotCopy() throws {
        let p = try Project().seeded()
        let key = p.dir + "/key.txt"
        try #require(try run("/usr/bin/age-keygen", ["-o", key], in: p.dir).status == 0, "age-keygen (scripts/test installs age)")
        let recipient = try run("/usr/bin/age-keygen", ["-y", key], in: p.dir).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let upgrade = try p.migsnap("upgrade", env: ["MIGSNAP_AGE_RECIPIENT": recipient])
        #expect(upgrade.status == 0, "\(upgrade.output)")
        #expect(try p.hotIDs() == [])
        #expect(try p.hotCopies() == [])
    }

    @Test func aFailedMigrationIsUndoneFromTheHotCopy() throws {
        let p = try Project().seeded()
        try p.alembic("upgrade", "head")
        let before = try p.dump()
        try p.writeMigration("0004_fails", """
            from alembic import op
            revision = "0004"
            down_revision = "0003"
            branch_labels = None
            depends_on = None

            def upgrade():
                op.execute("DELETE FROM orders")
                op.execute("SELECT * FROM no_such_table")

            def downgrade():
                pass
            """)
        let r = try p.migsnap("upgrade")
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("via its hot copy"), "\(r.stderr)")
        #expect(try p.dump() == before)
    }
}

enum FileSystemSize {
    static func of(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? -1
    }
}
