import Foundation
import Testing

extension Project {
    /// The manifest's `hot` record of snapshot `id`, or nil.
    func hotRecord(_ id: String) throws -> [String: Any]? {
        try manifests().first { $0["id"] as? String == id }?["hot"] as? [String: Any]
    }

}

func sha256(ofFile path: String) throws -> String {
    let r = try run("/usr/bin/sha256sum", [path], in: "/tmp")
    #expect(r.status == 0, "sha256sum: \(r.stderr)")
    return String(r.stdout.prefix(64))
}

/// A refused hot copy is rebuilt from the restore's verified image (issue 11).
extension HotTierTests {
    enum Damage: String, CaseIterable {
        case corrupted, missing

        func apply(to file: String) throws {
            switch self {
            case .corrupted:
                var bytes = try #require(fileBytes(file))
                bytes[bytes.count / 3] ^= 0x40
                try bytes.write(to: URL(fileURLWithPath: file))
            case .missing:
                try FileManager.default.removeItem(atPath: file)
            }
        }
    }

    /// The record and the file agree, and the next restore uses the copy, after `change` (by
    /// default Alembic's upgrade to head) moved the database away from it.
    func expectSoundHotCopy(_ p: Project, _ hot: String, before: String,
                            change: (Project) throws -> Void = { try $0.alembic("upgrade", "head") },
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = p.store + "/\(hot).sqlite.hot"
        let record = try #require(try p.hotRecord(hot), sourceLocation: sourceLocation)
        #expect((record["bytes"] as? Int) == Int(FileSystemSize.of(file)), sourceLocation: sourceLocation)
        #expect(record["sha256"] as? String == (try sha256(ofFile: file)), sourceLocation: sourceLocation)
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, sourceLocation: sourceLocation)
        try change(p)
        #expect(try p.dump() != before, sourceLocation: sourceLocation)
        let again = try p.ok("restore", hot, "--yes", "--no-safety-snapshot")
        #expect(again.stderr.contains("via its hot copy"), "\(again.stderr)", sourceLocation: sourceLocation)
        #expect(try p.dump() == before, sourceLocation: sourceLocation)
    }

    @Test(arguments: Damage.allCases)
    func aRefusedHotCopyIsRebuiltFromTheCompressedSnapshot(_ damage: Damage) throws {
        let (p, before, hot) = try afterABadUpgrade()
        try damage.apply(to: p.store + "/\(hot).sqlite.hot")
        let rollback = try p.ok("rollback", "--yes")
        #expect(rollback.stderr.contains(damage == .missing ? "is missing" : "does not match its checksum"), "\(rollback.stderr)")
        #expect(rollback.stderr.contains("Snapshot \(hot): rebuilt its hot copy"), "\(rollback.stderr)")
        #expect(try p.dump() == before)
        #expect(try p.hotIDs() == [hot])
        #expect(try p.hotCopies() == ["\(hot).sqlite.hot"])
        try expectSoundHotCopy(p, hot, before: before)
        #expect(try p.migsnap("verify").status == 0)
    }

    /// Into a WAL database of another page size the image is rebuilt by a VACUUM on the way in:
    /// the new hot copy is that image, hashed as it was stored, and fits the database next time.
    @Test func aRebuiltHotCopyIsTheImageAsStored() throws {
        let (p, before, hot) = try afterABadUpgrade()
        let original = try #require(try p.hotRecord(hot)?["sha256"] as? String)
        _ = try p.sqlite("PRAGMA journal_mode=DELETE; PRAGMA page_size=8192; VACUUM; PRAGMA journal_mode=WAL;")
        try Damage.corrupted.apply(to: p.store + "/\(hot).sqlite.hot")
        let rollback = try p.ok("rollback", "--yes")
        #expect(rollback.stderr.contains("rebuilt its hot copy"), "\(rollback.stderr)")
        #expect(try p.dump() == before)
        let file = p.store + "/\(hot).sqlite.hot"
        let pageSize = try run("/usr/bin/sqlite3", ["-readonly", file, "PRAGMA page_size; PRAGMA journal_mode;"], in: p.dir)
        #expect(pageSize.stdout.split(separator: "\n") == ["8192", "delete"], "\(pageSize.output)")
        #expect(try p.hotRecord(hot)?["sha256"] as? String != original)
        try expectSoundHotCopy(p, hot, before: before)
    }

    @Test func aSnapshotThePolicyNoLongerKeepsHotIsNotRebuilt() throws {
        let (p, before, hot) = try afterABadUpgrade()
        try p.writePolicy(#"{"keep_hot": 0}"#)
        try Damage.corrupted.apply(to: p.store + "/\(hot).sqlite.hot")
        let rollback = try p.ok("rollback", "--yes")
        #expect(rollback.stderr.contains("does not match its checksum"), "\(rollback.stderr)")
        #expect(!rollback.stderr.contains("rebuilt"), "\(rollback.stderr)")
        #expect(try p.dump() == before)
        #expect(try p.hotIDs() == [])
        #expect(try p.hotCopies() == [])
    }

    /// Upgrade's restore-on-failure goes through the same rebuild: here the failing migration
    /// itself damages the hot copy its step's snapshot just made, then fails half way.
    @Test func upgradesRestoreOnFailureRebuildsARefusedHotCopy() throws {
        let p = try Project().seeded()
        try p.alembic("upgrade", "0003")
        // The migration flips a byte of each hot copy in the store (the one its step just made).
        try p.writeBrokenStep0004(first: """
            import glob
            for hot in glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", ".migsnap", "*.sqlite.hot")):
                with open(hot, "r+b") as f:
                    f.seek(os.path.getsize(hot) // 3)
                    byte = f.read(1)
                    f.seek(-1, os.SEEK_CUR)
                    f.write(bytes([byte[0] ^ 0x40]))
            """)
        let before = try p.dump()
        let r = try p.migsnap("upgrade")
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("does not match its checksum"), "\(r.stderr)")
        let hot = try #require(try p.preUpgradeIDs().last)
        #expect(r.stderr.contains("Snapshot \(hot): rebuilt its hot copy"), "\(r.stderr)")
        #expect(try p.dump() == before)
        #expect(try p.hotIDs() == [hot])
        #expect(try p.hotCopies() == ["\(hot).sqlite.hot"])
        #expect(try p.migsnap("verify").status == 0)
        // Not by Alembic's upgrade: this 0004 fails again, and damages.
        try expectSoundHotCopy(p, hot, before: before, change: { _ = try $0.sqlite("DELETE FROM customers") })
    }

    /// A rebuild writes the file, then the manifest: killed in between, it leaves a file that no
    /// manifest records, which the next run removes as debris (and nothing trusts meanwhile).
    @Test func aHotCopyItsManifestDoesNotRecordIsDebris() throws {
        let (p, _, hot) = try afterABadUpgrade()
        let path = p.store + "/\(hot).json"
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        manifest["hot"] = nil
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        #expect(try p.hotIDs() == [])
        #expect(try p.hotCopies() == ["\(hot).sqlite.hot"])
        try p.ok("snapshot", "--quiet")
        #expect(try p.hotCopies() == [])
    }
}
