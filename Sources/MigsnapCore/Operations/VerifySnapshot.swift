import Foundation

public enum VerifySnapshot {
    /// Checksum, full read of the payload, and its revisions against the manifest. With `restore`,
    /// the snapshot is also restored into a staged copy (a scratch database on PostgreSQL; SQLite's
    /// full read already is one) and its per-table row counts are checked against the counts the
    /// manifest recorded when the snapshot was taken; the staged copy is dropped afterwards, and
    /// the manifest records when (`restore_verified_at`) — so with `restore` the caller holds the
    /// store lock.
    @discardableResult
    public static func run(_ manifest: Manifest, store: SnapshotStore, engine: DatabaseEngine, versionTable: VersionTable,
                           restore: Bool = false, progress: ProgressReporter, now: Date = Date()) throws -> PayloadContent {
        defer { progress.finish() }
        let scratch = try store.makeScratch()
        let payload = try store.localPayload(manifest, scratch: scratch, progress: progress)
        var content: PayloadContent
        do {
            content = try engine.inspect(payload: payload, versionTable: versionTable, progress: progress)
            if restore && content.rowCounts == nil {
                // The full read could not count rows: restore into a staged copy that can.
                let staged = try engine.stageRestore(payload: payload, versionTable: versionTable, progress: progress)
                content = staged.content
            }
        } catch let error as MigsnapError {
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        guard content.revisions == manifest.revisions else {
            throw MigsnapError.verificationFailed(
                "Snapshot \(manifest.id) holds \(Revisions.named(content.revisions)) but its manifest says \(Revisions.describe(manifest.revisions)).")
        }
        if restore, let shape = manifest.shape, let counted = content.rowCounts {
            let differing = shape.tables.keys.sorted().filter { counted[$0] != shape.tables[$0]?.rows }
            guard differing.isEmpty else {
                let detail = differing.prefix(3).map { "\($0): \(counted[$0].map(String.init) ?? "missing") rows restored, \(shape.tables[$0]!.rows) when taken" }
                throw MigsnapError.verificationFailed("Snapshot \(manifest.id) restored with other rows than were taken: \(detail.joined(separator: "; ")).")
            }
        }
        if restore {
            var proven = manifest
            proven.restoreVerifiedAt = now
            try store.write(proven)
        }
        return content
    }
}
