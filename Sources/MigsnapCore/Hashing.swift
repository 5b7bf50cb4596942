import Crypto
import Foundation

public enum Hashing {
    /// SHA-256 of a file, read through a fixed buffer so memory stays flat in the file's size.
    public static func sha256(ofFile path: String, progress: ((Int64) -> Void)? = nil) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw MigsnapError.failed("Cannot read \(path).")
        }
        defer { try? handle.close() }
        return try sha256(of: handle, path: path, progress: progress)
    }

    /// The SHA-256 of a file opened now, computed on another thread beside the work that follows,
    /// reading through the handle even if the file is renamed meanwhile.
    public static func sha256InBackground(ofFile path: String) throws -> () throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw MigsnapError.failed("Cannot read \(path).")
        }
        let hashing = Background {
            defer { try? handle.close() }
            return try sha256(of: handle, path: path, progress: nil)
        }
        return { try hashing.wait() }
    }

    private static func sha256(of handle: FileHandle, path: String, progress: ((Int64) -> Void)?) throws -> String {
        var hasher = SHA256()
        var done: Int64 = 0
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw MigsnapError.failed("Cannot read \(path): \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            done += Int64(chunk.count)
            progress?(done)
        }
        return hex(hasher.finalize())
    }

    public static func sha256(of data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
