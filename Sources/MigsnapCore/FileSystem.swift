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
/// leaves a stale lock. The holder writes who it is into the file, for the refusal message.
public final class FileLock {
    private let fd: Int32
    public let path: String

    /// Tries for `wait` seconds, then throws `.refused` naming the holder.
    public init(path: String, purpose: String, wait: TimeInterval) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileSystem.osError("open the lock \(path)") }
        let deadline = Date().addingTimeInterval(wait)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let error = FileSystem.osError("lock \(path)")
                close(fd)
                throw error
            }
            if Date() >= deadline {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw MigsnapError.refused(
                    "Another migsnap run holds the store lock\(holder.isEmpty ? "" : " (\(holder))").",
                    hint: "Wait for it to finish and try again; a killed run releases the lock by itself.")
            }
            usleep(100_000)
        }
        self.fd = fd
        let note = "pid \(getpid()), \(purpose), since \(RFC3339.string(from: Date()))\n"
        ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
    }
}
