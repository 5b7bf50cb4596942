import Foundation
import MigsnapCore
@testable import MigsnapS3
import Testing

@Suite struct S3BackendTests {
    @Test func initializeMarksTheStoreAndListingHidesInternalObjects() throws {
        let backend = try TestServer.backend()
        #expect(try backend.isInitialized() == false)
        try backend.initialize()
        try backend.initialize()
        #expect(try backend.isInitialized())
        try backend.write("b.json", data: Data("{}".utf8))
        try backend.write("a.json", data: Data("[]".utf8))
        try backend.client.putObject(bucket: backend.s3.bucket, key: backend.s3.key("nested/x.json"), data: Data())
        try backend.client.putObject(bucket: backend.s3.bucket, key: "store-sibling.json", data: Data())
        let lock = try backend.lock(purpose: "test", wait: 0)
        let listed = try backend.list()
        lock.release()
        #expect(listed.map(\.name) == ["a.json", "b.json"])
        #expect(listed.allSatisfy { !$0.version.isEmpty && $0.modified != nil && $0.size == 2 })
        #expect(try backend.read("a.json") == Data("[]".utf8))
        #expect(try backend.read("missing.json") == nil)
        try backend.delete("a.json")
        try backend.delete("a.json")
        #expect(try backend.list().map(\.name) == ["b.json"])
    }

