import Foundation

/// Manifests to and from JSON bytes by hand, for the paths that handle thousands of them at once:
/// the listing index, `list --json` and `prune --json`. Foundation's coders on Linux spend about
/// 10 µs on a manifest each way, which for 10,000 snapshots is more than all the rest of a listing.
///
/// The writer's output is byte for byte what `JSON.encoder()` writes for the same manifests (the
/// tests compare the two), so scripts see one shape whichever path printed it. The reader is strict
/// and reads the writer's layout only — its keys in its order — so anything else, such as an index
/// someone edited, fails to read and is rebuilt from the manifests instead of being half believed.
public enum ListingJSON {
    /// `list --json`: the bytes of `JSON.encoder().encode(manifests)`, sooner.
    public static func prettyArray(_ manifests: [Manifest]) -> [UInt8] {
        prettyArray(manifests, bytesEach: 640) { $0.write(to: &$1) }
    }

    /// `prune --json`: the bytes of `JSON.encoder().encode(decisions)`, sooner.
    public static func prettyArray(_ decisions: [RetentionDecision]) -> [UInt8] {
        prettyArray(decisions, bytesEach: 100) { $0.write(to: &$1) }
    }

    private static func prettyArray<T>(_ items: [T], bytesEach: Int, _ write: (T, inout JSONBytesWriter) -> Void) -> [UInt8] {
        var w = JSONBytesWriter(pretty: true, capacity: items.count * bytesEach)
        w.open(.openBracket)
        for item in items {
            w.element()
            write(item, &w)
        }
        w.close(.closeBracket)
        return w.bytes
    }
}

/// JSON bytes laid out as `JSON.encoder()` lays them out: keys in the order the caller writes them
/// (sorted by their UTF-8 bytes, where the output must match), `"key" : value` and two-space
/// indents when pretty, slashes unescaped, control characters escaped as Foundation escapes them.
struct JSONBytesWriter {
    private(set) var bytes: [UInt8] = []
    let pretty: Bool
    private var depth = 0
    /// Whether the innermost open container has no element yet.
    private var first = true

    init(pretty: Bool, capacity: Int = 0) {
        self.pretty = pretty
        bytes.reserveCapacity(capacity)
    }

    mutating func open(_ bracket: UInt8) {
        bytes.append(bracket)
        if pretty { bytes.append(.newline) }
        depth += 1
        first = true
    }

    /// Starts the next element of the open container (an array's value, an object's key).
    mutating func element() {
        if !first {
            bytes.append(.comma)
            if pretty { bytes.append(.newline) }
        }
        first = false
        if pretty { indent() }
    }

    mutating func close(_ bracket: UInt8) {
        depth -= 1
        if pretty {
            // An empty container too: Foundation writes `[`, a blank line, then the indented `]`.
            bytes.append(.newline)
            indent()
        }
        bytes.append(bracket)
        first = false
    }

    private mutating func indent() {
        for _ in 0..<depth {
            bytes.append(.space)
            bytes.append(.space)
        }
    }

    mutating func key(_ name: String) {
        element()
        string(name)
        if pretty {
            bytes.append(.space)
            bytes.append(.colon)
            bytes.append(.space)
        } else {
            bytes.append(.colon)
        }
    }

    mutating func string(_ text: String) {
        bytes.append(.quote)
        var text = text
        text.withUTF8 { utf8 in
            // Runs of bytes that need no escape are copied whole.
            var run = 0
            for (i, c) in utf8.enumerated() where c < 0x20 || c == .quote || c == .backslash {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run..<i]))
                run = i + 1
                switch c {
                case .quote, .backslash: escape(c)
                case 0x08: escape(UInt8(ascii: "b"))
                case 0x0C: escape(UInt8(ascii: "f"))
                case .newline: escape(UInt8(ascii: "n"))
                case 0x0D: escape(UInt8(ascii: "r"))
                case 0x09: escape(UInt8(ascii: "t"))
                default:
                    bytes.append(contentsOf: [.backslash, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              Self.hexDigits[Int(c >> 4)], Self.hexDigits[Int(c & 15)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[run...]))
        }
        bytes.append(.quote)
    }

    private mutating func escape(_ letter: UInt8) {
        bytes.append(.backslash)
        bytes.append(letter)
    }

    mutating func string(_ text: String?) {
        if let text { string(text) } else { null() }
    }

    mutating func strings(_ texts: [String]) {
        open(.openBracket)
        for text in texts {
            element()
            string(text)
        }
        close(.closeBracket)
    }

