import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe file operations: what a backup tool's store is built from.
public enum FileSystem {
    /// Writes `data` to `path` atomically: a temporary file in the same directory, fsync,
    /// rename over the target, fsync the directory. A reader sees the old or the new file, never half.
    public static func writeAtomically(_ data: Data, to path: String, mode: mode_t = 0o600) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temp = (directory as NSString).appendingPathComponent(".tmp-\(UUID().uuidString.prefix(8))-\((path as NSString).lastPathComponent)")
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw osError("create \(temp)") }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        do {
            try data.withUnsafeBytes { try writeAll(fd, $0, path: path) }
            guard fsync(fd) == 0 else { throw osError("fsync \(path)") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        try rename(temp, to: path)
        ok = true
    }

    /// write(2) until all of `buffer` is written (short writes and EINTR retried); `path` names the
    /// file in the error.
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw osError("write \(path)")
            }
            offset += n
        }
    }

    /// rename(2) then fsync of the directory, so the new name survives a power cut.
    public static func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw osError("rename \(from) to \(to)") }
        try syncDirectory((to as NSString).deletingLastPathComponent)
    }

    /// fsync of a file written without it, before it is renamed into a place that must survive.
    public static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw osError("open \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw osError("fsync \(path)") }
    }

    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw osError("open directory \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw osError("fsync directory \(path)") }
    }

    /// Removes a file, then syncs its directory; a missing file is not an error.
    public static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw osError("remove \(path)") }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// Copies a file to a new path (created 0600, never over an existing file), then fsyncs it.
    public static func copyFile(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw osError("read \(source)") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw osError("create \(destination)") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw osError("read \(source)")
            }
            if n == 0 { break }
            var offset = 0
            while offset < n {
                let w = buffer.withUnsafeBytes { Glibc.write(output, $0.baseAddress! + offset, n - offset) }
                if w < 0 {
                    if errno == EINTR { continue }
                    throw osError("write \(destination)")
                }
                offset += w
            }
        }
        guard fsync(output) == 0 else { throw osError("fsync \(destination)") }
    }

    /// Removes a directory and what it holds; links inside are removed, never followed.
    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    public static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    /// The file's mode bits (permissions), or nil when it does not exist.
    public static func permissions(_ path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }

    /// A `MigsnapError.failed` naming the operation and the OS's reason (e.g. "No space left on device").
    public static func osError(_ what: String, code: Int32 = errno) -> MigsnapError {
        .failed("Could not \(what): \(String(cString: strerror(code))).",
                hint: code == ENOSPC ? "Free some disk space and try again; nothing was changed." : nil)
    }
}

/// An exclusive lock held by the kernel (flock): it dies with the process, so a killed run never
/// leaves a stale lock. The holder writes who it is into the file, for the refusal message. The
/// file is opened without following links and must be a regular file of ours with one name, so a
/// planted link cannot make migsnap write elsewhere; it is overwritten in place, never truncated.
public final class FileLock: StoreLock {
    private var fd: Int32
    public let path: String
    static let noteWidth = 256

    /// Tries for `wait` seconds, then throws `.refused` naming the holder.
    public init(path: String, purpose: String, wait: TimeInterval) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == ELOOP {
                throw MigsnapError.failed("The lock \(path) is a symbolic link; migsnap does not follow links inside its store.",
                                          hint: "Remove the link.")
            }
            throw FileSystem.osError("open the lock \(path)")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_nlink == 1, st.st_uid == geteuid() else {
            close(fd)
            throw MigsnapError.failed("The lock \(path) is not a plain file of this user's (a link, or another file).",
                                      hint: "Remove it; migsnap makes a new one.")
        }
        let deadline = Date().addingTimeInterval(wait)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let error = FileSystem.osError("lock \(path)")
                close(fd)
                throw error
            }
            if Date() >= deadline {
                var buffer = [UInt8](repeating: 0, count: Self.noteWidth)
                let n = pread(fd, &buffer, buffer.count, 0)
                let holder = String(decoding: buffer.prefix(max(0, n)), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines.union(.controlCharacters))
                close(fd)
                throw MigsnapError.refused(
                    "Another migsnap run holds the store lock\(holder.isEmpty ? "" : " (\(UserText.line(holder, limit: 200)))").",
                    hint: "Wait for it to finish and try again; a killed run releases the lock by itself.")
            }
            usleep(100_000)
        }
        self.fd = fd
        var note = Array("pid \(getpid()), \(UserText.line(purpose, limit: 120)), since \(RFC3339.human(Date()))".utf8.prefix(Self.noteWidth - 1))
        note += [UInt8](repeating: 0x20, count: Self.noteWidth - 1 - note.count) + [0x0A]
        _ = pwrite(fd, note, note.count, 0)
    }

    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit {
        release()
    }
}
