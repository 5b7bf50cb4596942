import Foundation

/// The hot tier (DESIGN.md, "Snapshot files and speed"): the newest pre-upgrade snapshots (`keep_hot`
/// in the policy, default 1) are also kept ready to use, so that a rollback right after a bad
/// migration skips the slow half of a restore. The compressed payload stays the durable copy; a
/// hot copy belongs to its snapshot: it is never listed or counted as a snapshot, it goes when its
/// snapshot is removed or a newer upgrade takes its place, and it is used only once checked.
///
/// - `HotTier.storeFile` (SQLite): the uncompressed image, a store object beside the payload,
///   `<id>.<engine>.hot`, named from the id only, used only while its size and SHA-256 match the
///   manifest's `hot`; it goes into the live database by the engine's usual atomic copy. Kept only
///   where it gains something and costs no promise: in a directory store (a bucket would have to
///   send the whole uncompressed image back, slower than the compressed payload), and not in an
///   encrypted store (the image would lie there in clear).
/// - `HotTier.server` (PostgreSQL): a clone of the database on its server, which the engine keeps,
///   checks (its oid, closed to connections since) and swaps in (see PostgresHotCopy.swift).
public struct HotCopy: Codable, Sendable, Equatable {
    /// Size of the image (SQLite), or of the database on the server (PostgreSQL).
    public var bytes: Int64
    /// SHA-256 of the image, lowercase hex (SQLite).
    public var sha256: String?
    /// The clone's oid on the server (PostgreSQL): a database of that name with another oid is not it.
    public var oid: String?

    public init(bytes: Int64, sha256: String? = nil, oid: String? = nil) {
        self.bytes = bytes
        self.sha256 = sha256
        self.oid = oid
    }
}

/// What a look at a hot copy found (`SnapshotStore.checkHotCopy`).
public enum HotCopyState: Sendable, Equatable {
    case sound
    /// Missing, or not the copy the manifest records: a restore will not use it.
    case damaged(String)
    /// Not looked at, with why (a clone on another server, a server that cannot be reached).
    case unchecked(String)
}

extension ObjectName {
    static let hotSuffix = ".hot"

    /// The hot copy's name: the id, the engine, `.hot`.
    public static func hot(id: String, engine: EngineKind) -> String {
        precondition(SnapshotID.isWellFormed(id), "hot copy name from an unchecked id")
        return "\(id).\(engine.rawValue)\(hotSuffix)"
    }

    /// The id a hot copy's name carries, when it is one.
    static func id(ofHot name: String) -> String? {
        guard let dot = name.firstIndex(of: "."), name.hasSuffix(hotSuffix) else { return nil }
        let id = String(name[..<dot])
        guard SnapshotID.isWellFormed(id) else { return nil }
        return EngineKind.allCases.contains { hot(id: id, engine: $0) == name } ? id : nil
    }
}

extension SnapshotStore {
    /// Whether this store keeps hot copies: a local directory, unencrypted.
    public var keepsHotCopies: Bool {
        backend.keepsHotCopies && encryption.recipients.isEmpty
    }

    /// Stores the image an engine kept (`image`, in this run's scratch space) as the hot copy of
    /// snapshot `id`, before its manifest is written; returns what the manifest records.
    func commitHot(image: String, id: String, engine: EngineKind) throws -> HotCopy {
        let sum = try Hashing.sha256InBackground(ofFile: image)
        let bytes = FileSystem.fileSize(image) ?? 0
        do {
            try backend.upload(file: image, as: ObjectName.hot(id: id, engine: engine), progress: nil)
        } catch {
            _ = try? sum()
            throw error
        }
        return HotCopy(bytes: bytes, sha256: try sum())
    }

    /// Drops a snapshot's hot copy: the copy first (the store object, or the server's clone when
    /// `engine` is given), then the manifest's record of it, so that a killed run leaves at worst a
    /// record without its copy, which a restore notices and passes by.
    @discardableResult
    public func dropHot(_ manifest: Manifest, engine: DatabaseEngine? = nil) throws -> Manifest {
        try backend.delete(ObjectName.hot(id: manifest.id, engine: manifest.engine))
        if let engine, engine.hotTier == .server, engine.kind == manifest.engine, manifest.database == engine.redactedLocation {
            try engine.dropServerHotCopy(of: manifest.id)
        }
        guard manifest.hot != nil else { return manifest }
        var updated = manifest
        updated.hot = nil
        try write(updated)
        return updated
    }