    mutating func int<T: FixedWidthInteger>(_ n: T) {
        if n < 0 { bytes.append(UInt8(ascii: "-")) }
        var rest = n.magnitude
        var divisor: T.Magnitude = 1
        while rest / divisor >= 10 { divisor *= 10 }
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        } while divisor > 0
    }

    mutating func bool(_ value: Bool) {
        bytes.append(contentsOf: value ? Self.trueBytes : Self.falseBytes)
    }

    mutating func null() {
        bytes.append(contentsOf: Self.nullBytes)
    }

    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)
    private static let nullBytes = Array("null".utf8)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    mutating func date(_ date: Date?) {
        guard let date else { return null() }
        bytes.append(.quote)
        RFC3339.append(date, to: &bytes)
        bytes.append(.quote)
    }
}

/// The failure to read JSON bytes: where, for a test's message; callers only need that it failed.
struct JSONBytesError: Error, Equatable {
    var offset: Int
}

/// A strict reader of the layout `JSONBytesWriter` writes, whitespace allowed between tokens.
/// Valid only inside the `withUnsafeBytes` of the bytes it reads.
struct JSONBytesReader {
    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var first = true

    init(_ bytes: UnsafeRawBufferPointer) {
        b = bytes.bindMemory(to: UInt8.self)
    }

    private func fail() -> JSONBytesError { JSONBytesError(offset: i) }

    private mutating func skipSpace() {
        while i < b.count, b[i] == .space || b[i] == .newline || b[i] == 0x09 || b[i] == 0x0D { i += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard i < b.count, b[i] == c else { throw fail() }
        i += 1
    }

    /// Only whitespace is left.
    mutating func end() throws {
        skipSpace()
        guard i == b.count else { throw fail() }
    }

    mutating func open(_ bracket: UInt8) throws {
        try expect(bracket)
        first = true
    }

    mutating func close(_ bracket: UInt8) throws {
        try expect(bracket)
        first = false
    }

    /// Whether another element follows in the open container; false after consuming its end.
    mutating func next(before closing: UInt8) throws -> Bool {
        skipSpace()
        if i < b.count, b[i] == closing {
            i += 1
            first = false
            return false
        }
        if !first { try expect(.comma) }
        first = false
        return true
    }

    /// The next member's key, which must be `name`.
    mutating func key(_ name: StaticString) throws {
        guard try optionalKey(name) else { throw fail() }
    }

    /// Reads the next member's key if it is `name`; otherwise reads nothing.
    mutating func optionalKey(_ name: StaticString) throws -> Bool {
        let start = i
        skipSpace()
        if !first {
            guard i < b.count, b[i] == .comma else { i = start; return false }
            i += 1
            skipSpace()
        }
        let n = name.utf8CodeUnitCount
        guard i + n + 2 <= b.count, b[i] == .quote, b[i + n + 1] == .quote,
              memcmp(b.baseAddress! + i + 1, name.utf8Start, n) == 0 else {
            i = start
            return false
        }
        i += n + 2
        try expect(.colon)
        first = false
        return true
    }

    /// The next member's key, whatever it is (a dictionary's), or nil after consuming the object's end.
    mutating func nextKey() throws -> String? {
        guard try next(before: .closeBrace) else { return nil }
        let key = try string()
        try expect(.colon)
        return key
    }

    mutating func string() throws -> String {
        try expect(.quote)
        let start = i
        while i < b.count, b[i] != .quote, b[i] != .backslash, b[i] >= 0x20 { i += 1 }
        guard i < b.count else { throw fail() }
        if b[i] == .quote {
            i += 1
            return try utf8(UnsafeBufferPointer(rebasing: b[start..<i - 1]))
        }
        var text = Array(b[start..<i])
        while true {
            guard i < b.count, b[i] >= 0x20 else { throw fail() }
            let c = b[i]
            i += 1
            if c == .quote { break }
            guard c == .backslash else {
                text.append(c)
                continue
            }
            guard i < b.count else { throw fail() }
            let e = b[i]
            i += 1
            switch e {
            case .quote, .backslash, UInt8(ascii: "/"): text.append(e)
            case UInt8(ascii: "b"): text.append(0x08)
            case UInt8(ascii: "f"): text.append(0x0C)
            case UInt8(ascii: "n"): text.append(.newline)
            case UInt8(ascii: "r"): text.append(0x0D)
            case UInt8(ascii: "t"): text.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 1 < b.count, b[i] == .backslash, b[i + 1] == UInt8(ascii: "u") else { throw fail() }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail() }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw fail() }
                text.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                throw fail()
            }
        }
        return try text.withUnsafeBufferPointer(utf8)
    }

    /// Text that is not UTF-8 is refused, as `JSONDecoder` refuses it, rather than repaired.
    private func utf8(_ bytes: UnsafeBufferPointer<UInt8>) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw fail() }
        return text
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count else { throw fail() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail()
            }
            value = value << 4 | UInt32(digit)
            i += 1
        }
        return value
    }

    mutating func optionalString() throws -> String? {
        try null() ? nil : try string()
    }

    mutating func strings() throws -> [String] {
        try open(.openBracket)
        var texts: [String] = []
        while try next(before: .closeBracket) { texts.append(try string()) }
        return texts
    }

    /// A whole number without fraction or exponent, as the writer writes one.
    mutating func int<T: FixedWidthInteger & SignedInteger>(_: T.Type = T.self) throws -> T {
        skipSpace()
        let negative = i < b.count && b[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        let start = i
        var value: T = 0
        while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
            // Built on the side of its sign, so that the most negative number reads too.
            let digit = T(b[i] - UInt8(ascii: "0"))
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            guard !o1, !o2 else { throw fail() }
            value = next
            i += 1
        }
        guard i > start, i - start == 1 || b[start] != UInt8(ascii: "0") else { throw fail() }
        return value
    }

    mutating func bool() throws -> Bool {
        skipSpace()
        if matches("true") { return true }
        if matches("false") { return false }
        throw fail()
    }

    /// Reads `null` if it is next.
    mutating func null() throws -> Bool {
        skipSpace()
        return matches("null")
    }

    private mutating func matches(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count, memcmp(b.baseAddress! + i, word.utf8Start, n) == 0 else { return false }
        i += n
        return true
    }

    /// An RFC 3339 time, read in place: a listing reads one or two per snapshot.
    mutating func date() throws -> Date {
        try expect(.quote)
        let start = i
        while i < b.count, b[i] != .quote { i += 1 }
        guard i < b.count, let date = RFC3339.date(fromUTF8: UnsafeBufferPointer(rebasing: b[start..<i])) else { throw fail() }
        i += 1
        return date
    }

    mutating func optionalDate() throws -> Date? {
        try null() ? nil : try date()
    }
}

