import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum EngineKind: String, Codable, Sendable, CaseIterable {
    case sqlite
    case postgresql
}

public enum SnapshotReason: String, Codable, Sendable, CaseIterable {
    case manual
    case preUpgrade = "pre-upgrade"
    case preRestore = "pre-restore"
    case preDowngrade = "pre-downgrade"
    /// Taken by `upgrade` right after its last step: the state a salvage (`--keep-new`) compares
    /// the application's later writes against.
    case postUpgrade = "post-upgrade"
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
    /// When `verify --restore` last restored this snapshot into a staged copy and found it whole.
    @NullEncoded public var restoreVerifiedAt: Date?
    /// The snapshot's hot copy (see HotCopies.swift); nil, and left out of the JSON, when it has none.
    public var hot: HotCopy?
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
        case restoreVerifiedAt = "restore_verified_at"
        case hot
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
    /// `2026-11-27T07:16:22.429Z`: UTC, milliseconds. Written by hand: a listing formats and parses
    /// one per snapshot, and Foundation's format styles cost more than the rest of the listing.
    public static func string(from date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `string(from:)`'s bytes, appended: `list --json` and the index write one or two per snapshot.
    static func append(_ date: Date, to bytes: inout [UInt8]) {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        let millis = Int(ms - Int64(seconds) * 1000)
        var t = tm()
        gmtime_r(&seconds, &t)
        func digits(_ n: Int, _ width: Int, then separator: UInt8) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            while n / divisor >= 10 { divisor *= 10 }
            var rest = n
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
            bytes.append(separator)
        }
        let year = Int(t.tm_year) + 1900
        if year < 0 { bytes.append(UInt8(ascii: "-")) }
        digits(abs(year), 1, then: UInt8(ascii: "-"))
        digits(Int(t.tm_mon) + 1, 2, then: UInt8(ascii: "-"))
        digits(Int(t.tm_mday), 2, then: UInt8(ascii: "T"))
        digits(Int(t.tm_hour), 2, then: UInt8(ascii: ":"))
        digits(Int(t.tm_min), 2, then: UInt8(ascii: ":"))
        digits(Int(t.tm_sec), 2, then: UInt8(ascii: "."))
        digits(millis, 3, then: UInt8(ascii: "Z"))
    }

    /// The one time format of human output: `2026-11-27 07:16:22Z` (UTC, to the second).
    public static func human(_ date: Date) -> String {
        let full = string(from: date)
        return full.prefix(10) + " " + full.dropFirst(11).prefix(8) + "Z"
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; nil for anything else.
    public static func date(from string: String) -> Date? {
        var text = string
        return text.withUTF8(date(fromUTF8:))
    }

    static func date(fromUTF8 b: UnsafeBufferPointer<UInt8>) -> Date? {
        func digits(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= b.count else { return nil }
            var n = 0
            for c in b[at..<at + count] {
                guard c >= 48 && c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58,
              let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
              let hour = digits(11, 2), let minute = digits(14, 2), let second = digits(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == 46 {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let h = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 58, let m = digits(i + 4, 2) {
            offset = (h * 3600 + m * 60) * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900)
        t.tm_mon = Int32(month - 1)
        t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour)
        t.tm_min = Int32(minute)
        t.tm_sec = Int32(second)
        let seconds = timegm(&t)
        // Milliseconds are what ids and manifests carry; rounding keeps .429 from reading as .4289999.
        let millis = (fraction * 1000).rounded()
        return Date(timeIntervalSince1970: Double(seconds - offset) + millis / 1000)
    }
}
