import Foundation

/// One object in a store, as a listing shows it.
public struct StoredObject: Sendable, Equatable {
    public var name: String
    public var size: Int64
    /// When it was last written, where the backend knows (S3 LastModified, a file's mtime).
    public var modified: Date?
    /// Changes whenever the object is rewritten (an S3 ETag; a file's inode, size and mtime):
    /// what the listing index compares to know a manifest is unchanged without reading it.
    public var version: String

    public init(name: String, size: Int64, modified: Date?, version: String) {
        self.name = name
        self.size = size
        self.modified = modified
        self.version = version
    }
}

/// The storage protocol: what the snapshot store needs of a place that keeps objects. A directory
/// and an S3 bucket implement it, and both pass one conformance suite (Tests/StoreConformanceTests).
///
/// Names are flat (no `/`) and are checked by `ObjectName.isValid` before any backend call: they are
/// built only from validated snapshot ids and fixed words, never from a manifest's contents or a
/// listing, so no name can reach outside the store. Every method throws `MigsnapError` only.
public protocol StoreBackend: AnyObject {
    /// Where the store is, for messages: a path or `s3://bucket/prefix`. Never a secret.
    var location: String { get }

    /// How old an orphan payload must be before debris cleanup removes it. A directory store's
    /// writers all hold the kernel lock, so zero; an object store's lease can expire under a
    /// stalled holder, so there a grace period protects its upload.
    var orphanGracePeriod: TimeInterval { get }

    /// Whether `list()` is cheap enough for every listing of snapshots (a directory: yes; a bucket
    /// answers a thousand keys per request: no, and listings then rely on the index).
    var listingIsCheap: Bool { get }

    /// Whether snapshots here may keep an uncompressed hot copy beside the payload (see HotCopies.swift):
    /// where reading it back is faster than inflating the payload, a local directory.
    var keepsHotCopies: Bool { get }

    /// Whether the store exists (its marker is there). Reading commands call this and create nothing.
    func isInitialized() throws -> Bool

    /// Creates the store if it is not there. Refuses (`.invalidInput`) a place that holds other
    /// things and is not a migsnap store; never changes what it did not create.
    func initialize() throws

    /// Every object of the store, sorted by name. Objects whose names `ObjectName.isValid` rejects
    /// are left out (they are not the store's); so are symbolic links and other non-files.
    func list() throws -> [StoredObject]

    /// The objects `list()` shows whose names `include` accepts, in no particular order. A directory
    /// asks before it looks at a file, so that a listing of the manifests does not stat every payload.
    func list(where include: (String) -> Bool) throws -> [StoredObject]

    /// A small object's bytes (a manifest, the index, the guards), or nil when there is none.
    func read(_ name: String) throws -> Data?

    /// Writes a small object atomically: a reader sees the old bytes or the new, never a mix.
    /// Returns its version as `list()` shows it, or "" where the backend cannot tell (a later
    /// listing then reads the object rather than trust a copy of it).
    @discardableResult
    func write(_ name: String, data: Data) throws -> String

    /// Stores a local file as `name`, atomically, reporting bytes sent. The file lies in this run's
    /// `ScratchSpace`; the backend may move it (a directory store renames it into place).
    func upload(file path: String, as name: String, progress: ((Int64) -> Void)?) throws

    /// Starts storing a local file that a writer is still appending to (it never rewrites bytes it
    /// wrote), so that an object store can send it while it is being made. The caller reports each
    /// new end of the file with `grew(to:)`, then the final size with `finish(size:)`; the object
    /// appears whole at `finish` and not before. A backend that stores whole files (a directory:
    /// one rename) waits for `finish` (the default below). The file lies in this run's `ScratchSpace`.
    func beginUpload(growing path: String, as name: String, progress: ((Int64) -> Void)?) throws -> GrowingUpload

    /// Puts the object's bytes in a local file inside `scratch` and returns its path: a hard link on
    /// a directory store (no copy, and a concurrent prune cannot pull it away), a download elsewhere.
    /// A missing object is `.verificationFailed`: a listed snapshot without its payload is broken.
    func fetch(_ name: String, into scratch: ScratchSpace, progress: ((Int64) -> Void)?) throws -> FetchedObject

    /// Like `fetch`, but returns as soon as a reader can start, while the object's bytes arrive
    /// in the file (an object store: its last MiB first, where payload formats keep their index,
    /// then the rest front to back). `size` is the size the manifest gives; the caller checks what
    /// arrived. A backend whose `fetch` is immediate (a directory: a hard link) uses it (the default).
    func fetchArriving(_ name: String, size: Int64, into scratch: ScratchSpace) throws -> ArrivingFile

    /// `length` bytes from `offset` (fewer at the end of the object).
    func readRange(_ name: String, offset: Int64, length: Int64) throws -> Data

    /// Removes an object; a missing one is not an error.
    func delete(_ name: String) throws

    /// A private local directory for this run's temporary files, marked as in use for as long as
    /// the returned value lives, so that another run's debris cleanup leaves it alone.
    func makeScratch() throws -> ScratchSpace

    /// The store lock, exclusive across runs (and, for an object store, across machines). Waits up
    /// to `wait` seconds, then throws `.refused` naming the holder. Released when the value is.
    func lock(purpose: String, wait: TimeInterval) throws -> StoreLock

    /// Removes what killed runs of this backend left that only it knows of (scratch directories of
    /// dead runs, temporary files, incomplete multipart uploads). Called with the lock held.
    func cleanBackendDebris() throws -> [String]
}

