import Foundation
import MigsnapCore

/// One file sent as a multipart upload: parts read straight from the file by libcurl, a few at a
/// time on their own threads, so memory stays a few small buffers whatever the file's size. The
/// object appears only when the upload completes; on any failure the upload is aborted.
struct S3MultipartUpload {
    let client: S3Client
    let bucket: String
    let key: String
    let file: String
    let size: Int64
    let partSize: Int64
    let concurrency: Int

    func run(progress: ((Int64) -> Void)?) throws {
        // S3 allows 10,000 parts: a very large file gets larger parts.
        let part = max(partSize, (size + 9_999) / 10_000)
        let count = Int((size + part - 1) / part)
        let uploadID = try client.createMultipartUpload(bucket: bucket, key: key)
        do {
            let etags = try uploadParts(uploadID: uploadID, partSize: part, count: count, progress: progress)
            try client.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, etags: etags)
        } catch {
            try? client.abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID)
            throw error
        }
    }

    private func uploadParts(uploadID: String, partSize: Int64, count: Int, progress: ((Int64) -> Void)?) throws -> [String] {
        let state = PartState(count: count, progress: progress)
        let group = DispatchGroup()
        for _ in 0..<min(concurrency, count) {
            group.enter()
            let worker = Thread { [self] in
                defer { group.leave() }
                while let index = state.next() {
                    let offset = Int64(index) * partSize
                    do {
                        let etag = try client.uploadPart(bucket: bucket, key: key, uploadID: uploadID, number: index + 1, file: file,
                                                         offset: offset, length: min(partSize, size - offset)) { sent in
                            state.sent(sent, part: index)
                        }
                        state.finished(index, etag: etag)
                    } catch {
                        state.failed(error)
                    }
                }
            }
            worker.start()
        }
        group.wait()
        return try state.result()
    }
}

/// What the part threads share, behind one lock.
private final class PartState: @unchecked Sendable {
    private let lock = NSLock()
    private var nextIndex = 0
    private var etags: [String?]
    private var sentByPart: [Int64]
    private var error: Error?
    private let progress: ((Int64) -> Void)?

    init(count: Int, progress: ((Int64) -> Void)?) {
        etags = Array(repeating: nil, count: count)
        sentByPart = Array(repeating: 0, count: count)
        self.progress = progress
    }

    /// The next part to send; nil when all are taken or one failed.
    func next() -> Int? {
        lock.withLock {
            guard error == nil, nextIndex < etags.count else { return nil }
            defer { nextIndex += 1 }
            return nextIndex
        }
    }

    func sent(_ bytes: Int64, part: Int) {
        lock.withLock {
            sentByPart[part] = bytes
            progress?(sentByPart.reduce(0, +))
        }
    }

    func finished(_ part: Int, etag: String) {
        lock.withLock { etags[part] = etag }
    }

    func failed(_ error: Error) {
        lock.withLock { self.error = self.error ?? error }
    }

    func result() throws -> [String] {
        try lock.withLock {
            if let error { throw error }
            return etags.map { $0! }
        }
    }
}
