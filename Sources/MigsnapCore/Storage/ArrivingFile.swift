import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A local file that a store object is still arriving in (see `StoreBackend.fetchArriving`): its
/// last bytes may come first, then the rest front to back, so that a reader can start on the
/// object before all of it is here. A reader asks for the bytes it is about to read with `wait`;
/// what `wait` has let through is final (store payloads are never rewritten under their name).
public final class ArrivingFile: @unchecked Sendable {
    public let path: String
    public let size: Int64
    private let state = NSCondition()
    /// Bytes `0..<front` and `back..<size` are in the file.
    private var front: Int64 = 0
    private var back: Int64
    private var failure: MigsnapError?
    private var observer: ((Int64) -> Void)?

    /// A file whose bytes will arrive; the producer reports them with `arrived`.
    public init(path: String, size: Int64) {
        self.path = path
        self.size = size
        back = size
    }

    /// A file that is already complete.
    public convenience init(complete path: String, size: Int64) {
        self.init(path: path, size: size)
        arrived(front: size)
    }

    /// Producer: bytes `0..<end` are in the file.
    public func arrived(front end: Int64) {
        changed { front = max(front, min(end, size)) }
    }

    /// Producer: bytes `start..<size` are in the file.
    public func arrived(back start: Int64) {
        changed { back = min(back, max(start, 0)) }
    }

    /// Calls `observer` with the number of bytes in the file each time more arrive, on the producer's thread.
    public func observe(_ observer: @escaping (Int64) -> Void) {
        state.withLock { self.observer = observer }
    }

    private func changed(_ update: () -> Void) {
        let (observer, arrived) = state.withLock {
            update()
            state.broadcast()
            return (self.observer, front >= back ? size : front + size - back)
        }
        observer?(arrived)
    }

    /// Producer: no more bytes will come; readers waiting for them get `error`.
    public func failed(_ error: MigsnapError) {
        state.withLock {
            failure = failure ?? error
            state.broadcast()
        }
    }

    /// Blocks until bytes `offset..<offset+length` (clipped to the size) are in the file; throws
    /// the transfer's error if they never will be.
    public func wait(offset: Int64, length: Int64) throws {
        let end = min(offset + length, size)
        try state.withLock {
            while true {
                if end <= front || offset >= back || front >= back { return }
                if let failure { throw failure }
                state.wait()
            }
        }
    }

    /// Blocks until the whole file is there.
    public func waitUntilComplete() throws {
        try wait(offset: 0, length: size)
    }
}

extension ArrivingFile {
    /// The SHA-256 of the file, computed on another thread as its bytes arrive, front to back.
    func sha256InBackground() -> () throws -> String {
        let hashing = Background { [self] in try sha256() }
        return { try hashing.wait() }
    }

    private func sha256() throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw FileSystem.osError("read \(path)") }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var hasher = SHA256()
        var offset: Int64 = 0
        while offset < size {
            let length = Int(min(Int64(buffer.count), size - offset))
            try wait(offset: offset, length: Int64(length))
            let n = pread(fd, buffer.baseAddress, length, off_t(offset))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystem.osError("read \(path)")
            }
            guard n > 0 else { throw MigsnapError.verificationFailed("\(path) is shorter than \(size) bytes.") }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += Int64(n)
        }
        return Hashing.hex(hasher.finalize())
    }
}

/// A snapshot's payload as it arrives for an engine that can start on it early (see
/// `SnapshotStore.arrivingPayload`): the file, and the check of its bytes against the manifest.
public final class ArrivingPayload {
    public let file: ArrivingFile
    private let check: () throws -> Void
    private var checked: Result<Void, Error>?

    init(file: ArrivingFile, check: @escaping () throws -> Void) {
        self.file = file
        self.check = check
    }

    public var url: URL { URL(fileURLWithPath: file.path) }

    /// Waits for every byte and checks the size and SHA-256 against the manifest (once; later
    /// calls give the same answer). Throws `.verificationFailed` when they differ.
    public func verify() throws {
        if checked == nil { checked = Result { try check() } }
        try checked!.get()
    }
}
