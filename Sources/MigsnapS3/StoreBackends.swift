import Foundation
import MigsnapCore

/// The one place that turns a store location into a backend, so that commands never construct a
/// concrete store: `s3://BUCKET/PREFIX` is a bucket, anything else a directory path.
public enum StoreBackends {
    public static func open(_ location: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StoreBackend {
        if location.hasPrefix("s3://") {
            return try S3Backend(url: location, environment: environment)
        }
        return DirectoryBackend(directory: location)
    }
}
