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

/// One snapshot's entry in `verify`'s report (`--json` prints them; every entry has the same keys).
public struct VerifyResult: Encodable, Sendable {
    public var id: String
    public var ok: Bool
    /// Why not, when not `ok`.
    @NullEncoded public var error: String?
    /// False when the snapshot could not be checked at all (a full disk, a missing key): a
    /// failure of the machine or the setup, not of the snapshot.
    public var checked: Bool = true
    /// The hot copy: null when the snapshot has none, else "ok", "damaged" or "unchecked", with
    /// why in `hot_copy_problem` (null when "ok").
    @NullEncoded public var hotCopy: String?
    @NullEncoded public var hotCopyProblem: String?

    enum CodingKeys: String, CodingKey {
        case id, ok, error, checked
        case hotCopy = "hot_copy"
        case hotCopyProblem = "hot_copy_problem"
    }

    public init(id: String, ok: Bool, error: String? = nil, checked: Bool = true) {
        self.id = id
        self.ok = ok
        self.error = error
        self.checked = checked
    }

    mutating func note(_ state: HotCopyState?) {
        switch state {
        case nil: (hotCopy, hotCopyProblem) = (nil, nil)
        case .sound: (hotCopy, hotCopyProblem) = ("ok", nil)
        case .damaged(let why): (hotCopy, hotCopyProblem) = ("damaged", why)
        case .unchecked(let why): (hotCopy, hotCopyProblem) = ("unchecked", why)
        }
    }
}

extension VerifySnapshot {
    /// `run`, and a look at the snapshot's hot copy, as one report entry. A snapshot that fails
    /// verification is an entry that is not `ok`; one that could not be checked at all is also
    /// returned as the error that stopped the check.
    public static func check(_ manifest: Manifest, store: SnapshotStore, engine: DatabaseEngine, versionTable: VersionTable,
                             restore: Bool, progress: ProgressReporter) -> (VerifyResult, unchecked: MigsnapError?) {
        var result: VerifyResult
        var unchecked: MigsnapError?
        do {
            try run(manifest, store: store, engine: engine, versionTable: versionTable, restore: restore, progress: progress)
            result = VerifyResult(id: manifest.id, ok: true)
        } catch let error as MigsnapError {
            if case .verificationFailed = error {
                result = VerifyResult(id: manifest.id, ok: false, error: error.message)
            } else {
                result = VerifyResult(id: manifest.id, ok: false, error: error.message, checked: false)
                unchecked = error
            }
        } catch {
            result = VerifyResult(id: manifest.id, ok: false, error: "\(error)", checked: false)
            unchecked = .failed("\(error)")
        }
        do {
            result.note(try store.checkHotCopy(manifest, engine: engine))
        } catch let error as MigsnapError {
            result.note(.unchecked(error.message))
        } catch {
            result.note(.unchecked("\(error)"))
        }
        return (result, unchecked)
    }

    /// What the report says as a whole: nil when every snapshot and hot copy is sound; else the
    /// error to exit with. A failed snapshot is exit 3; so is a damaged hot copy (the compressed
    /// snapshot is sound then); snapshots that could not be checked, with nothing failed, exit as
    /// the first such error does (1, or 2 for bad input), saying it says nothing against them.
    public static func verdict(_ results: [VerifyResult], unchecked: [MigsnapError]) -> MigsnapError? {
        let failed = results.filter { !$0.ok && $0.checked }.count
        let damagedHot = results.filter { $0.hotCopy == "damaged" }.map(\.id)
        if failed == 0, damagedHot.isEmpty, let first = unchecked.first {
            let message = "\(unchecked.count) of \(UserText.count(results.count, "snapshot")) could not be checked; that says nothing against the snapshots themselves: \(first.message)"
            switch first {
            case .invalidInput: return .invalidInput(message, hint: first.hint)
            default: return .failed(message, hint: first.hint ?? "Free some disk space (or fix what the error names) and run verify again.")
            }
        }
        if failed > 0 {
            return .verificationFailed("\(failed) of \(UserText.count(results.count, "snapshot")) failed verification.",
                                       hint: "Do not restore a failed snapshot; take a new one with `migsnap snapshot`.")
        }
        if !damagedHot.isEmpty {
            let message = damagedHot.count == 1
                ? "The hot copy of snapshot \(damagedHot[0]) is damaged; a restore will not use it, and the compressed snapshot is sound."
                : "The hot copies of snapshots \(damagedHot.joined(separator: ", ")) are damaged; a restore will not use them, and the compressed snapshots are sound."
            return .verificationFailed(message,
                                       hint: "Nothing is lost. The next restore of it drops the damaged copy (on SQLite it rebuilds it), and the next upgrade makes a new one.")
        }
        return nil
    }
}
