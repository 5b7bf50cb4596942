import Foundation
import MigsnapCore

/// How long a lock lease lasts and how often its holder renews it. Tests shorten both.
struct S3LeaseTiming: Sendable {
    var length: TimeInterval = 60
    var renewEvery: TimeInterval = 20
    /// How often a waiting run looks again.
    var poll: TimeInterval = 1
}

/// Who holds the lock, as the lock object's JSON says.
struct S3LockHolder: Codable, Equatable {
    var owner: String
    var host: String
    var pid: Int32
    var purpose: String
    var since: String
    var expires: String
    var leaseSeconds: Double

    enum CodingKeys: String, CodingKey {
        case owner, host, pid, purpose, since, expires
        case leaseSeconds = "lease_seconds"
    }
}

/// The store lock on an object store: an object created only if absent (`If-None-Match: *`),
/// holding a lease that a background thread renews. A killed holder stops renewing, and once the
/// lease has run out by the server's clock another run removes the object and takes the lock.
///
/// An expired lease is removed with `If-Match` on the ETag it was judged by, so of two runs that
/// find the same expired lease only one removes it; the other's delete fails (412) because the
/// winner's new lock has another ETag, and it waits. A lease renewed between the read and the
/// delete is left alone the same way. Known limit: a server without conditional deletes (501)
/// gets a plain delete, and there two runs finding the same expired lease at the same moment can
/// both proceed (the loser's renewal thread then sees the lock is not its own and stops).
final class S3StoreLock: StoreLock {
    private let renewer: LeaseRenewer

    /// Holds the lock just created (`etag`: its ETag, where known) and starts renewing it.
    private init(holding holder: S3LockHolder, etag: String?, client: S3Client, bucket: String, key: String, timing: S3LeaseTiming) {
        let renewer = LeaseRenewer(client: client, bucket: bucket, key: key, holder: holder, etag: etag, timing: timing)
        self.renewer = renewer
        Thread { renewer.run() }.start()
    }

    static func acquire(client: S3Client, bucket: String, key: String, location: String, purpose: String,
                        wait: TimeInterval, timing: S3LeaseTiming) throws -> S3StoreLock {
        let deadline = Date().addingTimeInterval(wait)
        let token = UUID().uuidString.lowercased()
        var serverOffset: TimeInterval = 0
        while true {
            let now = Date().addingTimeInterval(serverOffset)
            let holder = S3LockHolder(owner: token, host: hostName(), pid: getpid(), purpose: purpose,
                                      since: RFC3339.string(from: now), expires: RFC3339.string(from: now.addingTimeInterval(timing.length)),
                                      leaseSeconds: timing.length)
            let created = try client.send(
                S3Client.S3Request(method: "PUT", bucket: bucket, key: key, headers: [("If-None-Match", "*"), ("Content-Type", "application/json")],
                                   body: .data(try encode(holder))),
                accepting: [412, 501])
            if created.status == 501 {
                throw MigsnapError.refused(
                    "The S3 server at \(client.configuration.endpoint) lacks conditional writes (If-None-Match), which the store lock of \(location) needs.",
                    hint: "Use a server with conditional PUT (AWS S3, MinIO, OpenStack Swift 2.35 or later), or a directory store.")
            }
            if created.status != 412 {
                return S3StoreLock(holding: holder, etag: created.etag, client: client, bucket: bucket, key: key, timing: timing)
            }
            // Someone holds it: is the lease still running, by the server's clock?
            guard let current = try client.getObject(bucket: bucket, key: key) else { continue }
            if let date = current.serverDate { serverOffset = date.timeIntervalSinceNow }
            let other = try? JSONDecoder().decode(S3LockHolder.self, from: current.body)
            if other?.owner == token {
                // Our create went through but its answer was lost, and a retry found it there.
                return S3StoreLock(holding: holder, etag: current.etag, client: client, bucket: bucket, key: key, timing: timing)
            }
            if isExpired(other, lastModified: current.lastModified, serverDate: current.serverDate) {
                try removeExpired(client: client, bucket: bucket, key: key, etag: current.etag)
                continue
            }
            if Date() >= deadline {
                let who = other.map { "host \($0.host), pid \($0.pid), \($0.purpose), since \($0.since)" } ?? "an unreadable lock object"
                throw MigsnapError.refused(
                    "Another migsnap run holds the store lock (\(who)).",
                    hint: "Wait for it to finish and try again; a killed run's lock expires \(Int(other?.leaseSeconds ?? timing.length)) s after its last renewal.")
            }
            Thread.sleep(forTimeInterval: max(0.05, min(timing.poll, deadline.timeIntervalSinceNow)))
        }
    }

