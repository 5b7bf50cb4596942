import Foundation
import MigsnapCompression
import Testing

/// A fresh directory, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-gzip-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Writes `data` to the file `name` here; returns its path.
    func write(_ data: Data, to name: String) throws -> String {
        let path = file(name)
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func read(_ path: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path))
    }
}

/// Runs a program with its stdout going to `output`; returns the exit status.
func run(_ program: String, _ arguments: [String], stdoutTo output: String? = nil) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    if let output {
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
    }
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

enum Content: String, CaseIterable, CustomTestStringConvertible {
    case empty, oneByte, random, compressible

    var testDescription: String { rawValue }

    /// Several MiB for the big cases, and not a multiple of the 256 KiB buffer.
    var bytes: Data {
        switch self {
        case .empty: return Data()
        case .oneByte: return Data([0x2a])
        case .random: return Content.randomBytes
        case .compressible: return Content.compressibleBytes
        }
    }

    private static let randomBytes = FileHandle(forReadingAtPath: "/dev/urandom")!.readData(ofLength: 5 * 1024 * 1024 + 123)
    private static let compressibleBytes = Data(String(
        repeating: "INSERT INTO accounts VALUES (42, 'alice', 1000.50, '2024-01-01');\n", count: 90_000).utf8)
}

@Suite("gzip streams")
struct GzipTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory()
    }

    private func compressed(_ data: Data, name: String = "data.gz") throws -> String {
        let source = try directory.write(data, to: name + ".raw")
        let destination = directory.file(name)
        _ = try Gzip.compress(file: source, to: destination)
        return destination
    }

    private func expectGzipError(containing text: String, decompressing source: String) {
        let destination = directory.file("out-\(UUID().uuidString)")
        #expect {
            _ = try Gzip.decompress(file: source, to: destination)
        } throws: { error in
            guard let error = error as? GzipError else { return false }
            return error.kind == .corrupt && error.description.contains(text)
        }
        #expect(!FileManager.default.fileExists(atPath: destination), "no half output is left behind")
    }

    private func permissions(_ path: String) throws -> Int? {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
    }

    @Test("compress then decompress gives the same bytes", arguments: Content.allCases)
    func roundTrip(content: Content) throws {
        let data = content.bytes
        let source = try directory.write(data, to: "in")
        var reported: Int64 = 0
        let sizes = try Gzip.compress(file: source, to: directory.file("in.gz")) { reported = $0 }
        #expect(sizes.rawBytes == Int64(data.count))
        #expect(reported == Int64(data.count))
        #expect(Int64(try directory.read(directory.file("in.gz")).count) == sizes.storedBytes)
        #expect(try permissions(directory.file("in.gz")) == 0o600)

        let count = try Gzip.decompress(file: directory.file("in.gz"), to: directory.file("out"))
        #expect(count == Int64(data.count))
        #expect(try directory.read(directory.file("out")) == data)
        #expect(try permissions(directory.file("out")) == 0o600)
    }

    @Test("many small writes, and reads through a small buffer, give the same bytes")
    func smallPieces() throws {
        let data = Content.compressible.bytes + Content.random.bytes.prefix(300_000)
        let path = directory.file("pieces.gz")
        let writer = try GzipWriter(path: path, level: 1)
        var offset = 0
        while offset < data.count {
            let end = min(offset + 1000, data.count)
            try data[offset..<end].withUnsafeBytes { try writer.write($0) }
            offset = end
        }
        let sizes = try writer.finish()
        #expect(sizes.rawBytes == Int64(data.count))

        let reader = try GzipReader(path: path)
        var result = Data()
        var buffer = [UInt8](repeating: 0, count: 777)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        #expect(result == data)
    }

    @Test("gunzip reads what we write", arguments: [Content.oneByte, .random, .compressible])
    func gunzipReadsOurs(content: Content) throws {
        let data = content.bytes
        let gz = try compressed(data)
        let out = directory.file("gunzipped")
        #expect(try run("/usr/bin/gzip", ["-d", "-c", gz], stdoutTo: out) == 0)
        #expect(try directory.read(out) == data)
    }

    @Test("we read what gzip -6 writes", arguments: [Content.empty, .random, .compressible])
    func weReadGzip(content: Content) throws {
        let data = content.bytes
        let raw = try directory.write(data, to: "plain")
        #expect(try run("/usr/bin/gzip", ["-6", "-k", raw]) == 0)
        _ = try Gzip.decompress(file: raw + ".gz", to: directory.file("ours"))
        #expect(try directory.read(directory.file("ours")) == data)
    }

    @Test("members written back to back read as their concatenation, as gunzip does")
    func concatenatedMembers() throws {
        let first = try directory.read(compressed(Data("first\n".utf8), name: "a.gz"))
        let second = try directory.read(compressed(Data("second\n".utf8), name: "b.gz"))
        let both = try directory.write(first + second, to: "both.gz")
        _ = try Gzip.decompress(file: both, to: directory.file("both"))
        #expect(try String(contentsOfFile: directory.file("both"), encoding: .utf8) == "first\nsecond\n")
    }

    @Test("a truncated file is an error, never short output", arguments: [1, 5, 10, 100, 50_000, -8, -4, -1])
    func truncated(cut: Int) throws {
        let whole = try directory.read(compressed(Content.compressible.bytes + Content.random.bytes.prefix(100_000)))
        let keep = cut > 0 ? cut : whole.count + cut
        let path = try directory.write(whole.prefix(keep), to: "truncated.gz")
        expectGzipError(containing: "truncated", decompressing: path)
    }

    @Test("a flipped byte in the data is an error")
    func flippedByteInData() throws {
        var bytes = try directory.read(compressed(Content.compressible.bytes))
        bytes[bytes.count / 2] ^= 0x10
        let path = try directory.write(bytes, to: "flipped.gz")
        expectGzipError(containing: "corrupted", decompressing: path)
    }

    @Test("a damaged trailer is caught: the CRC (8 to 5 bytes from the end) and the length (last 4)",
          arguments: [(6, "CRC mismatch"), (2, "length mismatch")])
    func damagedTrailer(fromEnd: Int, message: String) throws {
        var bytes = try directory.read(compressed(Content.compressible.bytes))
        bytes[bytes.count - fromEnd] ^= 0x01
        let path = try directory.write(bytes, to: "trailer.gz")
        expectGzipError(containing: message, decompressing: path)
    }

    @Test("bytes after the end of the stream are an error")
    func trailingGarbage() throws {
        let bytes = try directory.read(compressed(Content.oneByte.bytes))
        let path = try directory.write(bytes + Data("garbage".utf8), to: "trailing.gz")
        expectGzipError(containing: "after the end", decompressing: path)
    }

    @Test("a file that is not gzip is an error", arguments: ["SQLite format 3\u{0}and more", ""])
    func notGzip(text: String) throws {
        let path = try directory.write(Data(text.utf8), to: "plain.txt")
        expectGzipError(containing: text.isEmpty ? "empty" : "not a gzip file", decompressing: path)
    }

    @Test("writing into a missing directory names the path and the reason")
    func missingDirectory() throws {
        let source = try directory.write(Data("x".utf8), to: "x")
        let destination = directory.file("no/such/dir/x.gz")
        #expect {
            _ = try Gzip.compress(file: source, to: destination)
        } throws: { error in
            guard let error = error as? GzipError else { return false }
            return error.kind == .io && error.description.contains("No such file or directory")
                && error.description.contains(destination)
        }
    }

    @Test("an existing file is never overwritten, and is left as it was")
    func existingDestination() throws {
        let source = try directory.write(Data("new".utf8), to: "source")
        let existing = try directory.write(Data("precious".utf8), to: "existing.gz")
        #expect(throws: GzipError.self) { _ = try Gzip.compress(file: source, to: existing) }
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "precious")
    }

    @Test("a writer dropped before finish removes its partial file")
    func abandonedWriter() throws {
        let path = directory.file("abandoned.gz")
        do {
            let writer = try GzipWriter(path: path)
            try Content.random.bytes.withUnsafeBytes { try writer.write($0) }
            #expect(FileManager.default.fileExists(atPath: path))
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
