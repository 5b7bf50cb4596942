import Foundation
import MigsnapCore

/// Where an S3 store lives: `s3://BUCKET/PREFIX`. The prefix may be empty (the whole bucket).
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public let bucket: String
    /// Without a leading or trailing slash; empty for the bucket's top level.
    public let prefix: String

    public init(bucket: String, prefix: String) throws {
        guard S3Location.isValidBucket(bucket) else {
            throw MigsnapError.invalidInput(
                "'\(UserText.line(bucket))' is not a valid S3 bucket name.",
                hint: "Bucket names have 3 to 63 characters: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit.")
        }
        let segments = prefix.split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments where segment == "." || segment == ".." || segment.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw MigsnapError.invalidInput("The S3 prefix '\(UserText.line(prefix))' has a '.', '..' or control-character segment.")
        }
        self.bucket = bucket
        self.prefix = segments.joined(separator: "/")
    }

    /// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX`.
    public init(url: String) throws {
        guard url.lowercased().hasPrefix("s3://") else {
            throw MigsnapError.invalidInput("'\(UserText.line(url))' is not an s3:// URL.", hint: "Write the store as s3://BUCKET/PREFIX.")
        }
        let rest = url.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else {
            throw MigsnapError.invalidInput("The store URL '\(UserText.line(url))' names no bucket.", hint: "Write the store as s3://BUCKET/PREFIX.")
        }
        try self.init(bucket: String(bucket), prefix: String(rest.dropFirst(bucket.count)))
    }

    /// The object key of a store object.
    public func key(_ name: String) -> String {
        prefix.isEmpty ? name : "\(prefix)/\(name)"
    }

    /// What every key of the store starts with: the prefix and a slash, or nothing.
    public var keyPrefix: String {
        prefix.isEmpty ? "" : prefix + "/"
    }

    public var description: String {
        prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)"
    }

    /// The S3 rules for new buckets: 3-63 characters of `a-z 0-9 . -`, a letter or digit at each end,
    /// no `..`, not an IPv4 address.
    static func isValidBucket(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        let alphanumeric: (UInt8) -> Bool = { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
        guard bytes.allSatisfy({ alphanumeric($0) || $0 == 0x2E || $0 == 0x2D }),
              alphanumeric(bytes.first!), alphanumeric(bytes.last!), !name.contains("..") else { return false }
        let quads = name.split(separator: ".")
        return !(quads.count == 4 && quads.allSatisfy { UInt8($0) != nil })
    }
}
