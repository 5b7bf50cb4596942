import Foundation
import MigsnapCompression
import Testing

/// Bytes that compress somewhat, like a database page: text runs with random bytes between them.
private func mixedBytes(_ count: Int, seed: UInt64 = 42) -> Data {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    let text = Array("INSERT INTO orders VALUES (17, 'paid', 12000, 'leave at the door');".utf8)
    var i = 0
    while i < count {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        if state >> 63 == 0 {
            for byte in text where i < count {
                bytes[i] = byte
                i += 1
            }
        } else {
            for shift in stride(from: 0, to: 64, by: 8) where i < count {
                bytes[i] = UInt8(truncatingIfNeeded: state >> UInt64(shift))
                i += 1
            }
        }
    }
    return Data(bytes)
}

@Suite("blocked gzip")
struct BlockedGzipTests {
    let directory: TemporaryDirectory
    static let small = 4096

    init() throws {
        directory = try TemporaryDirectory()
    }

    /// Compresses `data` blocked and returns the file's path.
    private func blocked(_ data: Data, threads: Int, blockSize: Int = small, name: String = UUID().uuidString) throws -> String {
        let source = try directory.write(data, to: name + ".raw")
        let destination = directory.file(name + ".gz")
        let sizes = try Gzip.compressBlocked(file: source, to: destination, threads: threads, blockSize: blockSize)
        #expect(sizes.rawBytes == Int64(data.count))
        #expect(sizes.storedBytes == Int64(try directory.read(destination).count))
        return destination
    }

    private func expectCorrupt(_ path: String, threads: Int = 2, _ comment: Comment? = nil) {
        let destination = directory.file("out-\(UUID().uuidString)")
        #expect(comment) {
            _ = try Gzip.decompress(file: path, to: destination, threads: threads)
        } throws: { error in
            (error as? GzipError)?.kind == .corrupt
        }
        #expect(!FileManager.default.fileExists(atPath: destination), "no half output is left behind")
    }

    static let sizes = [0, 1, small - 1, small, small + 1, 3 * small - 1, 3 * small, 3 * small + 1, 10 * small + 7]

    @Test("round trips across block boundaries, the same bytes on 1 and 3 threads", arguments: sizes)
    func roundTrip(size: Int) throws {
        let data = mixedBytes(size)
        let one = try blocked(data, threads: 1, name: "one")
        let three = try blocked(data, threads: 3, name: "three")
        #expect(try directory.read(one) == directory.read(three), "the output does not depend on the thread count")
        for threads in [1, 4] {
            let out = directory.file("out\(threads)")
            var reported: Int64 = 0
            let count = try Gzip.decompress(file: three, to: out, threads: threads) { reported = $0 }
            #expect(count == Int64(size))
            #expect(reported == Int64(size))
            #expect(try directory.read(out) == data)
        }
    }

    @Test("a few MiB in 1 MiB blocks, on 1 and 4 threads")
    func defaultBlockSize() throws {
        let data = mixedBytes(3 * Gzip.blockSize + 12345, seed: 7)
        let one = try blocked(data, threads: 1, blockSize: Gzip.blockSize, name: "one")
        let four = try blocked(data, threads: 4, blockSize: Gzip.blockSize, name: "four")
        #expect(try directory.read(one) == directory.read(four))
        _ = try Gzip.decompress(file: four, to: directory.file("out"), threads: 4)
        #expect(try directory.read(directory.file("out")) == data)
        // Exact multiple of the block size.
        let exact = mixedBytes(2 * Gzip.blockSize, seed: 8)
        let path = try blocked(exact, threads: 2, blockSize: Gzip.blockSize, name: "exact")
        _ = try Gzip.decompress(file: path, to: directory.file("exact.out"), threads: 2)
        #expect(try directory.read(directory.file("exact.out")) == exact)
    }

    @Test("gunzip -t and zcat read what we write, as one stream", arguments: [0, 1, 3 * small, 10 * small + 7])
    func gunzipReadsOurs(size: Int) throws {
        let data = mixedBytes(size)
        let gz = try blocked(data, threads: 2)
        #expect(try run("/usr/bin/gzip", ["-t", gz]) == 0)
        let out = directory.file("zcat")
        #expect(try run("/usr/bin/zcat", [gz], stdoutTo: out) == 0)
        #expect(try directory.read(out) == data)
    }

    @Test("the sequential reader reads a blocked file too (several members, extra fields)")
    func sequentialReaderReadsBlocked() throws {
        let data = mixedBytes(5 * Self.small + 3)
        let reader = try GzipReader(path: try blocked(data, threads: 2))
        var result = Data()
        var buffer = [UInt8](repeating: 0, count: 1000)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        #expect(result == data)
    }

    @Test("a flipped byte anywhere is caught: every block, every header, the index and the locator")
    func everyFlippedByte() throws {
        // Four blocks: first, middle, last (short); then one index member and the locator.
        let data = mixedBytes(3 * Self.small + 100)
        let original = try directory.read(try blocked(data, threads: 2, name: "whole"))
        for position in 0..<original.count {
            var bytes = original
            bytes[position] ^= position % 2 == 0 ? 0x01 : 0x80
            let path = try directory.write(bytes, to: "flipped-\(position).gz")
            expectCorrupt(path, threads: 1 + position % 3, "flipped byte at \(position) of \(original.count)")
            try FileManager.default.removeItem(atPath: path)
        }
    }

    @Test("a blocked file cut anywhere, even between members, is caught")
    func truncatedAnywhere() throws {
        let original = try directory.read(try blocked(mixedBytes(3 * Self.small + 100), threads: 2, name: "whole"))
        for keep in stride(from: 0, to: original.count, by: 7) {
            let path = try directory.write(original.prefix(keep), to: "cut-\(keep).gz")
            expectCorrupt(path, "kept \(keep) of \(original.count) bytes")
            try FileManager.default.removeItem(atPath: path)
        }
    }

    @Test("an old single-stream file still decompresses, whatever the thread count", arguments: [1, 4])
    func oldSingleStream(threads: Int) throws {
        let data = mixedBytes(3 * Self.small + 5)
        let source = try directory.write(data, to: "old.raw")
        _ = try Gzip.compress(file: source, to: directory.file("old.gz"))
        _ = try Gzip.decompress(file: directory.file("old.gz"), to: directory.file("old.out"), threads: threads)
        #expect(try directory.read(directory.file("old.out")) == data)
    }

    @Test("the compression ratio is within 5% of gzip -6's")
    func ratio() throws {
        let data = mixedBytes(4 * Gzip.blockSize, seed: 3)
        let ours = try directory.read(try blocked(data, threads: 2, blockSize: Gzip.blockSize)).count
        let raw = try directory.write(data, to: "plain")
        #expect(try run("/usr/bin/gzip", ["-6", "-k", raw]) == 0)
        let theirs = try directory.read(raw + ".gz").count
        #expect(Double(ours) <= Double(theirs) * 1.05, "ours \(ours) bytes, gzip -6 \(theirs)")
    }
}
