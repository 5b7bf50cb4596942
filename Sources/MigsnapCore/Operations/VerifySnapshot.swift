import Foundation

public enum VerifySnapshot {
    /// Checksum, full read of the payload, and its revisions against the manifest.
    @discardableResult
    public static func run(_ manifest: Manifest, store: SnapshotStore, engine: DatabaseEngine, versionTable: VersionTable,
                           progress: ProgressReporter) throws -> PayloadContent {
        defer { progress.finish() }
        let scratch = try store.makeScratch()
        let payload = try store.localPayload(manifest, scratch: scratch, progress: progress)
        let content: PayloadContent
        do {
            content = try engine.inspect(payload: payload, versionTable: versionTable, progress: progress)
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