extension UInt8 {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let newline = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
}

// The keys below are `Manifest.CodingKeys` in the order of their UTF-8 bytes, as `.sortedKeys`
// writes them; `shape` and `hot` are left out when nil, as `Codable` leaves out a plain optional.
extension Manifest {
    func write(to w: inout JSONBytesWriter) {
        w.open(.openBrace)
        w.key("created_at"); w.date(createdAt)
        w.key("database"); w.string(database)
        w.key("encryption")
        if let encryption { encryption.write(to: &w) } else { w.null() }
        w.key("engine"); w.string(engine.rawValue)
        w.key("file"); w.string(file)
        w.key("format_version"); w.int(formatVersion)
        if let hot {
            w.key("hot")
            hot.write(to: &w)
        }
        w.key("id"); w.string(id)
        w.key("note"); w.string(note)
        w.key("pinned"); w.bool(pinned)
        w.key("raw_bytes"); w.int(rawBytes)
        w.key("reason"); w.string(reason.rawValue)
        w.key("restore_verified_at"); w.date(restoreVerifiedAt)
        w.key("revisions"); w.strings(revisions)
        w.key("sha256"); w.string(sha256)
        if let shape {
            w.key("shape")
            shape.write(to: &w)
        }
        w.key("stored_bytes"); w.int(storedBytes)
        w.key("tags"); w.strings(tags)
        w.key("target_revision"); w.string(targetRevision)
        w.close(.closeBrace)
    }

