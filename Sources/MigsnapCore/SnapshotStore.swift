import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The snapshots of one store: manifests beside payloads on a `StoreBackend` (a directory or a
/// bucket), one lock, every write atomic. A snapshot exists once its manifest exists; the manifest
/// is written last and removed first. No path or object name ever comes from a manifest's
/// contents: names are derived from ids, and a manifest whose id differs from its name is damaged.
public final class SnapshotStore {
    public let backend: StoreBackend
    /// Recipients to encrypt new payloads to, and where to find the identity to read them.
    public let encryption: StoreEncryption
    /// Whether this run has changed the store since it took the lock, and the index as it changed it.
    private var indexMarked = false
    private var pendingIndex: StoreIndex?
    /// What this run knows of the store while it holds the lock; nil when it does not hold it.
    private var held: HeldStore?

    /// While this run holds the lock nobody else changes the store, so what it read or wrote stands
    /// and is not asked for again: on a bucket each question is a round trip.
    private struct HeldStore {
        /// Small objects (the index, the guards) as last read or written; nil: known to be absent.
        var smallObjects: [String: Data?] = [:]
        /// Debris is cleaned once per hold; that cleanup's listing gives the newest id in the store,
        /// which each id this run issues then raises.
        var debrisCleaned = false
        var newestID: String?
    }

    public init(backend: StoreBackend, encryption: StoreEncryption = StoreEncryption()) {
        self.backend = backend
        self.encryption = encryption
    }

    public convenience init(directory: String) {
        self.init(backend: DirectoryBackend(directory: directory))
    }

    /// Where the store is, for messages (never a secret).
    public var location: String { backend.location }

    /// Where a snapshot's payload is, for a person: a path or an `s3://` address.
    public func payloadLocation(_ manifest: Manifest) -> String {
        backend is DirectoryBackend ? (location as NSString).appendingPathComponent(manifest.file) : "\(location)/\(manifest.file)"
    }

    public var exists: Bool {
        (try? backend.isInitialized()) ?? false
    }

    /// Creates the store if it is not there (a directory: 0700, marked, with a `.gitignore`).
    public func create() throws {
        try backend.initialize()
    }

    /// Takes the store lock (creating the store). Held until the returned lock is released; the
    /// listing index is brought up to date on release.
    public func lock(purpose: String, wait: TimeInterval = 5) throws -> StoreLock {
        try create()
        let lock = HeldLock(store: self, inner: try backend.lock(purpose: purpose, wait: wait))
        held = HeldStore()
        return lock
    }

    private final class HeldLock: StoreLock {
        let store: SnapshotStore
        var inner: StoreLock?

        init(store: SnapshotStore, inner: StoreLock) {
            self.store = store
            self.inner = inner
        }

        func release() {
            guard let inner else { return }
            // A stale or missing index only makes the next listing slower; it never decides anything.
            try? store.saveIndex()
            store.held = nil
            inner.release()
            self.inner = nil
        }

        deinit { release() }
    }

    // MARK: Reading

    /// Every complete snapshot, oldest first. Damaged manifests are left out (see `scan`), so that
    /// one bad file never stands between the user and the other snapshots.
    public func manifests() throws -> [Manifest] {
        try scan().manifests
    }

    /// The readable manifests, oldest first, and the manifests that cannot be used, with why.
    ///
    /// Where listing the store is cheap (a directory), every listing compares the manifests with
    /// the index and reads what changed. Where it is not (a bucket: a thousand keys per request),
    /// an index that the last writer left complete is taken as it stands, a few requests in all;
    /// `thorough` lists every object anyway (verify does). An index entry that would not pass as
    /// a manifest of that name is never used: the manifest itself is read instead.
    public func scan(thorough: Bool = false) throws -> StoreScan {
        guard try backend.isInitialized() else { return StoreScan(manifests: [], damaged: [], entries: [:]) }
        let indexFile = loadIndexFile()
        // A run that changed the store under the lock lists it as it left it: its own index.
        let trusted = held != nil && indexMarked ? pendingIndex : indexFile.flatMap { $0.complete ? $0 : nil }
        if !thorough, !backend.listingIsCheap, let trusted, let scan = scan(trusting: trusted) {
            return scan
        }
        let candidates = try backend.list(where: { ObjectName.id(ofManifest: $0) != nil })
        let index = indexFile?.entries ?? [:]
        var manifests: [Manifest] = []
        var damaged: [(file: String, problem: String)] = []
        var entries: [String: StoreIndex.Entry] = [:]
        let vouched = candidates.map { object -> Manifest? in
            guard !object.version.isEmpty, let cached = index[object.name], cached.version == object.version,
                  Self.isUsable(cached.manifest, name: object.name) else { return nil }
            return cached.manifest
        }
        // What the index does not vouch for is read, many at a time: one round trip each on a bucket.
        let fresh = readAll(zip(candidates, vouched).compactMap { $1 == nil ? $0.name : nil })
        manifests.reserveCapacity(candidates.count)
        // The entries are what a new index is made of; a listing that writes none skips them.
        if thorough { entries.reserveCapacity(candidates.count) }
        for (object, cached) in zip(candidates, vouched) {
            let where_ = payloadLocationOfName(object.name)
            do {
                let manifest: Manifest
                if let cached {
                    manifest = cached
                } else {
                    guard let data = try fresh[object.name]?.get() else { continue }
                    manifest = try decodeManifest(data, at: where_)
                    try Self.check(manifest, id: ObjectName.id(ofManifest: object.name)!, at: where_)
                }
                manifests.append(manifest)
                if thorough { entries[object.name] = StoreIndex.Entry(version: object.version, manifest: manifest) }
            } catch let error as MigsnapError {
                damaged.append((where_, error.message))
            }
        }
        manifests.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        damaged.sort { $0.file < $1.file }
        return StoreScan(manifests: manifests, damaged: damaged, entries: entries)
    }

    /// The index's manifests as they stand, or nil when one of them would not pass as the manifest
    /// its name says (the index was damaged or edited; the objects are listed instead).
    private func scan(trusting index: StoreIndex) -> StoreScan? {
        var manifests: [Manifest] = []
        manifests.reserveCapacity(index.entries.count)
        for (name, entry) in index.entries {
            guard Self.isUsable(entry.manifest, name: name) else { return nil }
            manifests.append(entry.manifest)
        }
        manifests.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        return StoreScan(manifests: manifests, damaged: [], entries: [:])
    }

    /// Whether a manifest passes `check` as the manifest object `name`.
    private static func isUsable(_ manifest: Manifest, name: String) -> Bool {
        guard let id = ObjectName.id(ofManifest: name) else { return false }
        return (try? check(manifest, id: id, at: name)) != nil
    }

    /// Reads small objects, up to 16 at a time; each result is the bytes (nil: gone meanwhile) or the error.
    private func readAll(_ names: [String]) -> [String: Result<Data?, MigsnapError>] {
        guard !names.isEmpty else { return [:] }
        let results = ReadResults(count: names.count)
        nonisolated(unsafe) let backend = self.backend
        DispatchQueue.concurrentPerform(iterations: min(16, names.count)) { worker in
            for i in stride(from: worker, to: names.count, by: 16) {
                do {
                    results.set(i, .success(try backend.read(names[i])))
                } catch let error as MigsnapError {
                    results.set(i, .failure(error))
                } catch {
                    results.set(i, .failure(.failed("Cannot read \(names[i]): \(error)")))
                }
            }
        }
        // One manifest that cannot be read is reported as damaged; a store that cannot be read at
        // all (credentials, network) has already failed in the listing.
        return Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, results.get($0)) })
    }

    private final class ReadResults: @unchecked Sendable {
        private let lock = NSLock()
        private var results: [Result<Data?, MigsnapError>]
        init(count: Int) { results = Array(repeating: .success(nil), count: count) }
        func set(_ i: Int, _ r: Result<Data?, MigsnapError>) { lock.lock(); results[i] = r; lock.unlock() }
        func get(_ i: Int) -> Result<Data?, MigsnapError> { lock.lock(); defer { lock.unlock() }; return results[i] }
    }

    private func payloadLocationOfName(_ name: String) -> String {
        backend is DirectoryBackend ? (location as NSString).appendingPathComponent(name) : "\(location)/\(name)"
    }

    private func decodeManifest(_ data: Data, at where_: String) throws -> Manifest {
        // A listing without an index reads every manifest: those this migsnap wrote are read by
        // hand; the others (older, edited, damaged) by JSONDecoder, which also says what is wrong.
        if let manifest = Manifest(asWritten: data) { return manifest }
        do {
            return try JSON.decoder().decode(Manifest.self, from: data)
        } catch {
            throw MigsnapError.verificationFailed("The manifest \(where_) is damaged (\(UserText.line(describe(error), limit: 160)))",
                                                  hint: "Move it out of the store; its snapshot can still be restored by hand.")
        }
    }

    private func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "no \(key.stringValue)"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not a manifest" : "bad \(path)"
        default: return "not JSON"
        }
    }

    /// What makes a readable manifest usable: it names itself, its payload is the one its id and
    /// engine name, and this migsnap understands its format.
    static func check(_ manifest: Manifest, id: String, at where_: String) throws {
        guard manifest.id == id else {
            throw MigsnapError.verificationFailed(
                "The manifest \(where_) is damaged: its id '\(UserText.line(manifest.id))' is not its file name (a copied or edited manifest).",
                hint: "Move it out of the store.")
        }
        guard Manifest.supportedFormatVersions.contains(manifest.formatVersion) else {
            throw MigsnapError.verificationFailed(
                "The manifest \(where_) has format_version \(manifest.formatVersion), which this migsnap does not know (it reads \(Manifest.supportedFormatVersions.map(String.init).joined(separator: ", "))).",
                hint: "Use a newer migsnap for this store.")
        }
        let expected = ObjectName.payload(id: id, engine: manifest.engine, encrypted: manifest.encryption != nil)
        guard manifest.file == expected else {
            throw MigsnapError.verificationFailed(
                "The manifest \(where_) is damaged: its file '\(UserText.line(manifest.file))' is not \(expected).",
                hint: "Move it out of the store.")
        }
    }

    /// The snapshot named by a full id or a unique prefix of one.
    public func resolve(_ idOrPrefix: String) throws -> Manifest {
        guard SnapshotID.isWellFormedPrefix(idOrPrefix) else {
            throw MigsnapError.invalidInput("'\(UserText.line(idOrPrefix))' is not a snapshot id.",
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

    // MARK: The listing index

    /// The manifests as the last writer saw them, keyed by object name with the object's version,
    /// and whether that writer finished: a listing reads only the manifests that changed since,
    /// instead of one read per snapshot.
    private func loadIndexFile() -> StoreIndex? {
        guard let data = try? readSmallObject(ObjectName.index) else { return nil }
        return StoreIndex(decoding: data)
    }

    /// A small object's bytes (nil: there is none), asked of the backend once per lock held.
    func readSmallObject(_ name: String) throws -> Data? {
        if let known = held?.smallObjects[name] { return known }
        let data = try backend.read(name)
        held?.smallObjects[name] = .some(data)
        return data
    }

    /// Writes a small object, remembering its bytes while the lock is held.
    func writeSmallObject(_ name: String, data: Data) throws {
        // A write that failed may or may not have landed.
        held?.smallObjects[name] = nil
        try backend.write(name, data: data)
        held?.smallObjects[name] = .some(data)
    }

    /// Before this run's first change: the index is marked incomplete (so that a reader of a bucket
    /// lists the objects until this run finishes), and kept up to date in memory as the run writes.
    private func noteChange(_ name: String, _ manifest: Manifest?, version: String = "") throws {
        if !indexMarked {
            indexMarked = true
            if var current = loadIndexFile() {
                // Carried forward only if a reader could take it as it stands: an entry someone
                // edited is dropped by a rebuild here, or every later listing would list the objects.
                pendingIndex = current.complete && scan(trusting: current) != nil ? current : nil
                if current.complete {
                    current.complete = false
                    try writeSmallObject(ObjectName.index, data: current.encoded())
                }
            }
        }
        if let manifest {
            pendingIndex?.entries[name] = StoreIndex.Entry(version: version, manifest: manifest)
        } else {
            pendingIndex?.entries[name] = nil
        }
    }

    /// Brings the index up to date and marks it complete. Called with the lock held, on its release.
    public func saveIndex() throws {
        guard try backend.isInitialized() else { return }
        defer {
            indexMarked = false
            pendingIndex = nil
        }
        var fresh: StoreIndex
        if let pendingIndex, !backend.listingIsCheap {
            fresh = pendingIndex
        } else {
            if !indexMarked, let current = loadIndexFile(), current.complete, !backend.listingIsCheap { return }
            fresh = StoreIndex(entries: try scan(thorough: true).entries)
        }
        fresh.complete = true
        let bytes = fresh.encoded()
        if (try? readSmallObject(ObjectName.index)) == bytes { return }
        try writeSmallObject(ObjectName.index, data: bytes)
    }

    // MARK: Writing (callers hold the lock)

    /// A fresh id, later than every id in the store.
    public func newID(now: Date = Date()) throws -> String {
        let newest = try held?.debrisCleaned == true ? held?.newestID : Self.newestID(in: backend.list())
        let id = SnapshotID.make(at: now, after: newest)
        if held?.debrisCleaned == true { held?.newestID = id }
        return id
    }

    /// The newest id that a manifest or a payload in `objects` carries.
    private static func newestID(in objects: [StoredObject]) -> String? {
        objects.compactMap { ObjectName.id(ofManifest: $0.name) ?? ObjectName.id(ofPayload: $0.name) }.max()
    }

    /// A private local directory for this run's temporary files (see `StoreBackend.makeScratch`).
    public func makeScratch() throws -> ScratchSpace {
        try backend.makeScratch()
    }

    /// Stores a new payload while `make` writes it in `scratch`, then writes the manifest, last.
    /// `make` gets the file to create and returns the draft manifest. Where the engine writes its
    /// payload front to back and the store keeps it as written, it is hashed and sent while it is
    /// written (encrypted on the way, where the store encrypts). On any failure nothing is listed.
    public func commit(id: String, engine: EngineKind, scratch: ScratchSpace, progress: ProgressReporter = SilentProgress(),
                       writing make: (URL) throws -> Manifest) throws -> Manifest {
        let plain = scratch.file(ObjectName.payload(id: id, engine: engine, encrypted: false))
        let encrypted = !encryption.recipients.isEmpty
        let name = ObjectName.payload(id: id, engine: engine, encrypted: encrypted)
        try noteChange(ObjectName.manifest(id: id), nil)
        var draft: Manifest?
        let stored: (size: Int64, sha256: String)
        let url = URL(fileURLWithPath: plain)
        if !encrypted && engine.writesPayloadInOrder {
            stored = try store(plain, as: name, progress: progress) {
                draft = try make(url)
                progress.finish()
            }
        } else if !encrypted {
            draft = try make(url)
            progress.finish()
            stored = try store(plain, as: name, progress: progress) {}
        } else {
            let sealed = plain + ".age"
            let recipients = encryption.recipients
            stored = try store(sealed, as: name, progress: progress) {
                // Not synced here: the store makes durable what it keeps.
                if engine.writesPayloadInOrder {
                    // Encrypted while the engine writes it, and sent while it is encrypted.
                    let writing = SharedFlag(true)
                    let sealing = Background {
                        try GrowingFile.wait(for: plain, bytes: 0, while: writing)
                        try Age.encrypt(input: plain, output: sealed, recipients: recipients, fsync: false, waitFor: { offset, count in
                            try GrowingFile.wait(for: plain, bytes: offset + Int64(count), while: writing)
                        })
                    }
                    do {
                        draft = try make(url)
                    } catch {
                        writing.value = false
                        _ = try? sealing.wait()
                        throw error
                    }
                    progress.finish()
                    writing.value = false
                    try sealing.wait()
                } else {
                    draft = try make(url)
                    progress.finish()
                    let total = draft!.rawBytes
                    try Age.encrypt(input: plain, output: sealed, recipients: recipients, fsync: false, progress: { done in
                        progress.update(phase: "encrypt and store", done: done, total: total)
                    })
                }
                try FileSystem.remove(plain)
            }
        }
        var manifest = draft!
        if encrypted {
            manifest.encryption = PayloadEncryption(format: PayloadEncryption.ageV1, recipients: encryption.recipients.map(\.text))
        }
        manifest.file = name
        manifest.storedBytes = stored.size
        manifest.sha256 = stored.sha256
        try write(manifest)
        return manifest
    }

    /// Stores `file` as `name` while `write` appends to it (an empty `write`: the file is complete),
    /// hashing every byte once on the way. Returns the size and SHA-256 of what was stored. What is
    /// sent shows beside the writer's progress while it writes, then on its own.
    private func store(_ file: String, as name: String, progress: ProgressReporter,
                       while write: () throws -> Void) throws -> (size: Int64, sha256: String) {
        let sent = UploadProgress(progress)
        let upload = try backend.beginUpload(growing: file, as: name, progress: sent.report)
        let follower = PayloadFollower(path: file, upload: upload)
        do {
            try write()
        } catch {
            follower.abort()
            throw error
        }
        sent.fileIsComplete(size: FileSystem.fileSize(file))
        let stored = try follower.finish()
        progress.finish()
        return stored
    }

    /// Commits a payload that is already in its stored form (an encrypted payload being copied):
    /// checked against the manifest's size and SHA-256, stored, then the manifest.
    public func commit(stored file: String, manifest: Manifest, scratch: ScratchSpace,
                       progress: ProgressReporter = SilentProgress()) throws -> Manifest {
        try Self.verifyChecksum(manifest, file: file, location: file)
        try noteChange(ObjectName.manifest(id: manifest.id), nil)
        try backend.upload(file: file, as: manifest.file) { done in
            progress.update(phase: "upload", done: done, total: manifest.storedBytes)
        }
        progress.finish()
        try write(manifest)
        return manifest
    }

    /// Rewrites a manifest atomically (pin, unpin, tags).
    public func write(_ manifest: Manifest) throws {
        try noteChange(ObjectName.manifest(id: manifest.id), nil)
        let version = try backend.write(ObjectName.manifest(id: manifest.id), data: try JSON.encoder().encode(manifest))
        try noteChange(ObjectName.manifest(id: manifest.id), manifest, version: version)
    }

    /// Removes a snapshot: the manifest first, so a killed run never leaves a listed snapshot
    /// without its file; a payload without a manifest is debris the next run removes.
    public func remove(_ manifest: Manifest) throws {
        try noteChange(ObjectName.manifest(id: manifest.id), nil)
        try backend.delete(ObjectName.manifest(id: manifest.id))
        try backend.delete(ObjectName.payload(id: manifest.id, engine: manifest.engine, encrypted: manifest.encryption != nil))
        if manifest.hot != nil {
            try backend.delete(ObjectName.hot(id: manifest.id, engine: manifest.engine))
        }
    }

    /// Removes what killed runs left: the backend's own debris, payloads and hot copies whose
    /// manifest was never written (or was removed by a prune that did not finish), and hot copies
    /// their manifest does not record (a rebuild killed before its manifest). Call with the lock
    /// held; once per hold (no other run can leave debris while this one holds it).
    @discardableResult
    public func cleanDebris(now: Date = Date()) throws -> [String] {
        guard try backend.isInitialized(), held?.debrisCleaned != true else { return [] }
        var removed = try backend.cleanBackendDebris()
        let objects = try backend.list()
        if held != nil {
            held?.debrisCleaned = true
            held?.newestID = Self.newestID(in: objects)
        }
        let listed = Set(objects.compactMap { ObjectName.id(ofManifest: $0.name) })
        // Only a manifest that can be read says it has no hot copy: a damaged one is left with its files.
        let hotOfListed = objects.compactMap { ObjectName.id(ofHot: $0.name) }.filter(listed.contains)
        let recordingNoHot = hotOfListed.isEmpty ? [] : Set(try manifests().filter { $0.hot == nil }.map(\.id))
        for object in objects {
            let hot = ObjectName.id(ofHot: object.name)
            guard let id = ObjectName.id(ofPayload: object.name) ?? hot,
                  !listed.contains(id) || (hot != nil && recordingNoHot.contains(id)) else { continue }
            if let modified = object.modified, now.timeIntervalSince(modified) < backend.orphanGracePeriod { continue }
            try backend.delete(object.name)
            removed.append(object.name)
        }
        return removed
    }

    // MARK: Payloads for engines

    /// The snapshot's payload as a local file an engine can read, in `scratch`: fetched, checked
    /// against the manifest's size and SHA-256, and decrypted when it is encrypted.
    /// With `decrypt: false` an encrypted payload comes back as stored, checked but not decrypted.
    public func localPayload(_ manifest: Manifest, scratch: ScratchSpace, progress: ProgressReporter = SilentProgress(),
                             decrypt: Bool = true) throws -> URL {
        let object: FetchedObject
        do {
            object = try backend.fetch(manifest.file, into: scratch) { done in
                progress.update(phase: "fetch \(manifest.id)", done: done, total: manifest.storedBytes)
            }
        } catch let error as MigsnapError {
            if case .verificationFailed = error {
                throw MigsnapError.verificationFailed("Snapshot \(manifest.id): its file \(payloadLocation(manifest)) is missing.")
            }
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        progress.finish()
        let fetched = object.path
        try Self.verifyChecksum(manifest, file: fetched, location: payloadLocation(manifest), known: object.sha256) { done in
            progress.update(phase: "checksum \(manifest.id)", done: done, total: manifest.storedBytes)
        }
        progress.finish()
        guard manifest.encryption != nil, decrypt else { return URL(fileURLWithPath: fetched) }
        let identities = try encryption.identities()
        let plain = scratch.file(ObjectName.payload(id: manifest.id, engine: manifest.engine, encrypted: false))
        do {
            // Scratch, read back by the engine and dropped: no fsync.
            try Age.decrypt(input: fetched, output: plain, identities: identities, fsync: false, progress: { done in
                progress.update(phase: "decrypt \(manifest.id)", done: done, total: manifest.storedBytes)
            })
        } catch let error as MigsnapError {
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        progress.finish()
        try? FileSystem.remove(fetched)
        return URL(fileURLWithPath: plain)
    }

    /// The snapshot's payload for an engine that can start on it while it arrives (see
    /// `DatabaseEngine.stageRestore(arriving:)`): hashed as it arrives, and checked against the
    /// manifest's size and SHA-256 by `verify()`. An encrypted payload is decrypted as it arrives
    /// and handed over whole (a blocked file's index is at the end of the plaintext).
    public func arrivingPayload(_ manifest: Manifest, scratch: ScratchSpace, progress: ProgressReporter = SilentProgress()) throws -> ArrivingPayload {
        let identities = manifest.encryption == nil ? [] : try encryption.identities()
        let file: ArrivingFile
        do {
            file = try backend.fetchArriving(manifest.file, size: manifest.storedBytes, into: scratch)
        } catch let error as MigsnapError {
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        // The engine's progress is the phase; what has arrived shows beside it.
        file.observe { arrived in progress.update(alongside: "downloaded", done: arrived, total: manifest.storedBytes) }
        let digest = file.sha256InBackground()
        let location = payloadLocation(manifest)
        let check = {
            let sum: String
            do {
                sum = try digest()
            } catch let error as MigsnapError {
                throw error.prefixed("Snapshot \(manifest.id)")
            }
            try Self.verifyChecksum(manifest, file: file.path, location: location, known: sum)
        }
        guard manifest.encryption != nil else { return ArrivingPayload(file: file, check: check) }
        let plain = scratch.file(ObjectName.payload(id: manifest.id, engine: manifest.engine, encrypted: false))
        do {
            // Scratch, read back by the engine and dropped: no fsync.
            try Age.decrypt(input: file.path, output: plain, identities: identities, fsync: false, waitFor: { offset, count in
                try file.wait(offset: offset, length: Int64(count))
            })
        } catch let error as MigsnapError {
            // A damaged or cut-off download is what to report, where it is the cause.
            try check()
            throw error.prefixed("Snapshot \(manifest.id)")
        }
        return ArrivingPayload(file: ArrivingFile(complete: plain, size: FileSystem.fileSize(plain) ?? 0), check: check)
    }

    /// Checks a local copy of a payload against the manifest's size and SHA-256.
    /// `known` is the file's SHA-256 where it was computed as the file was written (a download).
    static func verifyChecksum(_ manifest: Manifest, file: String, location: String, known: String? = nil,
                               progress: ((Int64) -> Void)? = nil) throws {
        guard let size = FileSystem.fileSize(file) else {
            throw MigsnapError.verificationFailed("Snapshot \(manifest.id): its file \(location) is missing.")
        }
        guard size == manifest.storedBytes else {
            throw MigsnapError.verificationFailed(
                "Snapshot \(manifest.id): its file is \(size) bytes, the manifest says \(manifest.storedBytes) (truncated or replaced).")
        }
        let sum = try known ?? Hashing.sha256(ofFile: file, progress: progress)
        guard sum == manifest.sha256 else {
            throw MigsnapError.verificationFailed("Snapshot \(manifest.id): checksum mismatch, the file is corrupted.",
                                                  hint: "Restore another snapshot; `migsnap verify` checks them all.")
        }
    }
}

/// What a listing of the store found.
public struct StoreScan {
    public var manifests: [Manifest]
    public var damaged: [(file: String, problem: String)]
    /// What a new index holds: filled by a thorough scan only.
    var entries: [String: StoreIndex.Entry]
}

/// `index.json`: every manifest with the version of its object when it was read, and whether the
/// writer that made it finished. Written and read by hand (see `ListingJSON`): decoding 10,000
/// manifests with `JSONDecoder` took longer than the whole listing may. Anything else in its place
/// (format 1 of earlier versions, damage, an edit) reads as no index, which is then rebuilt.
struct StoreIndex: Equatable {
    static let currentFormat = 2
    struct Entry: Equatable {
        var version: String
        var manifest: Manifest
    }
    /// True once the writer that made it finished; a run that starts changing the store sets it false first.
    var complete = false
    var entries: [String: Entry]

    /// `{"format":2,"complete":…,"entries":[{"name":…,"version":…,"manifest":{…}},…]}`, by name.
    func encoded() -> Data {
        var w = JSONBytesWriter(pretty: false, capacity: entries.count * 600 + 64)
        w.open(.openBrace)
        w.key("format"); w.int(Self.currentFormat)
        w.key("complete"); w.bool(complete)
        w.key("entries")
        w.open(.openBracket)
        for (name, entry) in entries.sorted(by: { $0.key < $1.key }) {
            w.element()
            w.open(.openBrace)
            w.key("name"); w.string(name)
            w.key("version"); w.string(entry.version)
            w.key("manifest"); entry.manifest.write(to: &w)
            w.close(.closeBrace)
        }
        w.close(.closeBracket)
        w.close(.closeBrace)
        return Data(w.bytes)
    }

    init(complete: Bool = false, entries: [String: Entry]) {
        self.complete = complete
        self.entries = entries
    }

    /// The index `encoded()` wrote; nil for anything else.
    init?(decoding data: Data) {
        let decoded: StoreIndex? = data.withUnsafeBytes { raw in
            var r = JSONBytesReader(raw)
            do {
                try r.open(.openBrace)
                try r.key("format")
                guard try r.int(Int.self) == Self.currentFormat else { return nil }
                try r.key("complete")
                let complete = try r.bool()
                try r.key("entries")
                try r.open(.openBracket)
                var entries: [String: Entry] = [:]
                // An entry takes some 500 bytes: room for all of them at once, not a dozen regrowths.
                entries.reserveCapacity(data.count / 400)
                while try r.next(before: .closeBracket) {
                    try r.open(.openBrace)
                    try r.key("name"); let name = try r.string()
                    try r.key("version"); let version = try r.string()
                    try r.key("manifest"); let manifest = try Manifest(reading: &r)
                    try r.close(.closeBrace)
                    // Two entries for one object: not an index this migsnap wrote.
                    guard entries.updateValue(Entry(version: version, manifest: manifest), forKey: name) == nil else { return nil }
                }
                try r.close(.closeBrace)
                try r.end()
                return StoreIndex(complete: complete, entries: entries)
            } catch {
                return nil
            }
        }
        guard let decoded else { return nil }
        self = decoded
    }
}

/// Encryption of a store's payloads: the recipients new payloads are encrypted to, and the
/// identity file that decrypts them (read only when a payload must be decrypted).
public struct StoreEncryption: Sendable {
    public var recipients: [AgeRecipient]
    /// An `age-keygen` file, from MIGSNAP_AGE_IDENTITY.
    public var identityFile: String?

    public init(recipients: [AgeRecipient] = [], identityFile: String? = nil) {
        self.recipients = recipients
        self.identityFile = identityFile
    }

    func identities() throws -> [AgeIdentity] {
        guard let identityFile else {
            throw MigsnapError.invalidInput("The snapshot is encrypted and no identity is configured to decrypt it.",
                                            hint: "Set MIGSNAP_AGE_IDENTITY to the file age-keygen wrote (the key for one of the manifest's recipients).")
        }
        return try AgeIdentity.load(file: identityFile)
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

    /// `DDDDDDDD-DDDDDD-DDD`, checked byte by byte: it runs for every object of every listing.
    public static func isWellFormed(_ id: String) -> Bool {
        let utf8 = id.utf8
        return utf8.withContiguousStorageIfAvailable(isWellFormed) ?? isWellFormed(Array(utf8)[...].withUnsafeBufferPointer { $0 })
    }

    private static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count == 19 else { return false }
        for (i, c) in bytes.enumerated() {
            if i == 8 || i == 15 {
                if c != UInt8(ascii: "-") { return false }
            } else if c < UInt8(ascii: "0") || c > UInt8(ascii: "9") {
                return false
            }
        }
        return true
    }

    /// A prefix a user may type: digits and dashes only, so `/`, `..` and the like never reach the file system.
    public static func isWellFormedPrefix(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 19 && text.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "-") }
    }
}

extension Configuration {
    /// The store on `backend`, with the encryption this configuration asks for. A malformed
    /// recipient is an error now, before anything is written.
    public func snapshotStore(on backend: StoreBackend) throws -> SnapshotStore {
        let recipients = try ageRecipients.map(Age.parseRecipients) ?? []
        return SnapshotStore(backend: backend, encryption: StoreEncryption(recipients: recipients, identityFile: ageIdentityFile))
    }
}
