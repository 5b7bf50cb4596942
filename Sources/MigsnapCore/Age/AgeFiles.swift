import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The file being encrypted or decrypted, read through one fixed buffer: lines for the header,
/// then blocks for the payload. `consumed` counts the bytes handed out, for progress.
final class AgeInputFile {
    let path: String
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var start = 0
    private var end = 0
    private var reachedEnd = false
    private(set) var consumed: Int64 = 0
    /// For a file still being written or fetched: blocks until `count` bytes from `offset` are
    /// there (or no more will come), before each read.
    private let waitFor: ((_ offset: Int64, _ count: Int) throws -> Void)?
    /// Where the next read of the file starts.
    private var fileOffset: Int64 = 0

    init(path: String, waitFor: ((_ offset: Int64, _ count: Int) throws -> Void)? = nil) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystem.osError("open \(path)") }
        self.fd = fd
        self.path = path
        self.waitFor = waitFor
    }

    /// One read(2) of the file, after waiting for its bytes where they may still be coming.
    private func readFile(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
        try waitFor?(fileOffset, count)
        while true {
            let n = Glibc.read(fd, destination, count)
            if n >= 0 {
                fileOffset += Int64(n)
                return n
            }
            if errno != EINTR { throw FileSystem.osError("read \(path)") }
        }
    }

    deinit { close(fd) }

    /// The next line without its LF; nil when the file ends before an LF, or the line is longer
    /// than `maxLength` (both mean a malformed header).
    func readLine(maxLength: Int) throws -> [UInt8]? {
        var line: [UInt8] = []
        while true {
            if start == end {
                guard try refill() else { return nil }
            }
            if let newline = buffer[start..<end].firstIndex(of: 0x0A) {
                line += buffer[start..<newline]
                consume(newline + 1 - start)
                return line.count <= maxLength ? line : nil
            }
            line += buffer[start..<end]
            consume(end - start)
            if line.count > maxLength { return nil }
        }
    }

    /// Up to `count` bytes: fewer only at the end of the file.
    func read(upTo count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        try read(upTo: count, into: &result)
        return result
    }

    /// Up to `count` bytes into `result`, replacing its contents: fewer only at the end of the
    /// file. Reusing one array for every chunk keeps the payload loop free of allocations.
    func read(upTo count: Int, into result: inout [UInt8]) throws {
        if result.count < count {
            result.append(contentsOf: repeatElement(0, count: count - result.count))
        }
        var filled = min(count, end - start)
        try result.withUnsafeMutableBytes { destination in
            buffer.withUnsafeBytes { source in
                destination.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: filled)
            }
            consume(filled)
            // Read the rest straight into the result rather than through the buffer.
            while filled < count && !reachedEnd {
                let n = try readFile(into: destination.baseAddress! + filled, count: count - filled)
                reachedEnd = n == 0
                filled += n
                consumed += Int64(n)
            }
        }
        result.removeSubrange(filled...)
    }

    /// Whether nothing follows what was read so far.
    func isAtEnd() throws -> Bool {
        if start < end { return false }
        return try !refill()
    }

    private func consume(_ count: Int) {
        start += count
        consumed += Int64(count)
    }

    /// Reads more into the empty buffer; false at the end of the file.
    private func refill() throws -> Bool {
        precondition(start == end)
        if reachedEnd { return false }
        start = 0
        end = 0
        let n = try buffer.withUnsafeMutableBytes { try readFile(into: $0.baseAddress!, count: $0.count) }
        end = n
        reachedEnd = n == 0
        return n > 0
    }
}

/// The new file being written: created exclusively (O_EXCL, 0600), so nothing existing is ever
/// overwritten, and removed again unless `finish()` closed it — a failed run leaves
/// no half-written plaintext or ciphertext behind.
final class AgeOutputFile {
    let path: String
    private let fd: Int32
    private var finished = false

    init(creating path: String) throws {
        // Throw before every property is set: a fully initialized instance that throws is
        // deinitialized, and this deinit would remove the existing file that O_EXCL protected.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw MigsnapError.failed("Could not create \(path): it already exists; nothing was overwritten.")
            }
            throw FileSystem.osError("create \(path)")
        }
        self.fd = fd
        self.path = path
    }

    deinit {
        if !finished {
            close(fd)
            unlink(path)
        }
    }

    func write<Bytes: ContiguousBytes>(_ bytes: Bytes) throws {
        try bytes.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
    }

    /// Closes the file, fsynced first unless `sync` is false (scratch output, read back and dropped,
    /// or kept by a store that makes it durable itself).
    func finish(sync: Bool = true) throws {
        guard !sync || fsync(fd) == 0 else { throw FileSystem.osError("fsync \(path)") }
        finished = true
        guard close(fd) == 0 else {
            unlink(path)
            throw FileSystem.osError("close \(path)")
        }
    }
}
