import Foundation

/// What `copy` did with one snapshot.
public struct CopyOutcome: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case copied, present, wouldCopy = "would-copy" }
    public var id: String
    public var action: Action
    public var storedBytes: Int64
    /// Whether the copy's payload is encrypted (it is encrypted on the way when the destination has recipients).
    public var encrypted: Bool

    enum CodingKeys: String, CodingKey {
        case id, action, encrypted
        case storedBytes = "stored_bytes"
    }
}

/// `copy ID… --to STORE`: snapshots from one store to another, verified at both ends. The payload
/// is checked against its manifest before it leaves, encrypted on the way when the destination
/// has recipients and it is plain, and read back and checked after it arrived; the manifest is
/// written last, so a killed copy lists nothing. The caller holds the destination's lock.
public enum CopySnapshots {
    public static func run(_ manifests: [Manifest], from source: SnapshotStore, to destination: SnapshotStore,
                           dryRun: Bool, progress: ProgressReporter, log: (String) -> Void) throws -> [CopyOutcome] {
        let present = Dictionary(try destination.manifests().map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var outcomes: [CopyOutcome] = []
        if !dryRun {
            try destination.create()
            try destination.cleanDebris()
        }
        for manifest in manifests {
            if let there = present[manifest.id] {
                guard there.engine == manifest.engine, there.revisions == manifest.revisions, there.rawBytes == manifest.rawBytes else {
                    throw MigsnapError.failed("Snapshot \(manifest.id) exists in \(destination.location) with other contents; nothing was copied over it.",
                                              hint: "Compare `migsnap show \(manifest.id)` in both stores.")
                }
                outcomes.append(CopyOutcome(id: manifest.id, action: .present, storedBytes: there.storedBytes, encrypted: there.encryption != nil))
                continue
            }
            let encrypt = manifest.encryption == nil && !destination.encryption.recipients.isEmpty
            if dryRun {
                outcomes.append(CopyOutcome(id: manifest.id, action: .wouldCopy, storedBytes: manifest.storedBytes,
                                            encrypted: manifest.encryption != nil || encrypt))
                continue
            }
            log("copying \(manifest.id) (\(manifest.storedBytes) bytes)")
            let scratch = try destination.makeScratch()
            let sourceScratch = try source.makeScratch()
            var copy = manifest
            // The hot copy stays behind: it is the source store's, and the destination has no such object.
            copy.hot = nil
            let committed: Manifest
            if manifest.encryption != nil {
                // Encrypted stays as it is: the bytes travel, checked against the source's checksum.
                let fetched = try source.localPayload(manifest, scratch: sourceScratch, progress: progress, decrypt: false)
                committed = try destination.commit(stored: fetched.path, manifest: copy, scratch: scratch, progress: progress)
            } else {
                let plain = try source.localPayload(manifest, scratch: sourceScratch, progress: progress)
                committed = try destination.commit(id: manifest.id, engine: manifest.engine, scratch: scratch, progress: progress) { staged in
                    try FileSystem.copyFile(plain.path, to: staged.path)
                    return copy
                }
            }
            // Read back what arrived, through the same check a restore makes.
            _ = try destination.localPayload(committed, scratch: try destination.makeScratch(), progress: progress, decrypt: false)
            outcomes.append(CopyOutcome(id: manifest.id, action: .copied, storedBytes: committed.storedBytes, encrypted: committed.encryption != nil))
        }
        return outcomes
    }
}
