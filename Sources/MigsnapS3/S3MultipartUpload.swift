import Foundation
import MigsnapCore

/// A file sent to S3 while its writer is still appending to it: a part goes up as soon as the file
/// has grown past it, up to `concurrency` parts at a time on their own threads, each read by
/// libcurl straight from the file (so a retry can send it again, and memory stays a few small
/// buffers whatever the size). A file no longer than one part goes up with one PUT at the end.
/// The object appears only when the upload completes; on any failure, or `abort`, the multipart
/// upload is aborted (or, with the server gone, left as debris for `cleanBackendDebris`).
final class S3MultipartUpload: GrowingUpload, @unchecked Sendable {
    let client: S3Client
    let bucket: String
    let key: String
    let file: String
    let partSize: Int64
    let concurrency: Int
    private let progress: ((Int64) -> Void)?

    /// Guards everything below; signalled when a part thread ends.
    private let state = NSCondition()
    private var uploadID: String?
    private var queue: [Part] = []
    /// Where the next part starts: the file up to here is queued or sent.
    private var queuedUpTo: Int64 = 0
    private var partCount = 0
    private var etags: [Int: String] = [:]
    private var sentByPart: [Int: Int64] = [:]
    private var sent: Int64 = 0
    private var running = 0
    private var failure: Error?

    private struct Part {
        var number: Int
        var offset: Int64
        var length: Int64
    }

    init(client: S3Client, bucket: String, key: String, file: String, partSize: Int64, concurrency: Int,
         progress: ((Int64) -> Void)?) {
        self.client = client
        self.bucket = bucket
        self.key = key
        self.file = file
        self.partSize = partSize
        self.concurrency = max(1, concurrency)
        self.progress = progress
    }

    /// S3 allows 10,000 parts, and the final size is not known while the file grows: every
    /// thousand parts the part size grows by `partSize`, so 10,000 parts of 8 MiB carry 430 GiB.
    private func length(ofPart number: Int) -> Int64 {
        partSize * Int64(1 + (number - 1) / 1000)
    }

    func grew(to size: Int64) throws {
        try queueParts(upTo: size, final: false)
    }

    func finish(size: Int64) throws {
        let single = state.withLock { uploadID == nil && queuedUpTo == 0 && size <= partSize }
        if single {
            try client.putObject(bucket: bucket, key: key, file: file, progress: progress)
            return
        }
        try queueParts(upTo: size, final: true)
        let (id, parts) = try state.withLock {
            while running > 0 { state.wait() }
            if let failure { throw failure }
            return (uploadID!, (1...partCount).map { etags[$0]! })
        }
        do {
            try client.completeMultipartUpload(bucket: bucket, key: key, uploadID: id, etags: parts)
        } catch {
            abort()
            throw error
        }
    }

    func abort() {
        let id: String? = state.withLock {
            failure = failure ?? MigsnapError.failed("The upload of s3://\(bucket)/\(key) was abandoned.")
            while running > 0 { state.wait() }
            defer { uploadID = nil }
            return uploadID
        }
        if let id {
            try? client.abortMultipartUpload(bucket: bucket, key: key, uploadID: id)
        }
    }

    /// Queues every whole part below `size` (with `final`, the rest too) and starts part threads.
    private func queueParts(upTo size: Int64, final: Bool) throws {
        try state.withLock {
            if let failure { throw failure }
        }
        let ready = state.withLock { size - queuedUpTo >= length(ofPart: partCount + 1) || (final && size > queuedUpTo) }
        guard ready else { return }
        // The upload is created once the first part is ready, so a small file needs only its PUT.
        if state.withLock({ uploadID == nil }) {
            let id = try client.createMultipartUpload(bucket: bucket, key: key)
            state.withLock { uploadID = id }
        }
        state.withLock {
            while true {
                let length = min(length(ofPart: partCount + 1), size - queuedUpTo)
                guard length > 0, final || length == self.length(ofPart: partCount + 1) else { break }
                partCount += 1
                queue.append(Part(number: partCount, offset: queuedUpTo, length: length))
                queuedUpTo += length
                if running < concurrency {
                    running += 1
                    Thread { [self] in sendParts() }.start()
                }
            }
        }
    }

    /// A part thread: sends queued parts until none is left or one failed.
    private func sendParts() {
        while true {
            let next: (part: Part, uploadID: String)? = state.withLock {
                guard failure == nil, !queue.isEmpty, let uploadID else {
                    running -= 1
                    state.broadcast()
                    return nil
                }
                return (queue.removeFirst(), uploadID)
            }
            guard let (part, uploadID) = next else { return }
            do {
                let etag = try client.uploadPart(bucket: bucket, key: key, uploadID: uploadID, number: part.number, file: file,
                                                 offset: part.offset, length: part.length) { sent in
                    self.state.withLock {
                        self.sent += sent - (self.sentByPart[part.number] ?? 0)
                        self.sentByPart[part.number] = sent
                        self.progress?(self.sent)
                    }
                }
                state.withLock { etags[part.number] = etag }
            } catch {
                state.withLock { failure = failure ?? error }
            }
        }
    }
}
