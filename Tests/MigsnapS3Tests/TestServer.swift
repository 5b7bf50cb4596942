import Foundation
import MigsnapCore
@testable import MigsnapS3
import Testing

/// The S3-compatible server that scripts/test starts (scripts/s3-server). Tests that need it fail,
/// never skip, when it is not there.
enum TestServer {
    static func configuration(secret: String? = nil, endpoint: String? = nil) throws -> S3Configuration {
        let env = ProcessInfo.processInfo.environment
        guard let serverEndpoint = env["MIGSNAP_TEST_S3_ENDPOINT"], let key = env["MIGSNAP_TEST_S3_ACCESS_KEY"],
              let serverSecret = env["MIGSNAP_TEST_S3_SECRET_KEY"] else {
            throw MigsnapError.failed("MIGSNAP_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY are unset: run scripts/test, or "
                + "eval \"$(scripts/s3-server start DIR)\" and export them from S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY.")
        }
        return try S3Configuration(endpoint: endpoint ?? serverEndpoint, region: env["MIGSNAP_TEST_S3_REGION"] ?? "us-east-1",
                                   credentials: S3Credentials(accessKeyID: key, secretAccessKey: secret ?? serverSecret))
    }

    static var secret: String {
        ProcessInfo.processInfo.environment["MIGSNAP_TEST_S3_SECRET_KEY"] ?? "unset"
    }

    static func client(maxAttempts: Int = 4) throws -> S3Client {
        try S3Client(configuration: configuration(), maxAttempts: maxAttempts, firstBackoff: 0.05)
    }

    /// A new bucket of its own for one test, so tests can run in parallel.
    static func freshBucket(_ client: S3Client) throws -> String {
        let bucket = "migsnap-test-\(UUID().uuidString.lowercased().prefix(13))"
        try client.createBucket(bucket)
        return bucket
    }

    static func backend(prefix: String = "store", lease: S3LeaseTiming = S3LeaseTiming(), partSize: Int64 = 8 << 20,
                        orphanGracePeriod: TimeInterval = 15 * 60, in bucket: String? = nil) throws -> S3Backend {
        let client = try client()
        let bucket = try bucket ?? freshBucket(client)
        return S3Backend(location: try S3Location(bucket: bucket, prefix: prefix), client: client, partSize: partSize,
                         lease: lease, orphanGracePeriod: orphanGracePeriod)
    }

    /// A file of `size` random bytes in a new temporary directory.
    static func randomFile(size: Int) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-s3-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("payload").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        var generator = SystemRandomNumberGenerator()
        var left = size
        while left > 0 {
            let n = min(left, 1 << 20)
            handle.write(Data((0..<n / 8 + 1).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }.prefix(n)))
            left -= n
        }
        try handle.close()
        return path
    }
}

/// Runs `body(i)` for `0..<count` on `threads` threads and waits.
func concurrently(_ count: Int, threads: Int = 8, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let next = Counter()
    let errors = Counter()
    let group = DispatchGroup()
    for _ in 0..<threads {
        group.enter()
        Thread {
            defer { group.leave() }
            while let i = next.take(below: count) {
                do { try body(i) } catch { errors.record(error) }
            }
        }.start()
    }
    group.wait()
    if let error = errors.firstError { throw error }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    private(set) var firstError: Error?

    func take(below limit: Int) -> Int? {
        lock.withLock {
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }

    func record(_ error: Error) {
        lock.withLock { firstError = firstError ?? error }
    }
}
