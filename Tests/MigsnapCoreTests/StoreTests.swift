import Foundation
import Testing
@testable import MigsnapCore

@Suite("Snapshot store")
struct StoreTests {
    func manifest(_ id: String, created: Date = Date(timeIntervalSince1970: 1_790_000_000)) -> Manifest {
        Manifest(id: id, createdAt: created, engine: .sqlite, revisions: ["abc"], reason: .manual, rawBytes: 10,
                 storedBytes: 0, sha256: "", database: "/x.db", file: "\(id).sqlite.gz")
    }

    func commit(_ store: SnapshotStore, _ m: Manifest, payload: String = "data") throws -> Manifest {
        try store.commit(id: m.id, engine: m.engine, scratch: try store.makeScratch()) { file in
            try payload.write(to: file, atomically: false, encoding: .utf8)
            return m
        }
    }

    func file(_ store: SnapshotStore, _ name: String) -> String {
        (store.location as NSString).appendingPathComponent(name)
    }

    func verify(_ store: SnapshotStore, _ m: Manifest) throws {
        _ = try store.localPayload(m, scratch: try store.makeScratch())
    }

    @Test func createsPrivateStoreWithGitignore() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.sub("s"))
        try store.create()
        #expect(FileSystem.permissions(store.location) == 0o700)
        #expect(try String(contentsOfFile: file(store, ".gitignore"), encoding: .utf8).contains("*"))
        let m = try commit(store, manifest("20261126-100000-000"))
        #expect(FileSystem.permissions(store.payloadLocation(m)) == 0o600)
        #expect(FileSystem.permissions(file(store, "\(m.id).json")) == 0o600)
        #expect(m.storedBytes == 4)
        #expect(m.sha256 == Hashing.sha256(of: Data("data".utf8)))
        #expect(try store.manifests() == [m])
    }

    @Test func resolvesUniquePrefixesAndRejectsOthers() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        _ = try commit(store, manifest("20261126-100000-000"))
        _ = try commit(store, manifest("20261126-110000-000"))
        _ = try commit(store, manifest("20261127-090000-000"))
        #expect(try store.resolve("20261127").id == "20261127-090000-000")
        #expect(try store.resolve("20261126-11").id == "20261126-110000-000")
        #expect(try store.resolve("20261126-100000-000").id == "20261126-100000-000")
        for bad in ["2026112", "20261128", "../x", "a/b", "..", "", "abc", "20261126-100000-000-0"] {
            #expect(throws: MigsnapError.self, "\(bad)") { try store.resolve(bad) }
        }
        #expect {
            try store.resolve("2026112")
        } throws: { ($0 as? MigsnapError)?.message.contains("ambiguous") == true }
    }

    @Test func checksumCatchesFlipsAndTruncation() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        let m = try commit(store, manifest("20261126-100000-000"), payload: "0123456789")
        try verify(store, m)
        try "0123456780".write(toFile: store.payloadLocation(m), atomically: false, encoding: .utf8)
        #expect(throws: MigsnapError.verificationFailed("Snapshot \(m.id): checksum mismatch, the file is corrupted.",
                                                         hint: "Restore another snapshot; `migsnap verify` checks them all.")) {
            try verify(store, m)
        }
        try "01234".write(toFile: store.payloadLocation(m), atomically: false, encoding: .utf8)
        #expect { try verify(store, m) } throws: { error in
            if case .verificationFailed(let message, _) = error as? MigsnapError { return message.contains("truncated") }
            return false
        }
    }

    @Test func debrisIsCleanedAndNeverListed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        let kept = try commit(store, manifest("20261126-100000-000"))
        // A killed snapshot: a temporary payload, and a committed payload whose manifest never came.
        try "x".write(toFile: file(store, ".tmp-1234-20261126-110000-000.json"), atomically: false, encoding: .utf8)
        try "x".write(toFile: file(store, "20261126-120000-000.sqlite.gz"), atomically: false, encoding: .utf8)
        // A killed run's scratch directory (no live owner), and a live run's, which must survive.
        try FileManager.default.createDirectory(atPath: file(store, ".scratch-dead"), withIntermediateDirectories: false)
        try "x".write(toFile: file(store, ".scratch-dead/.owner"), atomically: false, encoding: .utf8)
        let live = try store.makeScratch()
        try "x".write(toFile: live.file("20261126-130000-000.sqlite.gz"), atomically: false, encoding: .utf8)
        #expect(try store.manifests().map(\.id) == [kept.id])
        let removed = try store.cleanDebris()
        #expect(Set(removed) == [".tmp-1234-20261126-110000-000.json", "20261126-120000-000.sqlite.gz", ".scratch-dead"])
        #expect(FileManager.default.fileExists(atPath: live.file("20261126-130000-000.sqlite.gz")))
        #expect(FileManager.default.fileExists(atPath: store.payloadLocation(kept)))
        #expect(try store.manifests().map(\.id) == [kept.id])
    }

    @Test func removeTakesManifestFirst() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        let m = try commit(store, manifest("20261126-100000-000"))
        try store.remove(m)
        #expect(try store.manifests().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: store.payloadLocation(m)))
    }

    @Test func idsAreSortableUniqueAndIncreasing() throws {
        let t = Date(timeIntervalSince1970: 1_795_000_000.1234)
        let a = SnapshotID.make(at: t, after: nil)
        #expect(a == "20261118-110640-123")
        let b = SnapshotID.make(at: t, after: a)
        #expect(b == "20261118-110640-124")
        let c = SnapshotID.make(at: t.addingTimeInterval(-3600), after: b)
        #expect(c > b)
        #expect(SnapshotID.isWellFormed(a) && !SnapshotID.isWellFormed("2026-11-18"))
    }

    @Test func lockIsExclusiveAndNamesTheHolder() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        var first: StoreLock? = try store.lock(purpose: "upgrade")
        #expect {
            try store.lock(purpose: "prune", wait: 0.2)
        } throws: { error in
            guard case .refused(let message, _) = error as? MigsnapError else { return false }
            return message.contains("upgrade") && message.contains("pid")
        }
        first = nil
        _ = first
        let second = try store.lock(purpose: "prune", wait: 0.2)
        _ = second
    }

    @Test func manifestJSONHasTheContractKeys() throws {
        var m = manifest("20261126-100000-000", created: Date(timeIntervalSince1970: 1_795_000_000.5))
        m.targetRevision = nil
        let data = try JSON.encoder().encode(m)
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        for key in ["id", "created_at", "engine", "revisions", "reason", "target_revision", "raw_bytes", "stored_bytes",
                    "sha256", "pinned", "tags", "database", "format_version"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["target_revision"] is NSNull)
        #expect(object["created_at"] as? String == "2026-11-18T11:06:40.500Z")
        #expect(try JSON.decoder().decode(Manifest.self, from: data) == m)
    }

    @Test func optionalKeysMayBeAbsentOrNull() throws {
        let json = """
        {"id": "20261126-100000-000", "created_at": "2026-11-26T10:00:00Z", "engine": "postgresql",
         "revisions": [], "reason": "pre-upgrade", "target_revision": "abc", "raw_bytes": 1, "stored_bytes": 1,
         "sha256": "00", "pinned": false, "tags": [], "database": "db", "file": "f", "format_version": 1}
        """
        let m = try JSON.decoder().decode(Manifest.self, from: Data(json.utf8))
        #expect(m.note == nil)
        #expect(m.targetRevision == "abc")
        let again = try JSONSerialization.jsonObject(with: try JSON.encoder().encode(m)) as! [String: Any]
        #expect(again["note"] is NSNull)
        #expect(again["target_revision"] as? String == "abc")
    }

    /// A directory store lists its manifests on every listing: what changed behind the index, or
    /// what the index lacks, is read from the manifests themselves.
    @Test func theIndexNeverHidesOrOverridesAManifest() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        let lock = try store.lock(purpose: "test")
        let a = try commit(store, manifest("20261126-100000-000"))
        var b = try commit(store, manifest("20261126-110000-000"))
        lock.release()
        #expect(try store.backend.read(ObjectName.index).flatMap(StoreIndex.init(decoding:))?.entries.count == 2)
        b.pinned = true
        b.note = "edited by hand"
        try JSON.encoder().encode(b).write(to: URL(fileURLWithPath: file(store, "\(b.id).json")))
        #expect(try store.manifests() == [a, b])
        try store.backend.write(ObjectName.index, data: StoreIndex(complete: true, entries: [:]).encoded())
        #expect(try store.manifests() == [a, b])
    }

    /// Manifests of older versions, or written by other hands (keys in another order, some absent),
    /// are read as well as those this migsnap writes; a damaged one is still named.
    @Test func manifestsOfAnyLayoutAreRead() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        let current = try commit(store, manifest("20261126-100000-000"))
        let older = try commit(store, manifest("20261126-110000-000"))
        var object = try #require(try JSONSerialization.jsonObject(with: try JSON.encoder().encode(older)) as? [String: Any])
        object["restore_verified_at"] = nil
        object["encryption"] = nil
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: file(store, "\(older.id).json")))
        try Data(#"{"id": "20261126-120000-000""#.utf8).write(to: URL(fileURLWithPath: file(store, "20261126-120000-000.json")))
        #expect(Manifest(asWritten: try #require(try store.backend.read("\(current.id).json"))) == current)
        #expect(Manifest(asWritten: try #require(try store.backend.read("\(older.id).json"))) == nil)
        let scan = try store.scan()
        #expect(scan.manifests == [current, older])
        #expect(scan.damaged.map(\.file) == [file(store, "20261126-120000-000.json")])
    }

    @Test func newestAtARevisionAndItsAmbiguity() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = SnapshotStore(directory: dir.path)
        for (id, revisions) in [("20261126-100000-000", ["abc1"]), ("20261126-110000-000", ["abc1"]),
                                ("20261126-120000-000", ["abc2"]), ("20261126-130000-000", [])] {
            var m = manifest(id, created: Date(timeIntervalSince1970: 1_790_000_000 + Double(id.dropFirst(9).prefix(2))! * 3600))
            m.revisions = revisions
            _ = try commit(store, m)
        }
        #expect(try store.newest(atRevision: "abc1").id == "20261126-110000-000")
        #expect(try store.newest(atRevision: "abc2").id == "20261126-120000-000")
        #expect(try store.newest(atRevision: "base").id == "20261126-130000-000")
        #expect { try store.newest(atRevision: "abc") } throws: { ($0 as? MigsnapError)?.message.contains("several revisions") == true }
        #expect { try store.newest(atRevision: "zzz") } throws: { ($0 as? MigsnapError)?.message.contains("No snapshot") == true }
    }
}
