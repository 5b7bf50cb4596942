import Foundation
import MigsnapCore
import MigsnapS3
import Testing

/// The backends the conformance suite runs on. Each fixture is a fresh, empty place.
enum BackendKind: String, CaseIterable, CustomTestStringConvertible {
    case directory
    case s3

    var testDescription: String { rawValue }

    func make() throws -> Fixture {
        switch self {
        case .directory:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-conformance-\(UUID().uuidString)").path
            return Fixture(backend: DirectoryBackend(directory: dir),
                           second: { DirectoryBackend(directory: dir) },
                           plant: { name, data in
                               try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                               try data.write(to: URL(fileURLWithPath: dir + "/" + name))
                           },
                           remove: { try? FileManager.default.removeItem(atPath: dir) })
        case .s3:
            let env = try S3Server.environment()
            let bucket = try S3Server.bucket()
            let url = "s3://\(bucket)/conformance-\(UUID().uuidString.lowercased())"
            let client = try S3Client(configuration: S3Configuration.fromEnvironment(env))
            let prefix = String(url.dropFirst("s3://\(bucket)/".count))
            return Fixture(backend: try StoreBackends.open(url, environment: env),
                           second: { try StoreBackends.open(url, environment: env) },
                           plant: { name, data in _ = try client.putObject(bucket: bucket, key: prefix + "/" + name, data: data) },
                           remove: {})
        }
    }
}

/// One store location for a test: its backend, a second backend on the same place (another run),
/// a way to put a foreign object there, and its removal when the test ends.
final class Fixture {
    let backend: StoreBackend
    private let makeSecond: () throws -> StoreBackend
    private let planter: (String, Data) throws -> Void
    private let remove: () -> Void

    init(backend: StoreBackend, second: @escaping () throws -> StoreBackend, plant: @escaping (String, Data) throws -> Void,
         remove: @escaping () -> Void) {
        self.backend = backend
        self.makeSecond = second
        self.planter = plant
        self.remove = remove
    }

    func initialized() throws -> StoreBackend {
        try backend.initialize()
        return backend
    }

    func second() throws -> StoreBackend { try makeSecond() }
    func plant(_ name: String, _ data: Data) throws { try planter(name, data) }

    deinit { remove() }
}

/// The S3-compatible server scripts/test starts. Missing, the S3 cases fail: they never skip.
enum S3Server {
    static func environment() throws -> [String: String] {
        let env = ProcessInfo.processInfo.environment
        guard let endpoint = env["MIGSNAP_TEST_S3_ENDPOINT"], let key = env["MIGSNAP_TEST_S3_ACCESS_KEY"],
              let secret = env["MIGSNAP_TEST_S3_SECRET_KEY"] else {
            throw MigsnapError.failed("MIGSNAP_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY are unset: run the tests through scripts/test.")
        }
        return ["AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_REGION": env["MIGSNAP_TEST_S3_REGION"] ?? "us-east-1"]
    }

    private static let made = BucketOnce()

    /// One bucket for the suite; each fixture takes a prefix of its own in it.
    static func bucket() throws -> String {
        try made.get {
            let name = "migsnap-conformance-\(UUID().uuidString.lowercased().prefix(8))"
            try S3Client(configuration: S3Configuration.fromEnvironment(try environment())).createBucket(name)
            return name
        }
    }
}

final class BucketOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var name: String?

    func get(_ make: () throws -> String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let name { return name }
        let made = try make()
        name = made
        return made
    }
}