    /// Keeps the hot copies of the newest `keep` pre-upgrade snapshots and drops the others (also
    /// those older than a newer pre-upgrade snapshot that could not keep one: a rollback right
    /// after that upgrade goes to the newer one). Returns the snapshots whose hot copy was dropped.
    /// The caller holds the lock.
    @discardableResult
    public func dropHotCopies(keeping keep: Int, engine: DatabaseEngine? = nil) throws -> [Manifest] {
        let all = try manifests()
        let newest = Set(all.filter { $0.reason == .preUpgrade }.suffix(max(0, keep)).map(\.id))
        let dropped = all.filter { $0.hot != nil && !newest.contains($0.id) }
        for manifest in dropped {
            try dropHot(manifest, engine: engine)
        }
        return dropped
    }

    /// The snapshot's hot image fetched into `scratch` and checked against the manifest's size and
    /// SHA-256. Nothing in the store changes.
    private func fetchHotImage(_ manifest: Manifest, record: HotCopy, sha256 expected: String,
                               scratch: ScratchSpace) throws -> (path: String?, state: HotCopyState) {
        let fetched: FetchedObject
        do {
            fetched = try backend.fetch(ObjectName.hot(id: manifest.id, engine: manifest.engine), into: scratch, progress: nil)
        } catch let error as MigsnapError {
            guard case .verificationFailed = error else { throw error }
            return (nil, .damaged("missing"))
        }
        let size = FileSystem.fileSize(fetched.path)
        let sum = size == record.bytes ? try Hashing.sha256(ofFile: fetched.path) : nil
        guard sum == expected else {
            try? FileSystem.remove(fetched.path)
            return (nil, .damaged("does not match its checksum"))
        }
        return (fetched.path, .sound)
    }

    /// The snapshot's hot copy as a local file in `scratch`, checked against the manifest's size
    /// and SHA-256; nil when it has none, or when the copy is missing or does not match (`log`
    /// says so, and `refused` is set: the caller drops the copy once it may write).
    func checkedHotImage(_ manifest: Manifest, engine: DatabaseEngine, scratch: ScratchSpace,
                         log: (String) -> Void, refused: inout Bool) throws -> URL? {
        guard let hot = manifest.hot, let expected = hot.sha256, engine.hotTier == .storeFile, keepsHotCopies else { return nil }
        let (path, state) = try fetchHotImage(manifest, record: hot, sha256: expected, scratch: scratch)
        guard let path else {
            log(state == .damaged("missing")
                ? "Notice: the hot copy of snapshot \(manifest.id) is missing; restoring from the compressed snapshot."
                : "Notice: the hot copy of snapshot \(manifest.id) does not match its checksum; it is discarded and the compressed snapshot is restored instead.")
            refused = true
            return nil
        }
        return URL(fileURLWithPath: path)
    }

    /// Looks at the snapshot's hot copy as a restore does before it uses one (SQLite: the store
    /// file's size and SHA-256; PostgreSQL: the clone is there, with the recorded oid, still closed
    /// to connections), and changes nothing, not even a damaged copy. Nil when it has none.
    public func checkHotCopy(_ manifest: Manifest, engine: DatabaseEngine) throws -> HotCopyState? {
        guard let hot = manifest.hot else { return nil }
        if let expected = hot.sha256 {
            guard keepsHotCopies else {
                return .unchecked("this store keeps no hot copies (a bucket, or encrypted), so a restore will not use it")
            }
            let scratch = try makeScratch()
            return try fetchHotImage(manifest, record: hot, sha256: expected, scratch: scratch).state
        }
        guard engine.hotTier == .server, engine.kind == manifest.engine, manifest.database == engine.redactedLocation else {
            return .unchecked("it is a clone on the server of \(manifest.database), which is not the configured database")
        }
        do {
            try engine.checkServerHotCopy(of: manifest.id, record: hot)
            return .sound
        } catch let error as MigsnapError {
            if case .verificationFailed = error { return .damaged(error.message) }
            return .unchecked(error.message)
        }
    }

