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

    /// The snapshot's hot copy as a local file in `scratch`, checked against the manifest's size
    /// and SHA-256; nil when it has none, or when the copy is missing or does not match (`log`
    /// says so, and `refused` is set: the caller drops the copy once it may write).
    func checkedHotImage(_ manifest: Manifest, engine: DatabaseEngine, scratch: ScratchSpace,
                         log: (String) -> Void, refused: inout Bool) throws -> URL? {
        guard let hot = manifest.hot, let expected = hot.sha256, engine.hotTier == .storeFile, keepsHotCopies else { return nil }
        let name = ObjectName.hot(id: manifest.id, engine: manifest.engine)
        let fetched: FetchedObject
        do {
            fetched = try backend.fetch(name, into: scratch, progress: nil)
        } catch let error as MigsnapError {
            guard case .verificationFailed = error else { throw error }
            log("Notice: the hot copy of snapshot \(manifest.id) is missing; restoring from the compressed snapshot.")
            refused = true
            return nil
        }
        let size = FileSystem.fileSize(fetched.path)
        let sum = size == hot.bytes ? try Hashing.sha256(ofFile: fetched.path) : nil
        guard sum == expected else {
            try? FileSystem.remove(fetched.path)
            log("Notice: the hot copy of snapshot \(manifest.id) does not match its checksum; it is discarded and the compressed snapshot is restored instead.")
            refused = true
            return nil
        }
        return URL(fileURLWithPath: fetched.path)
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
    /// The hot copy was missing or damaged: drop it once the run may write (not in a dry run).
    public var hotRefused: Bool
    /// The hot copy itself becomes the live database on commit (a server clone swapped in):
    /// afterwards the manifest no longer has one.
    public var hotConsumed: Bool

    /// What to do about the hot copy once the restore is committed, or refused.
    func settleHot(_ manifest: Manifest, store: SnapshotStore, engine: DatabaseEngine, committed: Bool) {
        // Costs disk only if it fails; the restore itself is unaffected.
        if hotRefused || (hotConsumed && committed) {
            _ = try? store.dropHot(manifest, engine: engine)
        }
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