extension StoreBackend {
    public var keepsHotCopies: Bool { false }

    public func list(where include: (String) -> Bool) throws -> [StoredObject] {
        try list().filter { include($0.name) }
    }
}


/// A store object being written from a growing local file (see `StoreBackend.beginUpload`).
public protocol GrowingUpload: AnyObject {
    /// The file's first `size` bytes are written and will not change. Throws once the upload has
    /// failed, so that the writer can stop early.
    func grew(to size: Int64) throws
    /// The file is complete at `size` bytes: stores what is left; the object then appears whole.
    func finish(size: Int64) throws
    /// Gives up: the object does not appear, and what was sent is discarded (where the server
    /// cannot be reached, it is debris that `cleanBackendDebris` removes later).
    func abort()
}

extension StoreBackend {
    public func beginUpload(growing path: String, as name: String, progress: ((Int64) -> Void)?) throws -> GrowingUpload {
        try ObjectName.check(name)
        return WholeFileUpload(backend: self, path: path, name: name, progress: progress)
    }
}

extension StoreBackend {
    public func fetchArriving(_ name: String, size: Int64, into scratch: ScratchSpace) throws -> ArrivingFile {
        let fetched = try fetch(name, into: scratch, progress: nil)
        return ArrivingFile(complete: fetched.path, size: FileSystem.fileSize(fetched.path) ?? 0)
    }
}

/// The upload of a backend that stores a file whole: nothing happens before the file is complete.
private final class WholeFileUpload: GrowingUpload {
    let backend: StoreBackend
    let path: String
    let name: String
    let progress: ((Int64) -> Void)?

    init(backend: StoreBackend, path: String, name: String, progress: ((Int64) -> Void)?) {
        self.backend = backend
        self.path = path
        self.name = name
        self.progress = progress
    }

    func grew(to size: Int64) throws {}

    func finish(size: Int64) throws {
        try backend.upload(file: path, as: name, progress: progress)
    }

    func abort() {}
}

/// An object's bytes in a local file, and their SHA-256 where the backend computed it on the way
/// (a download), so that the store need not read the file again to check it.
public struct FetchedObject: Sendable {
    public var path: String
    public var sha256: String?

    public init(path: String, sha256: String? = nil) {
        self.path = path
        self.sha256 = sha256
    }
}

/// A held store lock. Released by `release()` or when the value is freed.
public protocol StoreLock: AnyObject {
    func release()
}

/// The names a store uses. Built only from validated ids and fixed words.
public enum ObjectName {
    public static let guards = "guards.json"
    public static let index = "index.json"
    public static let manifestSuffix = ".json"

    public static func manifest(id: String) -> String {
        precondition(SnapshotID.isWellFormed(id), "manifest name from an unchecked id")
        return id + manifestSuffix
    }

    /// The payload's name: the id and the engine's extension, `.age` when encrypted.
    public static func payload(id: String, engine: EngineKind, encrypted: Bool) -> String {
        precondition(SnapshotID.isWellFormed(id), "payload name from an unchecked id")
        return "\(id).\(engine.payloadExtension)\(encrypted ? ".age" : "")"
    }

    /// The id a manifest object's name carries, when it is one.
    public static func id(ofManifest name: String) -> String? {
        guard name.hasSuffix(manifestSuffix) else { return nil }
        let id = String(name.dropLast(manifestSuffix.count))
        return SnapshotID.isWellFormed(id) ? id : nil
    }

    /// The id a payload object's name carries, when it is one of the payload names above.
    public static func id(ofPayload name: String) -> String? {
        guard let dot = name.firstIndex(of: ".") else { return nil }
        let id = String(name[..<dot])
        guard SnapshotID.isWellFormed(id) else { return nil }
        let known = EngineKind.allCases.flatMap { [payload(id: id, engine: $0, encrypted: false), payload(id: id, engine: $0, encrypted: true)] }
        return known.contains(name) ? id : nil
    }

    /// A flat name of safe characters: letters, digits, `.`, `_`, `-`; not `.` or `..`; short.
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 128, name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }

    /// Throws unless `isValid`: the last line of defence before a name reaches a backend.
    public static func check(_ name: String) throws {
        guard isValid(name) else {
            throw MigsnapError.failed("Refusing the store object name '\(UserText.line(name))': not a name migsnap makes.")
        }
    }
}

extension EngineKind {
    /// The stored file's extension: a gzip of the SQLite file, or pg_dump's custom format.
    public var payloadExtension: String {
        switch self {
        case .sqlite: return "sqlite.gz"
        case .postgresql: return "pgdump"
        }
    }

    /// Whether the engine writes its payload front to back and never goes back, so that the store
    /// may send it while it is written. Blocked gzip does; pg_dump's custom format, written to a
    /// file, goes back to fill in its table of contents at the start.
    public var writesPayloadInOrder: Bool {
        self == .sqlite
    }
}

/// A private local directory for one run's temporary files. Removed when released.
public final class ScratchSpace {
    public let path: String
    private let onRelease: () -> Void

    public init(path: String, onRelease: @escaping () -> Void) {
        self.path = path
        self.onRelease = onRelease
    }

    /// A path for a new file in this space; nothing is created.
    public func file(_ name: String) -> String {
        (path as NSString).appendingPathComponent(name)
    }

    deinit {
        onRelease()
    }
}
