import Foundation
import MigsnapCore
@testable import MigsnapS3
import Testing

@Suite struct S3LockTests {
    private func refusal(_ body: () throws -> Void) -> String? {
        do {
            try body()
        } catch let MigsnapError.refused(message, _) {
            return message
        } catch {
            return "unexpected \(error)"
        }
        return nil
    }

    @Test func secondRunIsRefusedNamingTheHolder() throws {
        let first = try TestServer.backend()
        let second = try TestServer.backend(in: first.s3.bucket)
        let lock = try first.lock(purpose: "upgrade to head", wait: 0)
        let message = refusal { _ = try second.lock(purpose: "prune", wait: 1.5) }
        #expect(message?.hasPrefix("Another migsnap run holds the store lock (host ") == true)
        #expect(message?.contains("pid \(getpid()), upgrade to head, since ") == true)
        lock.release()
        let again = try second.lock(purpose: "prune", wait: 0)
        again.release()
        #expect(try first.client.getObject(bucket: first.s3.bucket, key: first.s3.key(".lock")) == nil)
    }

    @Test func freeingTheValueReleasesTheLock() throws {
        let backend = try TestServer.backend()
        var lock: StoreLock? = try backend.lock(purpose: "snapshot", wait: 0)
        #expect(lock != nil)
        lock = nil
        #expect(try backend.client.getObject(bucket: backend.s3.bucket, key: backend.s3.key(".lock")) == nil)
    }

    @Test func deadHoldersLeaseExpires() throws {
        let backend = try TestServer.backend()
        let dead = S3LockHolder(owner: "someone-else", host: "gone-host", pid: 99999, purpose: "killed upgrade",
                                since: RFC3339.string(from: Date()), expires: RFC3339.string(from: Date().addingTimeInterval(2)), leaseSeconds: 2)
        try backend.client.putObject(bucket: backend.s3.bucket, key: backend.s3.key(".lock"), data: JSONEncoder().encode(dead))
        let message = refusal { _ = try backend.lock(purpose: "restore", wait: 0) }
        #expect(message?.contains("host gone-host, pid 99999, killed upgrade") == true)
        let started = Date()
        let lock = try backend.lock(purpose: "restore", wait: 15)
        #expect(Date().timeIntervalSince(started) < 10)
        lock.release()
    }

    @Test func anExpiredLeaseIsRemovedOnlyIfItIsStillTheOneThatWasRead() throws {
        // Two runs read the same expired lease; the first removes it and takes the lock. The second's
        // removal, conditional on the ETag it read, must leave the first's lock alone.
        let backend = try TestServer.backend()
        let key = backend.s3.key(".lock")
        let dead = S3LockHolder(owner: "dead", host: "gone-host", pid: 99999, purpose: "killed upgrade",
                                since: "", expires: "", leaseSeconds: 1)
        try backend.client.putObject(bucket: backend.s3.bucket, key: key, data: JSONEncoder().encode(dead))
        let expiredTag = try #require(try backend.client.headObject(bucket: backend.s3.bucket, key: key)).etag
        Thread.sleep(forTimeInterval: 2.5)

        let lock = try backend.lock(purpose: "the winner", wait: 10)
        try S3StoreLock.removeExpired(client: backend.client, bucket: backend.s3.bucket, key: key, etag: expiredTag)
        let current = try #require(try backend.client.getObject(bucket: backend.s3.bucket, key: key))
        #expect(try JSONDecoder().decode(S3LockHolder.self, from: current.body).purpose == "the winner")

        // The one it was judged by is removed.
        try S3StoreLock.removeExpired(client: backend.client, bucket: backend.s3.bucket, key: key, etag: current.etag)
        #expect(try backend.client.getObject(bucket: backend.s3.bucket, key: key) == nil)
        lock.release()
    }

    @Test func renewalKeepsALiveHolderPastItsLease() throws {
        let timing = S3LeaseTiming(length: 2, renewEvery: 0.5, poll: 0.2)
        let holder = try TestServer.backend(lease: timing)
        let other = try TestServer.backend(lease: timing, in: holder.s3.bucket)
        let lock = try holder.lock(purpose: "long upgrade", wait: 0)
        Thread.sleep(forTimeInterval: 5)
        let message = refusal { _ = try other.lock(purpose: "prune", wait: 1) }
        #expect(message?.contains("long upgrade") == true)
        lock.release()
        try other.lock(purpose: "prune", wait: 0).release()
    }

    @Test func releaseIsOneConditionalDeleteAndLeavesAnotherRunsLockAlone() throws {
        let lines = TraceLines()
        let plain = try TestServer.backend()
        let client = S3Client(configuration: plain.client.configuration, trace: S3RequestTrace(keyPrefix: plain.s3.keyPrefix) { lines.append($0) })
        let backend = S3Backend(location: plain.s3, client: client)
        try backend.lock(purpose: "snapshot", wait: 0).release()
        #expect(lines.taken().map { $0.split(separator: " ").prefix(4).joined(separator: " ") } == ["s3: PUT .lock if-none-match", "s3: DELETE .lock if-match"])
        #expect(try client.getObject(bucket: backend.s3.bucket, key: backend.s3.key(".lock")) == nil)

        // This run's lease ran out while it stalled, and another run took the lock.
        let lock = try backend.lock(purpose: "stalled upgrade", wait: 0)
        let other = S3LockHolder(owner: "other", host: "deploy-2", pid: 4242, purpose: "prune", since: "", expires: "", leaseSeconds: 60)
        try client.putObject(bucket: backend.s3.bucket, key: backend.s3.key(".lock"), data: JSONEncoder().encode(other))
        lock.release()
        let current = try #require(try client.getObject(bucket: backend.s3.bucket, key: backend.s3.key(".lock")))
        #expect(try JSONDecoder().decode(S3LockHolder.self, from: current.body).owner == "other")
    }

    @Test func expiryIsJudgedByTheServersClock() {
        let written = Date(timeIntervalSince1970: 1_000_000)
        let holder = S3LockHolder(owner: "o", host: "h", pid: 1, purpose: "p", since: "", expires: "", leaseSeconds: 60)
        #expect(!S3StoreLock.isExpired(holder, lastModified: written, serverDate: written.addingTimeInterval(59)))
        #expect(S3StoreLock.isExpired(holder, lastModified: written, serverDate: written.addingTimeInterval(61)))
        #expect(!S3StoreLock.isExpired(holder, lastModified: written, serverDate: nil))
    }
}

/// Trace lines collected from the threads that send requests.
final class TraceLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }

    /// The lines so far, and none after.
    func taken() -> [String] {
        lock.withLock {
            defer { lines = [] }
            return lines
        }
    }
}
