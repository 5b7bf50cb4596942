import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A gzip or file failure, in one line a person can act on.
public struct GzipError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The input is not intact gzip: the stored data is damaged or is something else.
        case corrupt
        /// The operating system refused a read or write (missing directory, disk full, permissions).
        case io
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }

    static func os(_ action: String, _ path: String, errno code: Int32 = errno) -> GzipError {
        GzipError(.io, "\(String(cString: strerror(code))) while \(action) \(path)")
    }
}

/// Big enough that system calls and zlib calls are cheap per byte, small enough that memory
/// stays flat whatever the size of the database.
let chunkSize = 256 * 1024

// Inside FileDescriptor, `read`, `write` and `close` name its own methods.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int { write(fd, buffer, count) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }

/// A file that is still arriving (a download): its final size, and a wait that returns once
/// `length` bytes from `offset` are in it, or throws when they never will be.
public struct ArrivingInput {
    public var size: Int64
    public var wait: (_ offset: Int64, _ length: Int64) throws -> Void

    public init(size: Int64, wait: @escaping (_ offset: Int64, _ length: Int64) throws -> Void) {
        self.size = size
        self.wait = wait
    }
}

/// One open file descriptor, closed exactly once.
final class FileDescriptor {
    let fd: Int32
    let path: String
    private var isOpen = true
    /// Set for a file that is still arriving: positioned reads wait for their bytes.
    var arriving: ArrivingInput?

    /// Opens an existing file for reading.
    init(reading path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw GzipError.os("opening", path) }
        self.fd = fd
        self.path = path
    }

    /// Creates a new file, 0600, refusing to overwrite anything: the caller owns what it creates.
    init(creating path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw GzipError.os("creating", path) }
        self.fd = fd
        self.path = path
    }

    deinit {
        if isOpen { _ = systemClose(fd) }
    }

    /// Reads up to `buffer.count` bytes; 0 at end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = systemRead(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw GzipError.os("reading", path) }
        }
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw GzipError.os("writing", path)
            }
            offset += n
        }
    }

    /// Closes, after making the data durable if `sync`; a failing close is still reported, since
    /// on some file systems that is where a write error shows up.
    func close(sync: Bool = true) throws {
        if sync {
            guard fsync(fd) == 0 else { throw GzipError.os("syncing", path) }
        }
        isOpen = false
        guard systemClose(fd) == 0 else { throw GzipError.os("closing", path) }
    }
}

/// Writes a new gzip file, streaming. If it is dropped before `finish()` succeeds, the partial
/// file is removed: half a gzip stream is of no use to anyone.
public final class GzipWriter {
    private let file: FileDescriptor
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawBufferPointer
    private var rawBytes: Int64 = 0
    private var storedBytes: Int64 = 0
    private var finished = false

    public init(path: String, level: Int32 = 6) throws {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard migsnap_deflateInit2(stream, level) == Z_OK else {
            stream.deallocate()
            throw GzipError(.io, "cannot start gzip compression at level \(level)")
        }
        do {
            file = try FileDescriptor(creating: path)
        } catch {
            deflateEnd(stream)
            stream.deallocate()
            throw error
        }
        self.stream = stream
        output = .allocate(byteCount: chunkSize, alignment: 16)
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
        output.deallocate()
        if !finished { unlink(file.path) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var next = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            // avail_in is 32-bit; hand zlib at most one chunk at a time.
            let piece = min(remaining, chunkSize)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: next.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(piece)
            try deflateAll(flush: Z_NO_FLUSH)
            rawBytes += Int64(piece)
            next += piece
            remaining -= piece
        }
    }

    /// Ends the stream, then flushes, fsyncs and closes the file.
    public func finish() throws -> (rawBytes: Int64, storedBytes: Int64) {
        try deflateAll(flush: Z_FINISH)
        try file.close()
        finished = true
        return (rawBytes, storedBytes)
    }

    /// Runs deflate until it has consumed all input (or, with Z_FINISH, written the trailer).
    private func deflateAll(flush: Int32) throws {
        while true {
            stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(output.count)
            let status = deflate(stream, flush)
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw GzipError(.io, "gzip compression failed (zlib status \(status))")
            }
            let produced = output.count - Int(stream.pointee.avail_out)
            if produced > 0 {
                try file.writeAll(UnsafeRawBufferPointer(rebasing: output[0..<produced]))
                storedBytes += Int64(produced)
            }
            if flush == Z_FINISH {
                if status == Z_STREAM_END { return }
            } else if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 {
                return
            }
        }
    }
}

/// Reads a gzip file, streaming, and verifies it: every damage to the file (header, data, CRC,
/// length, a missing end, bytes after the end) is a `GzipError`, never silently wrong output.
public final class GzipReader {
    private let file: FileDescriptor
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    private var inputEnded = false
    private var streamEnded = false
    private var sawAnyInput = false

