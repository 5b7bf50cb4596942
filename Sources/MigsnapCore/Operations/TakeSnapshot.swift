import Foundation

public struct SnapshotRequest: Sendable {
    public var reason: SnapshotReason
    public var targetRevision: String?
    public var tags: [String]
    public var pinned: Bool
    public var note: String?
    /// Keep a hot copy too, where the engine and the store can (see HotCopies.swift).
    public var hot: Bool

    public init(reason: SnapshotReason, targetRevision: String? = nil, tags: [String] = [], pinned: Bool = false, note: String? = nil,
                hot: Bool = false) {
        self.hot = hot
        self.reason = reason
        self.targetRevision = targetRevision
        self.tags = tags
        self.pinned = pinned
        self.note = note
    }
}

public enum TakeSnapshot {
    /// Snapshots the live database into the store. The caller holds the store lock.
    /// Nothing is listed unless everything succeeded: the payload is stored (on a bucket, sent
    /// while the engine writes it) and the manifest comes last.
    public static func run(engine: DatabaseEngine, store: SnapshotStore, versionTable: VersionTable,
                           request: SnapshotRequest, progress: ProgressReporter, now: Date = Date(),
                           log: (String) -> Void = { _ in }) throws -> Manifest {
        try validate(tags: request.tags)
        guard try engine.databaseExists() else {
            throw MigsnapError.invalidInput("No database at \(engine.redactedLocation).",
                                            hint: "Check the database URL (--url, DATABASE_URL or sqlalchemy.url).")
        }
        try store.create()
        try store.cleanDebris()
        let id = try store.newID(now: now)
        let scratch = try store.makeScratch()
        let hotImage = request.hot && engine.hotTier == .storeFile && store.keepsHotCopies
            ? scratch.file(ObjectName.hot(id: id, engine: engine.kind)) : nil
        var serverHot: HotCopy?
        do {
            if request.hot && engine.hotTier == .server {
                // Clones left by killed runs (no manifest names them) go before a new one is made;
                // one that cannot be dropped costs disk on the server, never the snapshot.
                try? engine.dropServerHotCopies(except: Set(try store.manifests().filter { $0.hot != nil }.map(\.id)))
            }
            return try store.commit(id: id, engine: engine.kind, scratch: scratch, progress: progress) { payload in
                let capture: SnapshotCapture
                if request.hot && engine.hotTier == .server {
                    (capture, serverHot) = try engine.snapshot(into: payload, serverHotCopyOf: id,
                                                               versionTable: versionTable, progress: progress, notice: log)
                } else {
                    capture = try engine.snapshot(into: payload, hotImage: hotImage.map(URL.init(fileURLWithPath:)),
                                                  versionTable: versionTable, progress: progress)
                }
                var draft = Manifest(
                    id: id, createdAt: now, engine: engine.kind, revisions: capture.revisions.sorted(),
                    reason: request.reason, targetRevision: request.targetRevision, rawBytes: capture.rawBytes,
                    storedBytes: 0, sha256: "", pinned: request.pinned, tags: request.tags, note: request.note,
                    database: engine.redactedLocation, file: ObjectName.payload(id: id, engine: engine.kind, encrypted: false),
                    shape: capture.shape)
                // Stored before the manifest: a killed run leaves an orphan that debris cleanup removes.
                draft.hot = try hotImage.map { try store.commitHot(image: $0, id: id, engine: engine.kind) } ?? serverHot
                return draft
            }
        } catch {
            progress.finish()
            // A clone without its manifest would be debris until the next hot snapshot.
            if serverHot != nil { try? engine.dropServerHotCopy(of: id) }
            throw error
        }
    }

    static func validate(tags: [String]) throws {
        for tag in tags where tag.isEmpty || tag.contains(where: { $0.isWhitespace || $0 == "," }) {
            throw MigsnapError.invalidInput("The tag '\(tag)' is not allowed: tags are non-empty words without spaces or commas.")
        }
    }
}
