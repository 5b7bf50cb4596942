import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A store in a local directory: one file per object, created 0700 with a marker and a
/// `.gitignore`. It never follows a symbolic link inside the store, never changes the mode of a
/// directory it did not create, and refuses a non-empty directory that is not a migsnap store.
public final class DirectoryBackend: StoreBackend {
    public let directory: String
    static let marker = ".migsnap-store"
    static let lockName = ".lock"
    static let gitignore = ".gitignore"
    static let gitignoreText = "# migsnap snapshots hold database contents: never commit them.\n*\n"
    static let tempPrefix = ".tmp-"
    static let scratchPrefix = ".scratch-"

    public init(directory: String) {
        self.directory = directory
    }

    public var location: String { directory }
    public var orphanGracePeriod: TimeInterval { 0 }
    public var listingIsCheap: Bool { true }
    /// Local disk: a hot copy is read back at disk speed, by a hard link.
    public var keepsHotCopies: Bool { true }

    func path(_ name: String) -> String {
        (directory as NSString).appendingPathComponent(name)
    }

    // MARK: The store itself

    public func isInitialized() throws -> Bool {
        guard try directoryExists() else { return false }
        if isRegularFile(path(Self.marker)) { return true }
        // Stores made before the marker existed: our .gitignore, word for word.
        if let data = try readFile(path(Self.gitignore)), String(decoding: data, as: UTF8.self) == Self.gitignoreText {
            return true
        }
        return false
    }