    public init(path: String) throws {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard migsnap_inflateInit2(stream) == Z_OK else {
            stream.deallocate()
            throw GzipError(.io, "cannot start gzip decompression")
        }
        do {
            file = try FileDescriptor(reading: path)
        } catch {
            inflateEnd(stream)
            stream.deallocate()
            throw error
        }
        self.stream = stream
        input = .allocate(byteCount: chunkSize, alignment: 16)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    /// Fills `buffer`, returns bytes produced; 0 only at the verified end of stream.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        var produced = 0
        while produced < buffer.count {
            if streamEnded {
                // gzip allows several members back to back (`cat a.gz b.gz`); anything else is garbage.
                if try !refill() { return produced }
                guard stream.pointee.next_in.pointee == 0x1f else {
                    throw GzipError(.corrupt, "unexpected bytes after the end of the gzip stream: the file is corrupted")
                }
                inflateReset(stream)
                streamEnded = false
            }
            if stream.pointee.avail_in == 0 && !inputEnded {
                _ = try refill()
            }
            let want = min(buffer.count - produced, Int(UInt32.max))
            stream.pointee.next_out = (base + produced).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(want)
            let status = inflate(stream, Z_NO_FLUSH)
            produced += want - Int(stream.pointee.avail_out)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                streamEnded = true
            case Z_BUF_ERROR:
                // No progress possible: zlib needs input we do not have.
                if inputEnded && stream.pointee.avail_in == 0 {
                    throw GzipError(.corrupt, sawAnyInput ? "the file is truncated" : "the file is empty, not gzip")
                }
            default:
                throw corruption(status)
            }
        }
        return produced
    }

    /// Loads more input if there is any; false at end of file.
    private func refill() throws -> Bool {
        if stream.pointee.avail_in > 0 { return true }
        if inputEnded { return false }
        let n = try file.read(into: input)
        if n == 0 {
            inputEnded = true
            return false
        }
        sawAnyInput = true
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(n)
        return true
    }

    private func corruption(_ status: Int32) -> GzipError {
        let detail = stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
        switch detail {
        case "incorrect header check", "unknown compression method", "unknown header flags set":
            return GzipError(.corrupt, "not a gzip file")
        case "incorrect data check":
            return GzipError(.corrupt, "CRC mismatch: the data is corrupted")
        case "incorrect length check":
            return GzipError(.corrupt, "length mismatch: the data is corrupted")
        default:
            return GzipError(.corrupt, "the data is corrupted (\(detail))")
        }
    }
}

public enum Gzip {
    /// Compresses `source` into a new single-stream gzip file `destination` (0600, fsynced), as
    /// snapshots were before blocked gzip (`compressBlocked`). `progress` receives the number of source bytes done so far.
    public static func compress(
        file source: String, to destination: String, level: Int32 = 6, progress: ((Int64) -> Void)? = nil
    ) throws -> (rawBytes: Int64, storedBytes: Int64) {
        let input = try FileDescriptor(reading: source)
        let writer = try GzipWriter(path: destination, level: level)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while true {
            let n = try input.read(into: buffer)
            if n == 0 { break }
            try writer.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            done += Int64(n)
            progress?(done)
        }
        return try writer.finish()
    }

    /// Decompresses and verifies `source` into a new file `destination` (0600) and returns its size.
    /// On any failure the destination is removed, so there is never half an output. `fsync: false`
    /// is for scratch output that is read back and thrown away, where durability only costs time.
    /// A blocked file (see BlockedGzip.swift) is inflated on `threads` threads by its index, each
    /// block checked; any other gzip file is read as one stream, as before.
    /// With `arriving`, `source` may still be arriving: a blocked file is inflated as its blocks
    /// come (its index, at the end, must be there first), any other after all of it came.
    public static func decompress(
        file source: String, to destination: String, fsync: Bool = true, threads: Int = Parallelism.cores,
        arriving: ArrivingInput? = nil, progress: ((Int64) -> Void)? = nil
    ) throws -> Int64 {
        let input = try FileDescriptor(reading: source)
        input.arriving = arriving
        if let layout = try BlockedFormat.layout(of: input) {
            return try decompressBlocked(input, layout, to: destination, fsync: fsync, threads: threads, progress: progress)
        }
        try arriving?.wait(0, arriving!.size)
        let reader = try GzipReader(path: source)
        let output = try FileDescriptor(creating: destination)
        var completed = false
        defer { if !completed { unlink(destination) } }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while true {
            let n = try reader.read(into: buffer)
            if n == 0 { break }
            try output.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            done += Int64(n)
            progress?(done)
        }
        try output.close(sync: fsync)
        completed = true
        return done
    }
}
