import Foundation
import MigsnapCore
import Testing

/// The storage protocol's contract, run against every backend (restic's backend test suite is the
/// model): what the snapshot store relies on, checked on real directories and a real S3 server.
@Suite("Store conformance")
struct StoreConformanceTests {
    @Test(arguments: BackendKind.allCases)
    func initializeCreatesOnlyWhatItOwns(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = fixture.backend
        #expect(try !backend.isInitialized())
        #expect(try backend.list().isEmpty)
        try backend.initialize()
        #expect(try backend.isInitialized())
        try backend.initialize()
        // The store's own marker, lock and ignore file are not objects.
        #expect(try backend.list().isEmpty)
        // A place holding things that are not a store is refused, and left as it was.
        let foreign = try kind.make()
        defer { withExtendedLifetime(foreign) {} }
        try foreign.plant("notes.txt", Data("theirs".utf8))
        #expect { try foreign.backend.initialize() } throws: { error in
            guard case .invalidInput(let message, _) = error as? MigsnapError else { return false }
            return message.contains("not a migsnap store")
        }
        #expect(try !foreign.backend.isInitialized())
    }

    /// Two deploys that start together on a new store both find it theirs: neither takes the
    /// other's half-made store for a foreign one.
    @Test(arguments: BackendKind.allCases)
    func firstRunsAtOnceAllInitializeOneStore(_ kind: BackendKind) throws {
        for _ in 0..<20 {
            let fixture = try kind.make()
            defer { withExtendedLifetime(fixture) {} }
            nonisolated(unsafe) let runs = try (0..<6).map { _ in try fixture.second() }
            nonisolated(unsafe) var failures = [String]()
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: runs.count) { i in
                // Started within a few requests of each other, so that some run looks while another writes.
                usleep(UInt32.random(in: 0..<12_000))
                do { try runs[i].initialize() } catch { lock.withLock { failures.append("\(error)") } }
            }
            #expect(failures.isEmpty, "\(failures)")
            #expect(try fixture.backend.isInitialized())
            #expect(try fixture.backend.list().isEmpty)
        }
    }

    @Test(arguments: BackendKind.allCases)
    func smallObjectsRoundTripAndReplaceAtomically(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        #expect(try backend.read("a.json") == nil)
        let written = try backend.write("a.json", data: Data("one".utf8))
        let first = try #require(try backend.list().first { $0.name == "a.json" })
        #expect(first.size == 3)
        #expect(written == first.version, "a write returns the version a listing shows")
        try backend.write("a.json", data: Data("second".utf8))
        #expect(try backend.read("a.json") == Data("second".utf8))
        let second = try #require(try backend.list().first { $0.name == "a.json" })
        #expect(second.size == 6)
        #expect(second.version != first.version, "a rewritten object must show a new version")
        try backend.write("empty.json", data: Data())
        #expect(try backend.read("empty.json") == Data())
        try backend.delete("a.json")
        try backend.delete("a.json")
        #expect(try backend.read("a.json") == nil)
        #expect(try backend.list().map(\.name) == ["empty.json"])
    }

    @Test(arguments: BackendKind.allCases)
    func namesThatCouldLeaveTheStoreAreRefused(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        for name in ["../x", "a/b", "..", ".", "", "x\ny", "/etc/passwd", String(repeating: "a", count: 200)] {
            #expect(throws: MigsnapError.self, "\(name)") { try backend.write(name, data: Data("x".utf8)) }
            #expect(throws: MigsnapError.self, "\(name)") { try backend.read(name) }
            #expect(throws: MigsnapError.self, "\(name)") { try backend.delete(name) }
        }
        #expect(try backend.list().isEmpty)
    }

    @Test(arguments: BackendKind.allCases)
    func payloadsUploadFetchAndReadByRange(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        var bytes = [UInt8](repeating: 0, count: 3 * 1024 * 1024 + 17)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        let data = Data(bytes)
        let scratch = try backend.makeScratch()
        let source = scratch.file("upload.bin")
        try data.write(to: URL(fileURLWithPath: source))
        var sent: Int64 = 0
        try backend.upload(file: source, as: "20261127-100000-000.sqlite.gz") { sent = $0 }
        #expect(sent == Int64(data.count))
        #expect(try backend.list().map(\.name) == ["20261127-100000-000.sqlite.gz"])
        #expect(try backend.list().first?.size == Int64(data.count))

        let reader = try backend.makeScratch()
        let fetched = try backend.fetch("20261127-100000-000.sqlite.gz", into: reader, progress: nil)
        #expect(fetched.path.hasPrefix(reader.path))
        #expect(FileManager.default.contents(atPath: fetched.path) == data)
        // A digest computed on the way, where the backend gives one, is the digest of the bytes.
        if let sha256 = fetched.sha256 { #expect(sha256 == Hashing.sha256(of: data)) }

        #expect(try backend.readRange("20261127-100000-000.sqlite.gz", offset: 0, length: 10) == data.prefix(10))
        #expect(try backend.readRange("20261127-100000-000.sqlite.gz", offset: 1_000_000, length: 4096) == data[1_000_000..<1_004_096])
        #expect(try backend.readRange("20261127-100000-000.sqlite.gz", offset: Int64(data.count - 5), length: 100) == data.suffix(5))

        #expect { try backend.fetch("20261127-110000-000.sqlite.gz", into: reader, progress: nil) } throws: { error in
            if case .verificationFailed = error as? MigsnapError { return true }
            return false
        }
    }

    @Test(arguments: BackendKind.allCases)
    func aGrowingUploadAppearsWholeAtFinishAndNotAtAllWhenAbandoned(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        var bytes = [UInt8](repeating: 0, count: 9 * 1024 * 1024 + 5)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 11) }
        let data = Data(bytes)
        let scratch = try backend.makeScratch()
        let kept = scratch.file("kept.bin")
        let upload = try backend.beginUpload(growing: kept, as: "20261127-120000-000.sqlite.gz", progress: nil)
        try data.prefix(8_500_000).write(to: URL(fileURLWithPath: kept))
        try upload.grew(to: 8_500_000)
        #expect(try backend.list().isEmpty, "nothing is listed while the file grows")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: kept))
        try handle.seekToEnd()
        try handle.write(contentsOf: data.dropFirst(8_500_000))
        try handle.close()
        try upload.finish(size: Int64(data.count))
        #expect(try backend.list().map(\.name) == ["20261127-120000-000.sqlite.gz"])
        let reader = try backend.makeScratch()
        let fetched = try backend.fetch("20261127-120000-000.sqlite.gz", into: reader, progress: nil)
        #expect(FileManager.default.contents(atPath: fetched.path) == data)

        let dropped = scratch.file("dropped.bin")
        try data.write(to: URL(fileURLWithPath: dropped))
        let abandoned = try backend.beginUpload(growing: dropped, as: "20261127-130000-000.sqlite.gz", progress: nil)
        try abandoned.grew(to: Int64(data.count))
        abandoned.abort()
        #expect(try backend.list().map(\.name) == ["20261127-120000-000.sqlite.gz"])
    }

    @Test(arguments: BackendKind.allCases)
    func anArrivingObjectLetsItsEndBeReadFirstAndEndsWhole(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        var bytes = [UInt8](repeating: 0, count: 9 * 1024 * 1024 + 3)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 9) }
        let data = Data(bytes)
        let scratch = try backend.makeScratch()
        let source = scratch.file("source.bin")
        try data.write(to: URL(fileURLWithPath: source))
        try backend.upload(file: source, as: "20261127-150000-000.sqlite.gz", progress: nil)

        let reader = try backend.makeScratch()
        let arriving = try backend.fetchArriving("20261127-150000-000.sqlite.gz", size: Int64(data.count), into: reader)
        #expect(arriving.path.hasPrefix(reader.path))
        try arriving.wait(offset: Int64(data.count - 82), length: 82)
        let handle = try #require(FileHandle(forReadingAtPath: arriving.path))
        try handle.seek(toOffset: UInt64(data.count - 82))
        #expect(try handle.read(upToCount: 82) == data.suffix(82), "the end can be read before the rest is there")
        try arriving.waitUntilComplete()
        #expect(FileManager.default.contents(atPath: arriving.path) == data)
        try handle.close()
    }

    @Test(arguments: BackendKind.allCases)
    func aPayloadOfAnotherSizeThanItsManifestFailsVerification(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let store = SnapshotStore(backend: try fixture.initialized())
        let payload = Data((0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) })
        let stored = try store.commit(id: "20261127-160000-000", engine: .sqlite, scratch: try store.makeScratch()) { file in
            try payload.write(to: file)
            return Manifest(id: "20261127-160000-000", createdAt: Date(), engine: .sqlite, revisions: [], reason: .manual, rawBytes: 1,
                            storedBytes: 0, sha256: "", database: "/x.db", file: "")
        }
        #expect(stored.storedBytes == Int64(payload.count) && stored.sha256 == Hashing.sha256(of: payload))
        let first = try store.makeScratch()
        try store.arrivingPayload(stored, scratch: first).verify()
        for size in [stored.storedBytes - 1, stored.storedBytes + 1] {
            var wrong = stored
            wrong.storedBytes = size
            let scratch = try store.makeScratch()
            #expect { try store.arrivingPayload(wrong, scratch: scratch).verify() } throws: { error in
                if case .verificationFailed = error as? MigsnapError { return true }
                return false
            }
        }
    }

    @Test(arguments: BackendKind.allCases)
    func listingPassesAThousandObjects(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        let count = 1_100
        let errors = Errors()
        nonisolated(unsafe) let shared = backend
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in stride(from: worker, to: count, by: 8) {
                do { try shared.write(String(format: "obj-%05d.json", i), data: Data("\(i)".utf8)) } catch { errors.add(error) }
            }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        let names = try backend.list().map(\.name)
        #expect(names.count == count)
        #expect(names == names.sorted())
        #expect(names.first == "obj-00000.json" && names.last == "obj-01099.json")
    }

    @Test(arguments: BackendKind.allCases)
    func theLockIsExclusiveAndNamesItsHolder(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        let other = try fixture.second()
        var first: StoreLock? = try backend.lock(purpose: "upgrade head", wait: 1)
        let started = Date()
        #expect { try other.lock(purpose: "prune", wait: 1) } throws: { error in
            guard case .refused(let message, _) = error as? MigsnapError else { return false }
            return message.contains("upgrade head") && message.contains("pid")
        }
        #expect(Date().timeIntervalSince(started) >= 0.9, "the second run waits before it gives up")
        first?.release()
        first = nil
        let second = try other.lock(purpose: "prune", wait: 1)
        second.release()
    }

    @Test(arguments: BackendKind.allCases)
    func debrisCleanupSparesLiveRuns(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let backend = try fixture.initialized()
        var dead: ScratchSpace? = try backend.makeScratch()
        let deadPath = try #require(dead?.path)
        let live = try backend.makeScratch()
        try Data("in use".utf8).write(to: URL(fileURLWithPath: live.file("work")))
        dead = nil
        #expect(!FileManager.default.fileExists(atPath: deadPath), "a released scratch space is removed")
        _ = try backend.cleanBackendDebris()
        #expect(FileManager.default.contents(atPath: live.file("work")) == Data("in use".utf8))
    }
}

final class Errors: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var all: [Error] = []
    func add(_ error: Error) { lock.lock(); all.append(error); lock.unlock() }
}