    public func initialize() throws {
        if try directoryExists() {
            if try isInitialized() {
                if !isRegularFile(path(Self.marker)) { try writeMarker() }
                return
            }
            // A first run beside ours (two deploys at once) may be half way through making the store.
            let entries = try contents().filter { !isBeingInitialized($0) }
            guard entries.isEmpty else {
                throw MigsnapError.invalidInput(
                    "\(directory) is not empty and is not a migsnap store (it holds \(entries.count) entr\(entries.count == 1 ? "y" : "ies"), e.g. \(UserText.line(entries.sorted()[0]))).",
                    hint: "Point --store (or MIGSNAP_STORE) at a new or empty directory; migsnap creates it.")
            }
        } else {
            let parent = (directory as NSString).deletingLastPathComponent
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw MigsnapError.failed("Cannot create \(parent) for the snapshot store: \(error.localizedDescription)",
                                          hint: "Pass --store DIR or set MIGSNAP_STORE to a writable directory.")
            }
            if mkdir(directory, 0o700) != 0 {
                // Made since we looked (another first run, or someone else): checked like any existing directory.
                guard errno == EEXIST else { throw FileSystem.osError("create the snapshot store \(directory)") }
                guard try directoryExists() else {
                    throw MigsnapError.invalidInput("The snapshot store \(directory) is a link to nothing.",
                                                    hint: "Point --store (or MIGSNAP_STORE) at a directory.")
                }
                return try initialize()
            }
            // mkdir honours the umask; the store is 0700 whatever it is, and this is our directory.
            chmod(directory, 0o700)
        }
        try FileSystem.writeAtomically(Data(Self.gitignoreText.utf8), to: path(Self.gitignore), mode: 0o600)
        try writeMarker()
    }

    /// What another run that is making the store writes first, seen before its marker is there:
    /// the temporary files of its `writeAtomically` of the marker and the `.gitignore`, or our
    /// `.gitignore`, word for word (someone else's is foreign), or the marker itself.
    private func isBeingInitialized(_ entry: String) -> Bool {
        if entry == Self.marker { return isRegularFile(path(entry)) }
        if entry == Self.gitignore {
            // A link or anything unreadable is not ours.
            return (try? readFile(path(entry))).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) == Self.gitignoreText } ?? false
        }
        guard entry.hasPrefix(Self.tempPrefix) else { return false }
        let rest = entry.dropFirst(Self.tempPrefix.count)
        return [Self.marker, Self.gitignore].contains { name in
            rest.count == 9 + name.count && rest.hasSuffix("-" + name)
        }
    }

    private func writeMarker() throws {
        try FileSystem.writeAtomically(Data("migsnap store, format 1\n".utf8), to: path(Self.marker), mode: 0o600)
    }

    private func directoryExists() throws -> Bool {
        var st = stat()
        guard stat(directory, &st) == 0 else {
            if errno == ENOENT { return false }
            throw FileSystem.osError("read the snapshot store \(directory)")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw MigsnapError.invalidInput("The snapshot store \(directory) is not a directory.",
                                            hint: "Point --store (or MIGSNAP_STORE) at a directory.")
        }
        return true
    }

    private func contents() throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigsnapError.failed("Cannot read the snapshot store \(directory): \(error.localizedDescription)")
        }
    }

    // MARK: Objects

    public func list() throws -> [StoredObject] {
        try list(where: { _ in true }).sorted { $0.name < $1.name }
    }

    public func list(where include: (String) -> Bool) throws -> [StoredObject] {
        guard try directoryExists() else { return [] }
        guard let dir = opendir(directory) else { throw FileSystem.osError("read the snapshot store \(directory)") }
        defer { closedir(dir) }
        var objects: [StoredObject] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw FileSystem.osError("read the snapshot store \(directory)") }
                return objects
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !name.hasPrefix("."), ObjectName.isValid(name), include(name) else { continue }
            var st = stat()
            // Not following a symbolic link: a link is not an object of the store, whatever it points
            // to. Relative to the open directory: 10,000 manifests, 10,000 short lookups.
            guard fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            objects.append(StoredObject(name: name, size: Int64(st.st_size), modified: Date(timeIntervalSince1970: mtime),
                                        version: Self.version(st)))
        }
    }

    public func read(_ name: String) throws -> Data? {
        try ObjectName.check(name)
        return try readFile(path(name))
    }

    /// Reads a regular file without following a symbolic link; nil when it is not there.
    private func readFile(_ file: String) throws -> Data? {
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            if errno == ELOOP {
                throw MigsnapError.failed("\(file) is a symbolic link; migsnap does not follow links inside its store.",
                                          hint: "Remove the link.")
            }
            throw FileSystem.osError("read \(file)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw MigsnapError.failed("\(file) is not a regular file.", hint: "Move it out of the store.")
        }
        // Read in place into a buffer of the file's size (the index is megabytes), one byte more
        // to see its end; a file that grew meanwhile is read to its end all the same.
        var data = Data(count: Int(st.st_size) + 1)
        var done = 0
        while true {
            if done == data.count { data.count += data.count }
            let n = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystem.osError("read \(file)")
            }
            if n == 0 { break }
            done += n
        }
        data.count = done
        return data
    }

    private func isRegularFile(_ file: String) -> Bool {
        var st = stat()
        return lstat(file, &st) == 0 && st.st_mode & S_IFMT == S_IFREG
    }

    @discardableResult
    public func write(_ name: String, data: Data) throws -> String {
        try ObjectName.check(name)
        try FileSystem.writeAtomically(data, to: path(name), mode: 0o600)
        var st = stat()
        return lstat(path(name), &st) == 0 ? Self.version(st) : ""
    }

    /// A file's version: a rewrite (a new file renamed into place) changes its inode.
    private static func version(_ st: stat) -> String {
        "\(st.st_ino)-\(st.st_size)-\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }

    public func upload(file source: String, as name: String, progress: ((Int64) -> Void)?) throws {
        try ObjectName.check(name)
        chmod(source, 0o600)
        try FileSystem.syncFile(source)
        // The scratch space is inside the store, so this is a rename on one file system.
        try FileSystem.rename(source, to: path(name))
        progress?(FileSystem.fileSize(path(name)) ?? 0)
    }

    public func fetch(_ name: String, into scratch: ScratchSpace, progress: ((Int64) -> Void)?) throws -> FetchedObject {
        try ObjectName.check(name)
        let source = path(name)
        guard isRegularFile(source) else {
            throw MigsnapError.verificationFailed("The store has no file \(name) (missing, or not a regular file).")
        }
        let destination = scratch.file(name)
        // A hard link: no copy, and a concurrent prune cannot take the bytes away mid-read.
        if link(source, destination) != 0 {
            if errno == ENOENT {
                throw MigsnapError.verificationFailed("The store has no file \(name).")
            }
            throw FileSystem.osError("link \(source) into the scratch space")
        }
        progress?(FileSystem.fileSize(destination) ?? 0)
        return FetchedObject(path: destination)
    }

    public func readRange(_ name: String, offset: Int64, length: Int64) throws -> Data {
        try ObjectName.check(name)
        let file = path(name)
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystem.osError("read \(file)") }
        defer { close(fd) }
        var data = Data(count: Int(max(0, length)))
        var done = 0
        while done < data.count {
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystem.osError("read \(file)")
            }
            if n == 0 { break }
            done += n
        }
        return data.prefix(done)
    }

    public func delete(_ name: String) throws {
        try ObjectName.check(name)
        // unlink removes a link itself, never what it points to.
        try FileSystem.remove(path(name))
    }

    // MARK: Scratch space, lock, debris

    public func makeScratch() throws -> ScratchSpace {
        try initialize()
        let dir = path(Self.scratchPrefix + UUID().uuidString.lowercased())
        guard mkdir(dir, 0o700) == 0 else { throw FileSystem.osError("create a scratch directory in \(directory)") }
        let owner = try OwnerMark(directory: dir)
        return ScratchSpace(path: dir) {
            FileSystem.removeTree(dir)
            withExtendedLifetime(owner) {}
        }
    }

    public func lock(purpose: String, wait: TimeInterval) throws -> StoreLock {
        try initialize()
        return try FileLock(path: path(Self.lockName), purpose: purpose, wait: wait)
    }

    public func cleanBackendDebris() throws -> [String] {
        guard try directoryExists() else { return [] }
        var removed: [String] = []
        for name in try contents() {
            let full = path(name)
            if name.hasPrefix(Self.scratchPrefix) {
                // A scratch directory is debris only once its owner is gone (its mark is unlocked).
                guard OwnerMark.isAbandoned(directory: full) else { continue }
                FileSystem.removeTree(full)
                removed.append(name)
            } else if name.hasPrefix(Self.tempPrefix) {
                // Left by an atomic write of a run that was killed; every writer holds the lock we hold.
                try FileSystem.remove(full)
                removed.append(name)
            }
        }
        return removed
    }
}

/// A file held with flock for as long as a run uses its directory: a run that finds the lock free
/// knows the owner is dead. The kernel releases it with the process, so it never goes stale.
final class OwnerMark {
    static let name = ".owner"
    private let fd: Int32

    init(directory: String) throws {
        let file = (directory as NSString).appendingPathComponent(Self.name)
        fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileSystem.osError("create \(file)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = FileSystem.osError("lock \(file)")
            close(fd)
            throw error
        }
    }

    deinit {
        close(fd)
    }

    /// Whether no live run holds the directory's mark (or it has none).
    static func isAbandoned(directory: String) -> Bool {
        let file = (directory as NSString).appendingPathComponent(name)
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            // Between mkdir and the mark a live run's directory has none yet: give it a minute.
            var st = stat()
            guard errno == ENOENT, lstat(directory, &st) == 0 else { return false }
            return Date().timeIntervalSince1970 - Double(st.st_mtim.tv_sec) > 60
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        flock(fd, LOCK_UN)
        return true
    }
}
