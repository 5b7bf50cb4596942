import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A directory of snapshots: `<id>.json` manifests beside `<id>.<ext>` payloads, created 0700 with
/// a `.gitignore`, one kernel-held lock, every write atomic. A snapshot exists once its manifest
/// exists; the manifest is written last and removed first.
public final class SnapshotStore {
    public let directory: String
    static let manifestSuffix = ".json"
    static let tempPrefix = ".tmp-"
    static let lockName = ".lock"

    public init(directory: String) {
        self.directory = directory
    }

    public func path(_ name: String) -> String {
        (directory as NSString).appendingPathComponent(name)
    }

    public func payloadPath(_ manifest: Manifest) -> String {
        path(manifest.file)
    }

    public var exists: Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) && isDir.boolValue
    }

    /// Creates the store (0700, with a `.gitignore` that ignores everything) if it is not there.
    public func create() throws {
        if !exists {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw MigsnapError.failed("Cannot create the snapshot store \(directory): \(error.localizedDescription)",
                                          hint: "Pass --store DIR or set MIGSNAP_STORE to a writable directory.")
            }
        }
        chmod(directory, 0o700)
        let ignore = path(".gitignore")
        if !FileManager.default.fileExists(atPath: ignore) {
            try FileSystem.writeAtomically(Data("# migsnap snapshots hold database contents: never commit them.\n*\n".utf8),
                                           to: ignore, mode: 0o600)
        }
    }

    /// Takes the store lock (creating the store). Held until the returned lock is released.
    public func lock(purpose: String, wait: TimeInterval = 5) throws -> FileLock {
        try create()
        return try FileLock(path: path(Self.lockName), purpose: purpose, wait: wait)
    }

    // MARK: Reading

    /// Every complete snapshot, oldest first. Damaged manifests are left out (see `scan`), so that
    /// one bad file never stands between the user and the other snapshots.
    public func manifests() throws -> [Manifest] {
        try scan().manifests
    }

    /// The readable manifests, oldest first, and the manifests that cannot be read, with why.
    public func scan() throws -> (manifests: [Manifest], damaged: [(file: String, problem: String)]) {
        guard exists else { return ([], []) }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigsnapError.failed("Cannot read the snapshot store \(directory): \(error.localizedDescription)")
        }
        var result: [Manifest] = []
        var damaged: [(file: String, problem: String)] = []
        for name in names.sorted() where name.hasSuffix(Self.manifestSuffix)
            && SnapshotID.isWellFormed(String(name.dropLast(Self.manifestSuffix.count))) {
            do {
                result.append(try readManifest(path(name)))
            } catch let error as MigsnapError {
                damaged.append((path(name), error.message))
            }
        }
        return (result.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }, damaged)
    }

    private func readManifest(_ file: String) throws -> Manifest {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw MigsnapError.failed("Cannot read the manifest \(file).")
        }
        do {
            return try JSON.decoder().decode(Manifest.self, from: data)
        } catch {
            throw MigsnapError.verificationFailed("The manifest \(file) is damaged (\(error.localizedDescription))",
                                                  hint: "Move it out of the store; its snapshot can still be restored by hand.")
        }
    }

    /// The snapshot named by a full id or a unique prefix of one.
    public func resolve(_ idOrPrefix: String) throws -> Manifest {
        guard SnapshotID.isWellFormedPrefix(idOrPrefix) else {
            throw MigsnapError.invalidInput("'\(idOrPrefix)' is not a snapshot id.",
                                            hint: "Run `migsnap list` to see the ids.")
        }
        let all = try manifests()
        if let exact = all.first(where: { $0.id == idOrPrefix }) { return exact }
        let matches = all.filter { $0.id.hasPrefix(idOrPrefix) }
        switch matches.count {
        case 1:
            return matches[0]
        case 0:
            throw MigsnapError.invalidInput("No snapshot has the id '\(idOrPrefix)'.",
                                            hint: "Run `migsnap list` to see the ids.")
        default:
            let shown = matches.prefix(5).map(\.id).joined(separator: ", ")
            throw MigsnapError.invalidInput(
                "The id prefix '\(idOrPrefix)' is ambiguous: it matches \(matches.count) snapshots (\(shown)\(matches.count > 5 ? ", …" : "")).",
                hint: "Type more of the id.")
        }
    }

    public var totalStoredBytes: Int64 {
        get throws { try manifests().reduce(0) { $0 + $1.storedBytes } }
    }

    // MARK: Writing (callers hold the lock)

    /// A fresh id, later than every id in the store.
    public func newID(now: Date = Date()) throws -> String {
        let newest = try manifests().map(\.id).max()
        return SnapshotID.make(at: now, after: newest)
    }

    /// Where an engine writes a new payload before it is committed.
    public func temporaryPayloadPath(id: String, extension ext: String) -> String {
        path("\(Self.tempPrefix)\(id).\(ext)")
    }

    /// Commits a payload written at `temporaryPayloadPath`: checksum, rename, then the manifest, last.
    public func commit(temporaryPayload: String, manifest draft: Manifest) throws -> Manifest {
        var manifest = draft
        chmod(temporaryPayload, 0o600)
        manifest.sha256 = try Hashing.sha256(ofFile: temporaryPayload)
        manifest.storedBytes = FileSystem.fileSize(temporaryPayload) ?? 0
        try FileSystem.rename(temporaryPayload, to: payloadPath(manifest))
        try write(manifest)
        return manifest
    }

    /// Rewrites a manifest atomically (pin, unpin, tags).
    public func write(_ manifest: Manifest) throws {
        let data = try JSON.encoder().encode(manifest)
        try FileSystem.writeAtomically(data, to: path(manifest.id + Self.manifestSuffix))
    }

    /// Removes a snapshot: the manifest first, so a killed run never leaves a listed snapshot
    /// without its file; a payload without a manifest is debris the next run removes.
    public func remove(_ manifest: Manifest) throws {
        try FileSystem.remove(path(manifest.id + Self.manifestSuffix))
        try FileSystem.remove(payloadPath(manifest))
    }

    /// Removes what killed runs left: temporary files, and payloads whose manifest was never
    /// written (or was removed by a prune that did not finish). Call with the lock held.
    @discardableResult
    public func cleanDebris() throws -> [String] {
        guard exists else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let ids = Set(names.filter { $0.hasSuffix(Self.manifestSuffix) && !$0.hasPrefix(".") }
            .map { String($0.dropLast(Self.manifestSuffix.count)) })
        var removed: [String] = []
        for name in names where name != Self.lockName && name != ".gitignore" && !name.hasSuffix(Self.manifestSuffix) {
            let isTemp = name.hasPrefix(Self.tempPrefix)
            let id = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
            let orphan = !name.hasPrefix(".") && SnapshotID.isWellFormed(id) && !ids.contains(id)
            if isTemp || orphan {
                try FileSystem.remove(path(name))
                removed.append(name)
            }
        }
        return removed
    }

    /// Checks the stored file against the manifest's size and SHA-256.
    public func verifyChecksum(_ manifest: Manifest, progress: ((Int64) -> Void)? = nil) throws {
        let file = payloadPath(manifest)
        guard let size = FileSystem.fileSize(file) else {
            throw MigsnapError.verificationFailed("Snapshot \(manifest.id): its file \(file) is missing.")
        }
        guard size == manifest.storedBytes else {
            throw MigsnapError.verificationFailed(
                "Snapshot \(manifest.id): its file is \(size) bytes, the manifest says \(manifest.storedBytes) (truncated or replaced).")
        }
        let sum = try Hashing.sha256(ofFile: file, progress: progress)
        guard sum == manifest.sha256 else {
            throw MigsnapError.verificationFailed("Snapshot \(manifest.id): checksum mismatch, the file is corrupted.",
                                                  hint: "Restore another snapshot; `migsnap verify` checks them all.")
        }
    }
}