    init(reading r: inout JSONBytesReader) throws {
        try r.open(.openBrace)
        try r.key("created_at"); let createdAt = try r.date()
        try r.key("database"); let database = try r.string()
        try r.key("encryption"); let encryption = try r.null() ? nil : try PayloadEncryption(reading: &r)
        try r.key("engine")
        guard let engine = EngineKind(rawValue: try r.string()) else { throw JSONBytesError(offset: -1) }
        try r.key("file"); let file = try r.string()
        try r.key("format_version"); let formatVersion = try r.int(Int.self)
        let hot = try r.optionalKey("hot") ? try HotCopy(reading: &r) : nil
        try r.key("id"); let id = try r.string()
        try r.key("note"); let note = try r.optionalString()
        try r.key("pinned"); let pinned = try r.bool()
        try r.key("raw_bytes"); let rawBytes = try r.int(Int64.self)
        try r.key("reason")
        guard let reason = SnapshotReason(rawValue: try r.string()) else { throw JSONBytesError(offset: -1) }
        try r.key("restore_verified_at"); let restoreVerifiedAt = try r.optionalDate()
        try r.key("revisions"); let revisions = try r.strings()
        try r.key("sha256"); let sha256 = try r.string()
        let shape = try r.optionalKey("shape") ? try DatabaseShape(reading: &r) : nil
        try r.key("stored_bytes"); let storedBytes = try r.int(Int64.self)
        try r.key("tags"); let tags = try r.strings()
        try r.key("target_revision"); let targetRevision = try r.optionalString()
        try r.close(.closeBrace)
        self.init(id: id, createdAt: createdAt, engine: engine, revisions: revisions, reason: reason,
                  targetRevision: targetRevision, rawBytes: rawBytes, storedBytes: storedBytes, sha256: sha256,
                  pinned: pinned, tags: tags, note: note, database: database, file: file, encryption: encryption,
                  shape: shape, formatVersion: formatVersion)
        self.restoreVerifiedAt = restoreVerifiedAt
        self.hot = hot
    }
}

extension Manifest {
    /// A manifest as `JSON.encoder()` writes one (every key, in its order, any layout); nil for
    /// anything else.
    init?(asWritten data: Data) {
        let read: Manifest? = data.withUnsafeBytes { raw in
            var r = JSONBytesReader(raw)
            guard let manifest = try? Manifest(reading: &r), (try? r.end()) != nil else { return nil }
            return manifest
        }
        guard let read else { return nil }
        self = read
    }
}

extension PayloadEncryption {
    func write(to w: inout JSONBytesWriter) {
        w.open(.openBrace)
        w.key("format"); w.string(format)
        w.key("recipients"); w.strings(recipients)
        w.close(.closeBrace)
    }

    init(reading r: inout JSONBytesReader) throws {
        try r.open(.openBrace)
        try r.key("format"); let format = try r.string()
        try r.key("recipients"); let recipients = try r.strings()
        try r.close(.closeBrace)
        self.init(format: format, recipients: recipients)
    }
}

extension HotCopy {
    func write(to w: inout JSONBytesWriter) {
        w.open(.openBrace)
        w.key("bytes"); w.int(bytes)
        if let oid { w.key("oid"); w.string(oid) }
        if let sha256 { w.key("sha256"); w.string(sha256) }
        w.close(.closeBrace)
    }

    init(reading r: inout JSONBytesReader) throws {
        try r.open(.openBrace)
        try r.key("bytes"); let bytes = try r.int(Int64.self)
        let oid = try r.optionalKey("oid") ? try r.string() : nil
        let sha256 = try r.optionalKey("sha256") ? try r.string() : nil
        try r.close(.closeBrace)
        self.init(bytes: bytes, sha256: sha256, oid: oid)
    }
}

extension DatabaseShape {
    func write(to w: inout JSONBytesWriter) {
        w.open(.openBrace)
        w.key("tables")
        w.open(.openBrace)
        for (name, table) in tables.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            w.key(name)
            w.open(.openBrace)
            w.key("columns"); w.strings(table.columns)
            w.key("rows"); w.int(table.rows)
            w.close(.closeBrace)
        }
        w.close(.closeBrace)
        w.close(.closeBrace)
    }

    init(reading r: inout JSONBytesReader) throws {
        try r.open(.openBrace)
        try r.key("tables")
        try r.open(.openBrace)
        var tables: [String: Table] = [:]
        while let name = try r.nextKey() {
            try r.open(.openBrace)
            try r.key("columns"); let columns = try r.strings()
            try r.key("rows"); let rows = try r.int(Int64.self)
            try r.close(.closeBrace)
            guard tables.updateValue(Table(columns: columns, rows: rows), forKey: name) == nil else { throw JSONBytesError(offset: -1) }
        }
        try r.close(.closeBrace)
        self.init(tables: tables)
    }
}

extension RetentionDecision {
    func write(to w: inout JSONBytesWriter) {
        w.open(.openBrace)
        w.key("action"); w.string(action.rawValue)
        w.key("id"); w.string(id)
        w.key("reasons"); w.strings(reasons)
        w.close(.closeBrace)
    }
}
