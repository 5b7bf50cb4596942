import Foundation
import MigsnapCore

/// A snapshot store in an S3 bucket: `s3://BUCKET/PREFIX`, each store object at `PREFIX/<name>`.
/// Objects appear whole when their PUT (or multipart completion) succeeds, so every write is atomic.
public final class S3Backend: StoreBackend {
    public let location: String
    public let s3: S3Location
    public let client: S3Client
    /// A stalled holder's lease can run out while its upload goes on: debris younger than this is
    /// left alone (15 minutes).
    public let orphanGracePeriod: TimeInterval
    /// A thousand keys per request: listings rely on the store's index instead.
    public var listingIsCheap: Bool { false }

    /// Files larger than one part go up as multipart uploads, `partConcurrency` parts at a time,
    /// sent while the file is still being written (`beginUpload`).
    let partSize: Int64
    let partConcurrency: Int
    let lease: S3LeaseTiming

    static let markerName = ".migsnap-store"
    static let lockName = ".lock"
    static let scratchPrefix = "migsnap-scratch-"
    private static let scratchLockName = ".in-use"

    /// The store at `url` (`s3://BUCKET/PREFIX`), with the endpoint, region and credentials the AWS
    /// way from `environment` (see `S3Configuration.fromEnvironment`).
    public convenience init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let location = try S3Location(url: url)
        try self.init(location: location, configuration: S3Configuration.fromEnvironment(environment),
                      trace: S3RequestTrace.fromEnvironment(environment, keyPrefix: location.keyPrefix))
    }

    public convenience init(location: S3Location, configuration: S3Configuration, trace: S3RequestTrace? = nil) {
        self.init(location: location, client: S3Client(configuration: configuration, trace: trace))
    }

    /// The knobs are for tests: small parts, a short lease.
    init(location: S3Location, client: S3Client, partSize: Int64 = 8 << 20, partConcurrency: Int = 4,
         lease: S3LeaseTiming = S3LeaseTiming(), orphanGracePeriod: TimeInterval = 15 * 60) {
        self.orphanGracePeriod = orphanGracePeriod
        self.s3 = location
        self.location = location.description
        self.client = client
        self.partSize = partSize
        self.partConcurrency = partConcurrency
        self.lease = lease
    }

    // MARK: StoreBackend

    /// Once the marker is seen, this run does not ask again: every command checks several times,
    /// and each check is a round trip. migsnap never removes a store's marker.
    private let markerLock = NSLock()
    private var markerSeen = false

    public func isInitialized() throws -> Bool {
        if markerLock.withLock({ markerSeen }) { return true }
        let seen = try client.getObject(bucket: s3.bucket, key: s3.key(Self.markerName)) != nil
        if seen { markerLock.withLock { markerSeen = true } }
        return seen
    }

    public func initialize() throws {
        if try isInitialized() { return }
        let objects = try client.listObjects(bucket: s3.bucket, prefix: s3.keyPrefix)
        // A first run beside ours (two deploys at once) wrote the marker between our read and this listing.
        if objects.contains(where: { $0.key == s3.key(Self.markerName) }) {
            markerLock.withLock { markerSeen = true }
            return
        }
        if let other = objects.first {
            throw MigsnapError.invalidInput(
                "\(location) holds other objects (\(UserText.line(other.key))) and is not a migsnap store.",
                hint: "Choose an empty prefix, e.g. \(location.hasSuffix("/") ? location : location + "/")migsnap.")
        }
        let marker = Data("{\"migsnap_store\": 1, \"created_at\": \"\(RFC3339.string(from: Date()))\"}\n".utf8)
        // Created only if absent: a concurrent first run's marker is as good as ours.
        try client.putObject(bucket: s3.bucket, key: s3.key(Self.markerName), data: marker, ifNoneMatch: true)
        markerLock.withLock { markerSeen = true }
    }

    public func list() throws -> [StoredObject] {
        let keyPrefix = s3.keyPrefix
        return try client.listObjects(bucket: s3.bucket, prefix: keyPrefix).compactMap { object in
            let name = String(object.key.dropFirst(keyPrefix.count))
            guard ObjectName.isValid(name), name != Self.markerName, name != Self.lockName else { return nil }
            return StoredObject(name: name, size: object.size, modified: object.modified, version: object.etag)
        }.sorted { $0.name < $1.name }
    }

    public func read(_ name: String) throws -> Data? {
        try ObjectName.check(name)
        return try client.getObject(bucket: s3.bucket, key: s3.key(name))?.body
    }

    @discardableResult
    public func write(_ name: String, data: Data) throws -> String {
        try ObjectName.check(name)
        // The ETag of the answer is the one a listing shows.
        return try client.send(S3Client.S3Request(method: "PUT", bucket: s3.bucket, key: s3.key(name), body: .data(data))).etag ?? ""
    }

    public func upload(file path: String, as name: String, progress: ((Int64) -> Void)?) throws {
        guard let size = FileSystem.fileSize(path) else { throw FileSystem.osError("read \(path)") }
        try beginUpload(growing: path, as: name, progress: progress).finish(size: size)
    }

    public func beginUpload(growing path: String, as name: String, progress: ((Int64) -> Void)?) throws -> GrowingUpload {
        try ObjectName.check(name)
        return S3MultipartUpload(client: client, bucket: s3.bucket, key: s3.key(name), file: path, partSize: partSize,
                                 concurrency: partConcurrency, progress: progress)
    }

    public func fetch(_ name: String, into scratch: ScratchSpace, progress: ((Int64) -> Void)?) throws -> FetchedObject {
        try ObjectName.check(name)
        let path = scratch.file(name)
        guard let sha256 = try client.download(bucket: s3.bucket, key: s3.key(name), into: path, progress: progress) else {
            throw MigsnapError.verificationFailed("The store object \(name) is missing from \(location).")
        }
        // An empty object sends no body, so no file was made for it.
        if !FileManager.default.fileExists(atPath: path) {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw FileSystem.osError("create \(path)") }
            close(fd)
        }
        return FetchedObject(path: path, sha256: sha256)
    }

    /// The end of an object that arrives first: blocked gzip's index of a 40 GiB database fits.
    static let arrivingTail: Int64 = 1 << 20

    public func fetchArriving(_ name: String, size: Int64, into scratch: ScratchSpace) throws -> ArrivingFile {
        try ObjectName.check(name)
        // A small object gains nothing from arriving in two pieces.
        guard size > 4 * Self.arrivingTail else {
            let fetched = try fetch(name, into: scratch, progress: nil)
            return ArrivingFile(complete: fetched.path, size: FileSystem.fileSize(fetched.path) ?? 0)
        }
        let path = scratch.file(name)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileSystem.osError("create \(path)") }
        close(fd)
        let file = ArrivingFile(path: path, size: size)
        let tail = size - Self.arrivingTail
        let (client, bucket, key, location) = (client, s3.bucket, s3.key(name), location)
        Thread {
            do {
                func get(_ offset: Int64, _ length: Int64, progress: ((Int64) -> Void)?) throws {
                    guard let got = try client.download(bucket: bucket, key: key, offset: offset, length: length, into: path, progress: progress) else {
                        throw MigsnapError.verificationFailed("The store object \(name) is missing from \(location).")
                    }
                    guard got.objectSize == size, got.count == length else {
                        throw MigsnapError.verificationFailed(
                            "The store object \(name) is \(got.objectSize) bytes, the manifest says \(size) (truncated or replaced).")
                    }
                }
                try get(tail, size - tail, progress: nil)
                file.arrived(back: tail)
                try get(0, tail) { done in file.arrived(front: done) }
                file.arrived(front: tail)
            } catch let error as MigsnapError {
                file.failed(error)
            } catch {
                file.failed(.failed("Fetching \(name) from \(location) failed: \(error)"))
            }
        }.start()
        return file
    }

    public func readRange(_ name: String, offset: Int64, length: Int64) throws -> Data {
        try ObjectName.check(name)
        guard let data = try client.getRange(bucket: s3.bucket, key: s3.key(name), offset: offset, length: length) else {
            throw MigsnapError.failed("The store object \(name) is missing from \(location).")
        }
        return data
    }

    public func delete(_ name: String) throws {
        try ObjectName.check(name)
        try client.deleteObject(bucket: s3.bucket, key: s3.key(name))
    }

    public func makeScratch() throws -> ScratchSpace {
        let base = FileManager.default.temporaryDirectory.path
        let path = (base as NSString).appendingPathComponent(Self.scratchPrefix + UUID().uuidString.lowercased())
        guard mkdir(path, 0o700) == 0 else { throw FileSystem.osError("create the scratch directory \(path)") }
        let fd = open((path as NSString).appendingPathComponent(Self.scratchLockName), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = FileSystem.osError("lock the scratch directory \(path)")
            if fd >= 0 { close(fd) }
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return ScratchSpace(path: path) {
            try? FileManager.default.removeItem(atPath: path)
            close(fd)
        }
    }

    public func lock(purpose: String, wait: TimeInterval) throws -> StoreLock {
        try S3StoreLock.acquire(client: client, bucket: s3.bucket, key: s3.key(Self.lockName), location: location,
                                purpose: purpose, wait: wait, timing: lease)
    }

    public func cleanBackendDebris() throws -> [String] {
        var removed = Self.removeDeadScratchDirectories(in: FileManager.default.temporaryDirectory.path, olderThan: orphanGracePeriod)
        let (uploads, serverDate) = try client.listMultipartUploads(bucket: s3.bucket, prefix: s3.keyPrefix)
        let now = serverDate ?? Date()
        for upload in uploads where upload.initiated.map({ now.timeIntervalSince($0) >= orphanGracePeriod }) ?? false {
            try client.abortMultipartUpload(bucket: s3.bucket, key: upload.key, uploadID: upload.uploadID)
            removed.append("incomplete upload of s3://\(s3.bucket)/\(upload.key)")
        }
        return removed
    }

    /// Scratch directories whose run is gone: their lock file can be locked (a live run holds it),
    /// or, made by a run killed before it could lock, they are older than `grace`.
    static func removeDeadScratchDirectories(in base: String, olderThan grace: TimeInterval) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return [] }
        var removed: [String] = []
        for entry in entries.sorted() where entry.hasPrefix(scratchPrefix) {
            let path = (base as NSString).appendingPathComponent(entry)
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == getuid() else { continue }
            let fd = open((path as NSString).appendingPathComponent(scratchLockName), O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            let dead: Bool
            if fd >= 0 {
                dead = flock(fd, LOCK_EX | LOCK_NB) == 0
            } else {
                dead = Date().timeIntervalSince1970 - Double(st.st_mtim.tv_sec) > grace
            }
            if dead, (try? FileManager.default.removeItem(atPath: path)) != nil {
                removed.append("scratch directory \(path)")
            }
            if fd >= 0 { close(fd) }
        }
        return removed
    }
}