    /// Deletes the lock object only if it is still the one with `etag` (the expired lease that was
    /// read); whether it was removed or someone else changed it first, the caller looks again.
    static func removeExpired(client: S3Client, bucket: String, key: String, etag: String?) throws {
        guard let etag, !etag.isEmpty, try delete(client: client, bucket: bucket, key: key, ifMatch: etag) != 501 else {
            try client.deleteObject(bucket: bucket, key: key)
            return
        }
    }

    /// Deletes the lock object only if its ETag is still `etag`; returns the status: 2xx or 404 it
    /// is gone, 412 it changed and stays, 501 the server cannot delete conditionally.
    static func delete(client: S3Client, bucket: String, key: String, ifMatch etag: String) throws -> Int {
        try client.send(S3Client.S3Request(method: "DELETE", bucket: bucket, key: key, headers: [("If-Match", etag)]),
                        accepting: [412, 501], missingKeyIsNil: true).status
    }

    /// The lease runs from the object's last write (the server's clock) for the holder's lease
    /// length; an unreadable lock object is treated as a lease of the default length.
    static func isExpired(_ holder: S3LockHolder?, lastModified: Date?, serverDate: Date?) -> Bool {
        guard let serverDate else { return false }
        let length = holder?.leaseSeconds ?? S3LeaseTiming().length
        if let lastModified { return serverDate > lastModified.addingTimeInterval(length) }
        guard let expires = holder.flatMap({ RFC3339.date(from: $0.expires) }) else { return false }
        return serverDate > expires
    }

    /// Stops renewing, then removes the lock object if it is still ours.
    func release() {
        renewer.stopAndRemove()
    }

    deinit {
        renewer.stopAndRemove()
    }

    fileprivate static func encode(_ holder: S3LockHolder) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(holder)
    }

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The renewal thread's state; it does not keep the lock alive, so freeing the lock releases it.
private final class LeaseRenewer: @unchecked Sendable {
    private let client: S3Client
    private let bucket: String
    private let key: String
    private let timing: S3LeaseTiming
    private var holder: S3LockHolder
    /// The ETag of the lock object as this run last wrote it; nil when a write's outcome is unknown.
    private var etag: String?
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var removed = false

    init(client: S3Client, bucket: String, key: String, holder: S3LockHolder, etag: String?, timing: S3LeaseTiming) {
        self.client = client
        self.bucket = bucket
        self.key = key
        self.holder = holder
        self.etag = etag
        self.timing = timing
    }

    /// Every `renewEvery`: read the lock, stop if it is no longer ours, else write it again (which
    /// moves its last-modified time, where the lease starts). A failed renewal tries again sooner.
    func run() {
        var interval = timing.renewEvery
        while true {
            condition.lock()
            let deadline = Date().addingTimeInterval(interval)
            while !stopping && condition.wait(until: deadline) {}
            let stop = stopping
            condition.unlock()
            if stop || !renew(&interval) { break }
        }
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// False when the lock is no longer ours.
    private func renew(_ interval: inout TimeInterval) -> Bool {
        do {
            guard let current = try client.getObject(bucket: bucket, key: key), isOurs(current.body) else { return false }
            holder.expires = RFC3339.string(from: (current.serverDate ?? Date()).addingTimeInterval(timing.length))
            etag = nil
            etag = try client.send(S3Client.S3Request(method: "PUT", bucket: bucket, key: key, body: .data(S3StoreLock.encode(holder)))).etag
            interval = timing.renewEvery
        } catch {
            interval = max(0.2, timing.renewEvery / 4)
        }
        return true
    }

    func stopAndRemove() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        let first = !removed
        removed = true
        condition.unlock()
        guard first else { return }
        // One request where the server deletes conditionally: only the object as this run wrote it
        // goes. Refused (412: not as last written, or the ETag was lost with an answer) or not
        // supported (501), the lock is read to see whether it is still ours.
        if let etag, let status = try? S3StoreLock.delete(client: client, bucket: bucket, key: key, ifMatch: etag), status != 412 && status != 501 {
            return
        }
        if let current = try? client.getObject(bucket: bucket, key: key), isOurs(current.body) {
            try? client.deleteObject(bucket: bucket, key: key)
        }
    }

    private func isOurs(_ body: Data) -> Bool {
        (try? JSONDecoder().decode(S3LockHolder.self, from: body))?.owner == holder.owner
    }
}
