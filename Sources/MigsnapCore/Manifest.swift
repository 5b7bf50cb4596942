import Foundation

public enum EngineKind: String, Codable, Sendable, CaseIterable {
    case sqlite
    case postgresql
}

public enum SnapshotReason: String, Codable, Sendable, CaseIterable {
    case manual
    case preUpgrade = "pre-upgrade"
    case preRestore = "pre-restore"
    case preDowngrade = "pre-downgrade"
}

/// What the store knows of one snapshot. Written last, so a snapshot exists once this exists.
/// The keys are part of the product contract (DESIGN.md, "JSON shapes"): rename nothing.
public struct Manifest: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1
    /// The format versions this migsnap reads; a manifest of another is reported, not guessed at.
    public static let supportedFormatVersions: Set<Int> = [1]

    public var id: String
    public var createdAt: Date
    public var engine: EngineKind
    /// The revisions the database was at, sorted; empty at base.
    public var revisions: [String]
    public var reason: SnapshotReason
    /// For `pre-upgrade`: the revision the step went to. Otherwise nil.
    @NullEncoded public var targetRevision: String?
    /// Size of the uncompressed database image (SQLite file, or pg_dump's archive).
    public var rawBytes: Int64
    /// Size of the stored file.
    public var storedBytes: Int64
    /// SHA-256 of the stored file, lowercase hex.
    public var sha256: String
    public var pinned: Bool
    public var tags: [String]
    @NullEncoded public var note: String?
    /// Redacted: a SQLite file path, or host:port/dbname. Never a password.
    public var database: String
    /// The stored file's name inside the store: always `<id>.<extension>`, derived, never trusted.
    public var file: String
    /// How the payload is encrypted; nil for a plain payload.
    @NullEncoded public var encryption: PayloadEncryption?
    /// The tables, columns and row counts at the snapshot, from which guards tell what a
    /// migration removed. Absent in manifests of older versions.
    public var shape: DatabaseShape?
    public var formatVersion: Int

    public init(
        id: String, createdAt: Date, engine: EngineKind, revisions: [String], reason: SnapshotReason,
        targetRevision: String? = nil, rawBytes: Int64, storedBytes: Int64, sha256: String,
        pinned: Bool = false, tags: [String] = [], note: String? = nil, database: String, file: String,
        encryption: PayloadEncryption? = nil, shape: DatabaseShape? = nil, formatVersion: Int = Manifest.currentFormatVersion
    ) {
        self.id = id
        self.createdAt = createdAt
        self.engine = engine
        self.revisions = revisions
        self.reason = reason
        self.targetRevision = targetRevision
        self.rawBytes = rawBytes
        self.storedBytes = storedBytes
        self.sha256 = sha256
        self.pinned = pinned
        self.tags = tags
        self.note = note
        self.database = database
        self.file = file
        self.encryption = encryption
        self.shape = shape
        self.formatVersion = formatVersion
    }

    enum CodingKeys: String, CodingKey {
        case id
        case createdAt = "created_at"
        case engine
        case revisions
        case reason
        case targetRevision = "target_revision"
        case rawBytes = "raw_bytes"
        case storedBytes = "stored_bytes"
        case sha256
        case pinned
        case tags
        case note
        case database
        case file
        case encryption
        case shape
        case formatVersion = "format_version"
    }
}

/// An encrypted payload: the format and the public recipients it was encrypted to. Never a key.
public struct PayloadEncryption: Codable, Sendable, Equatable {
    public static let ageV1 = "age-v1"
    public var format: String
    public var recipients: [String]

    public init(format: String, recipients: [String]) {
        self.format = format
        self.recipients = recipients
    }
}

/// An optional that JSON shows as `null` when absent, instead of leaving the key out: scripts
/// read `"target_revision": null`, and the contract's keys are always there.
@propertyWrapper
public struct NullEncoded<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A missing key reads as nil, as it would for a plain optional.
    public func decode<V>(_ type: NullEncoded<V>.Type, forKey key: Key) throws -> NullEncoded<V> {
        try decodeIfPresent(type, forKey: key) ?? NullEncoded(wrappedValue: nil)
    }
}

/// JSON as the product prints and stores it: sorted keys, RFC 3339 UTC times with milliseconds.
public enum JSON {
    public static func encoder(pretty: Bool = true) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(RFC3339.string(from: date))
        }
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let s = try c.decode(String.self)
            guard let date = RFC3339.date(from: s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 time: \(s)")
            }
            return date
        }
        return d
    }
}

public enum RFC3339 {
    public static func string(from date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    public static func date(from string: String) -> Date? {
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt).parse(string) {
            return d
        }
        return try? Date.ISO8601FormatStyle(timeZone: .gmt).parse(string)
    }
}
