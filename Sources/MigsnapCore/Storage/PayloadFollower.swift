import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Follows a payload file while its writer appends to it, on its own thread: reads each new byte
/// once to hash it, and tells the backend's upload how far the file is written, so that storing
/// the payload overlaps making it. Memory is one read buffer, whatever the file's size; the bytes
/// come from the page cache the writer just filled.
final class PayloadFollower: @unchecked Sendable {
    private let path: String
    private let upload: GrowingUpload
    private let lock = NSLock()
    private var writerDone = false
    private var stopped = false
    private var outcome: Result<(size: Int64, sha256: String), MigsnapError>?
    private let ended = DispatchSemaphore(value: 0)

    private static let bufferSize = 1 << 20

    /// Starts following `path`, which the writer may not have created yet.
    init(path: String, upload: GrowingUpload) {
        self.path = path
        self.upload = upload
        Thread { [self] in follow() }.start()
    }

    /// The writer is done: waits until every byte is hashed and stored; the object then exists.
    /// Returns the file's size and SHA-256. On a failure the upload is aborted.
    func finish() throws -> (size: Int64, sha256: String) {
        lock.withLock { writerDone = true }
        ended.wait()
        do {
            let result = try outcome!.get()
            try upload.finish(size: result.size)
            return result
        } catch {
            upload.abort()
            throw error
        }
    }

    /// The writer failed: stops following and aborts the upload; nothing appears.
    func abort() {
        lock.withLock { stopped = true }
        ended.wait()
        upload.abort()
    }

    private func follow() {
        var fd: Int32 = -1
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer {
            if fd >= 0 { close(fd) }
            buffer.deallocate()
            ended.signal()
        }
        var hasher = SHA256()
        var size: Int64 = 0
        do {
            while true {
                // Read before looking at the file: once the writer is done, a read that finds no
                // more bytes has reached the real end.
                let (done, stop) = lock.withLock { (writerDone, stopped) }
                if stop {
                    outcome = .failure(.failed("The upload of \(path) was abandoned."))
                    return
                }
                if fd < 0 {
                    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                    if fd < 0 {
                        guard errno == ENOENT, !done else { throw FileSystem.osError("read \(path)") }
                        usleep(GrowingFile.idleWait)
                        continue
                    }
                }
                let n = pread(fd, buffer.baseAddress, buffer.count, off_t(size))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileSystem.osError("read \(path)")
                }
                if n == 0 {
                    if done { break }
                    usleep(GrowingFile.idleWait)
                    continue
                }
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                size += Int64(n)
                try upload.grew(to: size)
            }
            outcome = .success((size, Hashing.hex(hasher.finalize())))
        } catch let error as MigsnapError {
            outcome = .failure(error)
        } catch {
            outcome = .failure(.failed("Storing \(path) failed: \(error)"))
        }
    }
}

/// Waiting on a file that a writer on another thread is still appending to.
enum GrowingFile {
    /// How long to wait for the writer when it is behind (microseconds).
    static let idleWait: useconds_t = 2_000

    /// Blocks until `path` exists and holds at least `bytes` bytes, or `writing` turns false (the
    /// file is then as complete as it will be); a file that never appeared is an error.
    static func wait(for path: String, bytes: Int64, while writing: SharedFlag) throws {
        while true {
            let stillWriting = writing.value
            if let size = FileSystem.fileSize(path), size >= bytes || !stillWriting { return }
            if !stillWriting {
                throw MigsnapError.failed("\(path) was never written.")
            }
            usleep(idleWait)
        }
    }
}

/// What an upload has sent, for a `ProgressReporter`: beside the writer's phase while the file still
/// grows (the upload keeps pace with the engine), then as the phase "upload" with the file's size
/// once it is complete and the rest goes up. Called from the upload's threads.
final class UploadProgress: @unchecked Sendable {
    private let reporter: ProgressReporter
    private let lock = NSLock()
    /// The file's size once it is complete; nil while it grows.
    private var total: Int64?
    private var complete = false

    init(_ reporter: ProgressReporter) {
        self.reporter = reporter
    }

    func fileIsComplete(size: Int64?) {
        lock.withLock {
            complete = true
            total = size
        }
    }

    func report(_ sent: Int64) {
        let (complete, total) = lock.withLock { (self.complete, self.total) }
        if complete {
            reporter.update(phase: "upload", done: sent, total: total)
        } else {
            reporter.update(alongside: "uploaded", done: sent, total: nil)
        }
    }
}
