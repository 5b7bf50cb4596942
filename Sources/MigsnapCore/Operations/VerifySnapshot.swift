import Foundation

public enum VerifySnapshot {
    /// Checksum, full read of the payload, and its revisions against the manifest.
    @discardableResult
    public static func run(_ manifest: Manifest, store: SnapshotStore, engine: DatabaseEngine, versionTable: VersionTable,
                           progress: ProgressReporter) throws -> PayloadContent {
        defer { progress.finish() }
        try store.verifyChecksum(manifest) { done in progress.update(phase: "checksum \(manifest.id)", done: done, total: manifest.storedBytes) }
        let content: PayloadContent
        do {
            content = try engine.inspect(payload: URL(fileURLWithPath: store.payloadPath(manifest)), versionTable: versionTable, progress: progress)
        } catch let error as MigsnapError {
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        guard content.revisions == manifest.revisions else {
            throw MigsnapError.verificationFailed(
                "Snapshot \(manifest.id) holds revision(s) \(Revisions.describe(content.revisions)) but its manifest says \(Revisions.describe(manifest.revisions)).")
        }
        return content
    }
}