    /// The snapshot's hot copy on the database server, staged for the swap; nil when it has none
    /// here, or when it is missing or not the clone the manifest describes (`refused` is set).
    private func stagedServerHotCopy(_ manifest: Manifest, engine: DatabaseEngine, versionTable: VersionTable,
                                     progress: ProgressReporter, log: (String) -> Void, refused: inout Bool) throws -> StagedRestore? {
        guard let hot = manifest.hot, hot.oid != nil, engine.hotTier == .server, manifest.database == engine.redactedLocation else { return nil }
        do {
            let staged = try engine.stageRestore(serverHotCopyOf: manifest.id, record: hot, rows: manifest.shape?.tables.mapValues(\.rows),
                                                 versionTable: versionTable, progress: progress)
            guard staged.content.revisions == manifest.revisions else {
                throw MigsnapError.verificationFailed("it holds \(Revisions.named(staged.content.revisions))")
            }
            return staged
        } catch let error as MigsnapError {
            if case .verificationFailed = error {
                log("Notice: the hot copy of snapshot \(manifest.id) cannot be trusted (\(error.message)); it is discarded and the compressed snapshot is restored instead.")
                refused = true
            } else {
                log("Notice: the hot copy of snapshot \(manifest.id) cannot be used (\(error.message)); restoring from the compressed snapshot.")
            }
            return nil
        }
    }

    /// A staged restore of `manifest` into `engine`: from its hot copy when it has a sound one,
    /// else from the compressed payload (fetched, checked, decrypted).
    public func stageRestore(_ manifest: Manifest, engine: DatabaseEngine, versionTable: VersionTable, scratch: ScratchSpace,
                             progress: ProgressReporter, log: (String) -> Void) throws -> StagedFromStore {
        var refused = false
        if let image = try checkedHotImage(manifest, engine: engine, scratch: scratch, log: log, refused: &refused) {
            do {
                let staged = try engine.stageRestore(hotImage: image, versionTable: versionTable, progress: progress)
                log("Restoring snapshot \(manifest.id) via its hot copy (checksum verified).")
                return StagedFromStore(staged: HotStagedRestore(inner: staged, scratch: scratch), hotRefused: false, hotConsumed: false)
            } catch let error as MigsnapError {
                log("Notice: the hot copy of snapshot \(manifest.id) cannot be used here (\(error.message)); restoring from the compressed snapshot.")
            }
        }
        if let staged = try stagedServerHotCopy(manifest, engine: engine, versionTable: versionTable, progress: progress, log: log, refused: &refused) {
            log("Restoring snapshot \(manifest.id) via its hot copy (the clone on the server; a rename swap).")
            return StagedFromStore(staged: staged, hotRefused: false, hotConsumed: true)
        }
        // Staging starts while the payload arrives; nothing is swapped in unless its bytes are the
        // manifest's, whatever the engine checked.
        let payload = try arrivingPayload(manifest, scratch: scratch, progress: progress)
        let staged: StagedRestore
        do {
            staged = try engine.stageRestore(arriving: payload, versionTable: versionTable, progress: progress)
        } catch let error as MigsnapError {
            try payload.verify()
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        try payload.verify()
        return StagedFromStore(staged: staged, hotRefused: refused, hotConsumed: false)
    }
}

/// A staged restore, and what it means for the snapshot's hot copy.
public struct StagedFromStore {
    public var staged: StagedRestore
    /// The hot copy was missing or damaged: drop it once the run may write (not in a dry run), and
    /// rebuild it from the staged image once the restore is committed (`settleHot`).
    public var hotRefused: Bool
    /// The hot copy itself becomes the live database on commit (a server clone swapped in):
    /// afterwards the manifest no longer has one.
    public var hotConsumed: Bool

    /// Before the swap: drops a refused copy, the file and then the manifest's record of it, so
    /// that a rebuild after the swap never leaves a record beside a file it does not describe.
    func dropRefusedHot(_ manifest: Manifest, store: SnapshotStore, engine: DatabaseEngine) {
        // Costs disk only if it fails; the restore itself is unaffected.
        if hotRefused { _ = try? store.dropHot(manifest, engine: engine) }
    }

