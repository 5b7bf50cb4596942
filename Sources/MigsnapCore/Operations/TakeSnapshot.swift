import Foundation

public struct SnapshotRequest: Sendable {
    public var reason: SnapshotReason
    public var targetRevision: String?
    public var tags: [String]
    public var pinned: Bool
    public var note: String?

    public init(reason: SnapshotReason, targetRevision: String? = nil, tags: [String] = [], pinned: Bool = false, note: String? = nil) {
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
                           request: SnapshotRequest, progress: ProgressReporter, now: Date = Date()) throws -> Manifest {
        try validate(tags: request.tags)
        guard try engine.databaseExists() else {
            throw MigsnapError.invalidInput("No database at \(engine.redactedLocation).",
                                            hint: "Check the database URL (--url, DATABASE_URL or sqlalchemy.url).")
        }
        try store.create()
        try store.cleanDebris()
        let id = try store.newID(now: now)
        let scratch = try store.makeScratch()
        do {
            return try store.commit(id: id, engine: engine.kind, scratch: scratch, progress: progress) { payload in
                let capture = try engine.snapshot(into: payload, versionTable: versionTable, progress: progress)
                return Manifest(
                    id: id, createdAt: now, engine: engine.kind, revisions: capture.revisions.sorted(),
                    reason: request.reason, targetRevision: request.targetRevision, rawBytes: capture.rawBytes,
                    storedBytes: 0, sha256: "", pinned: request.pinned, tags: request.tags, note: request.note,
                    database: engine.redactedLocation, file: ObjectName.payload(id: id, engine: engine.kind, encrypted: false),
                    shape: capture.shape)
            }
        } catch {
            progress.finish()
            throw error
        }
    }

    static func validate(tags: [String]) throws {
        for tag in tags where tag.isEmpty || tag.contains(where: { $0.isWhitespace || $0 == "," }) {
            throw MigsnapError.invalidInput("The tag '\(tag)' is not allowed: tags are non-empty words without spaces or commas.")
        }
    }
}