extension Manifest {
    /// Whether the snapshot was taken at this revision: `base`, a full id, or a prefix of one.
    public func wasTaken(at revision: String) -> Bool {
        revision == "base" ? revisions.isEmpty : revisions.contains { $0.hasPrefix(revision) }
    }
}

extension SnapshotStore {
    /// The newest snapshot taken at `revision` (see `Manifest.wasTaken(at:)`); an error when there
    /// is none, or when the prefix names snapshots of different revisions.
    public func newest(atRevision revision: String) throws -> Manifest {
        let matching = try manifests().filter { $0.wasTaken(at: revision) }
        guard let newest = matching.last else {
            throw MigsnapError.invalidInput("No snapshot was taken at revision \(revision).",
                                            hint: "Run `migsnap list` to see the revisions that have snapshots.")
        }
        let sets = Set(matching.map { Revisions.describe($0.revisions) })
        guard sets.count == 1 else {
            throw MigsnapError.invalidInput("'\(revision)' matches snapshots at several revisions: \(sets.sorted().joined(separator: "; ")).",
                                            hint: "Type more of the revision id.")
        }
        return newest
    }
}

/// Snapshot ids: `YYYYMMDD-HHMMSS-mmm` in UTC — unique in a store, sortable by creation time,
/// safe as file names, and readable as a time by a person.
public enum SnapshotID {
    public static func make(at date: Date, after newest: String?) -> String {
        var candidate = format(date)
        if let newest, candidate <= newest, let newestDate = parse(newest) {
            // Two snapshots in one millisecond, or a clock that stepped back: stay strictly increasing.
            candidate = format(newestDate.addingTimeInterval(0.001))
        }
        return candidate
    }

    static func format(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = time_t(ms / 1000)
        var t = tm()
        var s = seconds
        gmtime_r(&s, &t)
        return String(format: "%04d%02d%02d-%02d%02d%02d-%03d", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                      t.tm_hour, t.tm_min, t.tm_sec, Int(ms % 1000))
    }

    static func parse(_ id: String) -> Date? {
        guard isWellFormed(id) else { return nil }
        let digits = id.filter(\.isNumber)
        func n(_ from: Int, _ len: Int) -> Int32 {
            Int32(digits.dropFirst(from).prefix(len))!
        }
        var t = tm()
        t.tm_year = n(0, 4) - 1900
        t.tm_mon = n(4, 2) - 1
        t.tm_mday = n(6, 2)
        t.tm_hour = n(8, 2)
        t.tm_min = n(10, 2)
        t.tm_sec = n(12, 2)
        let seconds = timegm(&t)
        return Date(timeIntervalSince1970: Double(seconds) + Double(n(14, 3)) / 1000)
    }

    public static func isWellFormed(_ id: String) -> Bool {
        id.range(of: #"^\d{8}-\d{6}-\d{3}$"#, options: .regularExpression) != nil
    }

    /// A prefix a user may type: digits and dashes only, so `/`, `..` and the like never reach the file system.
    public static func isWellFormedPrefix(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 19 && text.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "-") }
    }
}