    /// After the swap committed: a consumed copy is dropped; a refused one (dropped before the
    /// swap) is rebuilt from the staged image (see `rebuildHot`). Either failing costs disk or
    /// speed, never the restore.
    func settleHot(_ manifest: Manifest, store: SnapshotStore, engine: DatabaseEngine, keepHot: Int, log: (String) -> Void) {
        if hotConsumed {
            _ = try? store.dropHot(manifest, engine: engine)
        } else if hotRefused {
            do {
                if try store.rebuildHot(of: manifest.id, from: staged, engine: engine, keepHot: keepHot) {
                    log("Snapshot \(manifest.id): rebuilt its hot copy from the verified compressed snapshot.")
                }
            } catch let error as MigsnapError {
                log("Notice: the hot copy of snapshot \(manifest.id) could not be rebuilt (\(error.message)); the restore stands, and the next one uses the compressed snapshot.")
            } catch {
                log("Notice: the hot copy of snapshot \(manifest.id) could not be rebuilt (\(error)); the restore stands.")
            }
        }
    }
}

extension SnapshotStore {
    /// Makes the image a committed restore of snapshot `id` went in with the snapshot's hot copy
    /// again, where a hot copy belongs: a store file (PostgreSQL's clone is not rebuilt, see
    /// below), in a store that keeps them, for a snapshot among the newest `keepHot` pre-upgrade
    /// ones, whose manifest records none now (its refused copy was dropped before the swap).
    /// The file goes into the store first and the manifest's record last: a killed run leaves at
    /// worst a file no manifest records, which `cleanDebris` removes. Returns whether it did.
    ///
    /// A clone on a PostgreSQL server is not rebuilt: after the swap the restored database is open
    /// to the application, so a clone of it would have to end the application's sessions
    /// (PostgreSQL clones only a database nobody is connected to) and could hold rows written
    /// since, not the snapshot; cloning the staged copy before the swap instead would put a second
    /// full copy of the database into an emergency restore's critical path. The dump stays the
    /// durable copy, and the next upgrade makes a new clone.
    func rebuildHot(of id: String, from staged: StagedRestore, engine: DatabaseEngine, keepHot: Int) throws -> Bool {
        guard engine.hotTier == .storeFile, keepsHotCopies, keepHot > 0 else { return false }
        let all = try manifests()
        guard var manifest = all.first(where: { $0.id == id }), manifest.hot == nil, manifest.engine == engine.kind,
              all.filter({ $0.reason == .preUpgrade }).suffix(keepHot).contains(where: { $0.id == id }) else { return false }
        let scratch = try makeScratch()
        let image = scratch.file(ObjectName.hot(id: id, engine: manifest.engine))
        guard try staged.keepImage(at: image) else { return false }
        manifest.hot = try commitHot(image: image, id: id, engine: manifest.engine)
        try write(manifest)
        return true
    }
}

/// A restore staged from a hot image, which lies in the run's scratch space: the space lives as
/// long as the staged restore.
private final class HotStagedRestore: StagedRestore {
    let inner: StagedRestore
    let scratch: ScratchSpace

    init(inner: StagedRestore, scratch: ScratchSpace) {
        self.inner = inner
        self.scratch = scratch
    }

    var content: PayloadContent { inner.content }

    func compareWithLive(scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff {
        try inner.compareWithLive(scope: scope, progress: progress)
    }

    func commit(progress: ProgressReporter) throws {
        try inner.commit(progress: progress)
    }
}

extension MigrationRun {
    /// The snapshot before an upgrade step: hot when the policy keeps hot copies, and then the
    /// older hot copies beyond `keep_hot` are dropped (after the new one exists).
    func preUpgradeSnapshot(to revision: String, progress: ProgressReporter) throws -> Manifest {
        let snapshot = try TakeSnapshot.run(
            engine: engine, store: store, versionTable: versionTable,
            request: SnapshotRequest(reason: .preUpgrade, targetRevision: revision, hot: keepHot > 0), progress: progress, log: log)
        // A hot copy that cannot be dropped costs disk, not data: the upgrade goes on.
        _ = try? store.dropHotCopies(keeping: keepHot, engine: engine)
        return snapshot
    }
}