    @Test func refusesAPrefixHoldingOtherThings() throws {
        let backend = try TestServer.backend(prefix: "taken")
        try backend.client.putObject(bucket: backend.s3.bucket, key: "taken/photo.jpg", data: Data("x".utf8))
        #expect {
            try backend.initialize()
        } throws: { error in
            guard case MigsnapError.invalidInput(let message, _) = error else { return false }
            return message.contains("not a migsnap store")
        }
        #expect(try backend.isInitialized() == false)
    }

    @Test func emptyPrefixUsesTheWholeBucket() throws {
        let backend = try TestServer.backend(prefix: "")
        try backend.initialize()
        try backend.write("index.json", data: Data("{}".utf8))
        #expect(try backend.client.getObject(bucket: backend.s3.bucket, key: "index.json") != nil)
        #expect(try backend.list().map(\.name) == ["index.json"])
        #expect(backend.location == "s3://\(backend.s3.bucket)")
    }

    @Test func multipartRoundTripKeepsEveryByte() throws {
        let backend = try TestServer.backend()
        try backend.initialize()
        let size = 20 << 20 | 12_345
        let file = try TestServer.randomFile(size: size)
        let sent = Counter()
        var lastSent: Int64 = 0
        try backend.upload(file: file, as: "big.sqlite.gz") { done in
            lastSent = done
            _ = sent.take(below: Int.max)
        }
        #expect(lastSent == Int64(size))
        #expect(try backend.list().first { $0.name == "big.sqlite.gz" }?.size == Int64(size))
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.isEmpty)

        let scratch = try backend.makeScratch()
        var lastReceived: Int64 = 0
        let fetched = try backend.fetch("big.sqlite.gz", into: scratch) { lastReceived = $0 }
        #expect(lastReceived == Int64(size))
        #expect(FileSystem.permissions(fetched.path) == 0o600)
        #expect(try Hashing.sha256(ofFile: fetched.path) == Hashing.sha256(ofFile: file))
        #expect(try fetched.sha256 == Hashing.sha256(ofFile: file), "hashed on the way, across parts")
        #expect(try backend.readRange("big.sqlite.gz", offset: Int64(8 << 20) - 3, length: 6)
            == FileHandle(forReadingAtPath: file).map { h in try h.seek(toOffset: UInt64(8 << 20) - 3); return try h.read(upToCount: 6) ?? Data() })
    }

    /// Appends `count` bytes of `source` from `offset` to the end of `file`.
    func append(_ source: Data, _ range: Range<Int>, to file: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.seekToEnd()
        try handle.write(contentsOf: source[range])
        try handle.close()
    }

    @Test func aGrowingFileGoesUpInPartsBeforeItIsFinished() throws {
        let backend = try TestServer.backend(partSize: 5 << 20)
        try backend.initialize()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: TestServer.randomFile(size: 13 << 20 | 999)))
        let scratch = try backend.makeScratch()
        let file = scratch.file("growing")
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        let upload = try backend.beginUpload(growing: file, as: "grown.sqlite.gz", progress: nil)
        try append(bytes, 0..<(4 << 20), to: file)
        try upload.grew(to: 4 << 20)
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.isEmpty,
                "less than a part written: nothing sent yet")
        try append(bytes, (4 << 20)..<(11 << 20), to: file)
        try upload.grew(to: 11 << 20)
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.map(\.key)
            == [backend.s3.key("grown.sqlite.gz")], "parts go up while the file grows")
        #expect(try backend.list().isEmpty, "the object appears only at the end")
        try append(bytes, (11 << 20)..<bytes.count, to: file)
        try upload.finish(size: Int64(bytes.count))
        #expect(try backend.list().map(\.name) == ["grown.sqlite.gz"])
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.isEmpty)
        let fetched = try backend.fetch("grown.sqlite.gz", into: scratch, progress: nil)
        #expect(fetched.sha256 == Hashing.sha256(of: bytes))
    }

    @Test func anAbandonedGrowingUploadLeavesNothing() throws {
        let backend = try TestServer.backend(partSize: 5 << 20)
        try backend.initialize()
        let file = try TestServer.randomFile(size: 11 << 20)
        let upload = try backend.beginUpload(growing: file, as: "dropped.sqlite.gz", progress: nil)
        try upload.grew(to: 11 << 20)
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.count == 1)
        upload.abort()
        #expect(try backend.list().isEmpty)
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.isEmpty,
                "the multipart upload is aborted, not left to the debris cleanup")
        #expect(throws: MigsnapError.self) { try upload.finish(size: 11 << 20) }
        #expect(try backend.list().isEmpty)
    }

    @Test func aSnapshotWhoseWriterFailsMidwayLeavesNothingInTheBucket() throws {
        let backend = try TestServer.backend(partSize: 5 << 20)
        let store = SnapshotStore(backend: backend)
        try store.create()
        struct WriterFailed: Error {}
        let source = try Data(contentsOf: URL(fileURLWithPath: TestServer.randomFile(size: 12 << 20)))
        var started = false
        #expect(throws: WriterFailed.self) {
            _ = try store.commit(id: "20261127-140000-000", engine: .sqlite, scratch: try store.makeScratch()) { file in
                try source.write(to: file)
                // The follower sees the file and starts sending parts before the writer fails
                // (the bound only keeps a broken build from hanging).
                for _ in 0..<3000 where !started {
                    started = try !backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.isEmpty
                    if !started { Thread.sleep(forTimeInterval: 0.01) }
                }
                throw WriterFailed()
            }
        }
        #expect(started, "parts went up while the payload was written")
        #expect(try backend.list().isEmpty)
        #expect(try store.manifests().isEmpty)
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.isEmpty)
    }

    @Test func smallUploadAndEmptyFetch() throws {
        let backend = try TestServer.backend()
        try backend.initialize()
        let file = try TestServer.randomFile(size: 0)
        try backend.upload(file: file, as: "empty.pgdump", progress: nil)
        let scratch = try backend.makeScratch()
        let fetched = try backend.fetch("empty.pgdump", into: scratch, progress: nil)
        #expect(FileSystem.fileSize(fetched.path) == 0)
        #expect(fetched.sha256 == Hashing.sha256(of: Data()))
        #expect(throws: MigsnapError.self) { _ = try backend.fetch("gone.pgdump", into: scratch, progress: nil) }
    }

    @Test func scratchIsPrivateAndOnlyDeadOnesAreCleaned() throws {
        let backend = try TestServer.backend(orphanGracePeriod: 0)
        try backend.initialize()
        var scratch: ScratchSpace? = try backend.makeScratch()
        let live = scratch!.path
        #expect(FileSystem.permissions(live) == 0o700)
        #expect((live as NSString).lastPathComponent.hasPrefix("migsnap-scratch-"))

        // A killed run's scratch directory: its lock file is there but nobody holds it.
        let dead = (FileManager.default.temporaryDirectory.path as NSString).appendingPathComponent("migsnap-scratch-dead-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: dead + "/.in-use", contents: nil)

        // An upload a killed run left incomplete.
        let key = backend.s3.key("orphan.sqlite.gz")
        let uploadID = try backend.client.createMultipartUpload(bucket: backend.s3.bucket, key: key)
        Thread.sleep(forTimeInterval: 1.1)

        let removed = try backend.cleanBackendDebris()
        // The temporary directory is shared: another test's cleanup, running beside this one, may
        // be the one that removed the dead directory. Either way it is gone, and it is reported by
        // whichever run removed it.
        #expect(removed.contains("scratch directory \(dead)") || !FileManager.default.fileExists(atPath: dead))
        #expect(removed.contains("incomplete upload of s3://\(backend.s3.bucket)/\(key)"))
        #expect(!removed.contains { $0.contains(live) })
        #expect(FileManager.default.fileExists(atPath: live) && !FileManager.default.fileExists(atPath: dead))
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.map(\.uploadID).contains(uploadID) == false)

        scratch = nil
        #expect(!FileManager.default.fileExists(atPath: live))
    }

    @Test func youngUploadsAreLeftAlone() throws {
        let backend = try TestServer.backend()
        let key = backend.s3.key("in-flight.sqlite.gz")
        _ = try backend.client.createMultipartUpload(bucket: backend.s3.bucket, key: key)
        #expect(try backend.cleanBackendDebris().allSatisfy { !$0.contains("incomplete upload") })
        #expect(try backend.client.listMultipartUploads(bucket: backend.s3.bucket, prefix: "").uploads.count == 1)
    }

    @Test func constructedFromAURLAndTheEnvironment() throws {
        let configuration = try TestServer.configuration()
        let env = ["AWS_ENDPOINT_URL": configuration.endpoint, "AWS_ACCESS_KEY_ID": configuration.credentials.accessKeyID,
                   "AWS_SECRET_ACCESS_KEY": configuration.credentials.secretAccessKey, "HOME": "/nonexistent"]
        let bucket = try TestServer.freshBucket(TestServer.client())
        let backend = try S3Backend(url: "s3://\(bucket)/team/app/", environment: env)
        #expect(backend.location == "s3://\(bucket)/team/app")
        try backend.initialize()
        #expect(try backend.client.getObject(bucket: bucket, key: "team/app/.migsnap-store") != nil)
    }
}
