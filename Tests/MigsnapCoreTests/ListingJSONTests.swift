import Foundation
import Testing
@testable import MigsnapCore

/// The hand-written manifest JSON (`ListingJSON`, the listing index) against Foundation's coders:
/// the same bytes out, the same manifests back, and anything it did not write refused.
@Suite("Listing JSON by hand")
struct ListingJSONTests {
    static let plain = Manifest(id: "20261126-100000-000", createdAt: Date(timeIntervalSince1970: 1_795_000_000.5), engine: .sqlite,
                                revisions: ["abc1"], reason: .preUpgrade, targetRevision: "def2", rawBytes: 4096, storedBytes: 64,
                                sha256: String(repeating: "ab", count: 32), database: "/srv/app.db", file: "20261126-100000-000.sqlite.gz")

    /// Every field set, strings with every character JSON escapes and some it does not, table names
    /// whose byte order differs from a case-insensitive or numeric one.
    static var full: Manifest {
        var m = Manifest(id: "20261126-100000-001", createdAt: Date(timeIntervalSince1970: 1_795_000_000.007), engine: .postgresql,
                         revisions: ["b2", "a1"], reason: .preRestore, targetRevision: nil, rawBytes: Int64.max, storedBytes: 0,
                         sha256: "00", pinned: true, tags: ["release", "ünïcode", "a/b", ""],
                         note: "quote \" backslash \\ slash / " + String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) })
                             + " del \u{7F} line sep \u{2028} emoji 🦤 é",
                         database: "db.internal:5432/shop", file: "20261126-100000-001.pgdump.age",
                         encryption: PayloadEncryption(format: PayloadEncryption.ageV1, recipients: ["age1xyz", "age1abc"]),
                         shape: DatabaseShape(tables: ["order10": .init(columns: ["id", "total"], rows: 3), "order9": .init(columns: [], rows: 0),
                                                       "Orders": .init(columns: ["ID"], rows: -1), "public.users": .init(columns: ["e\"mail"], rows: 7),
                                                       "a_b": .init(columns: ["x"], rows: 1), "a.b": .init(columns: ["y"], rows: 2),
                                                       "äpfel": .init(columns: ["z"], rows: 9)]),
                         formatVersion: 1)
        m.restoreVerifiedAt = Date(timeIntervalSince1970: -1.25)
        m.hot = HotCopy(bytes: 42, sha256: "ab", oid: "16384")
        return m
    }

    static var empty: Manifest {
        var m = plain
        m.id = "20261126-100000-002"
        m.file = "20261126-100000-002.sqlite.gz"
        m.revisions = []
        m.targetRevision = nil
        m.reason = .manual
        m.shape = DatabaseShape(tables: [:])
        m.rawBytes = Int64.min
        return m
    }

    static let cases: [[Manifest]] = [[], [plain], [plain, full, empty], [full]]

    @Test(arguments: cases)
    func writesWhatJSONEncoderWrites(_ manifests: [Manifest]) throws {
        let expected = try JSON.encoder().encode(manifests)
        let written = Data(ListingJSON.prettyArray(manifests))
        #expect(written == expected, "\n\(String(decoding: written, as: UTF8.self))\n----\n\(String(decoding: expected, as: UTF8.self))")
    }

    @Test func writesPruneDecisionsAsJSONEncoderWrites() throws {
        for decisions in [[], [RetentionDecision(id: "20261126-100000-000", action: .keep, reasons: ["newest", "daily 2026-11-26", "tag \"a/b\""]),
                               RetentionDecision(id: "20261126-090000-000", action: .remove, reasons: [])]] {
            #expect(Data(ListingJSON.prettyArray(decisions)) == (try JSON.encoder().encode(decisions)))
        }
    }

    @Test(arguments: [plain, full, empty], [true, false])
    func readsBackWhatItAndJSONEncoderWrite(_ manifest: Manifest, pretty: Bool) throws {
        var w = JSONBytesWriter(pretty: pretty)
        manifest.write(to: &w)
        #expect(try read(Data(w.bytes)) == manifest)
        #expect(try read(try JSON.encoder(pretty: pretty).encode(manifest)) == manifest)
    }

    /// A field added to `Manifest` must be taught to the writer and the reader too; this is the reminder.
    @Test func everyFieldOfAManifestIsWritten() throws {
        var w = JSONBytesWriter(pretty: false)
        Self.full.write(to: &w)
        let keys = try #require(try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any]).keys
        let fields = Mirror(reflecting: Self.full).children.compactMap(\.label)
        #expect(keys.count == fields.count, "Manifest has \(fields.count) fields (\(fields)), the writer writes \(keys.sorted())")
    }

    @Test(arguments: [
        #"{"created_at":"2026-11-26T10:00:00.000Z"}"#,                       // keys missing
        #"{"id":"20261126-100000-000"}"#,                                    // another order
        "",
        "{",
    ])
    func refusesWhatItDidNotWrite(_ text: String) {
        #expect(throws: JSONBytesError.self) { try read(Data(text.utf8)) }
    }

    @Test func refusesDamageAnywhereInAManifest() throws {
        var w = JSONBytesWriter(pretty: false)
        Self.full.write(to: &w)
        let good = String(decoding: w.bytes, as: UTF8.self)
        let damaged = [
            good.replacingOccurrences(of: #""engine":"postgresql""#, with: #""engine":"mysql""#),
            good.replacingOccurrences(of: #""reason":"pre-restore""#, with: #""reason":"whim""#),
            good.replacingOccurrences(of: #""stored_bytes":0"#, with: #""stored_bytes":0.5"#),
            good.replacingOccurrences(of: #""stored_bytes":0"#, with: #""stored_bytes":00"#),
            good.replacingOccurrences(of: #""raw_bytes":9223372036854775807"#, with: #""raw_bytes":9223372036854775808"#),
            good.replacingOccurrences(of: #""pinned":true"#, with: #""pinned":1"#),
            good.replacingOccurrences(of: #""created_at":"2026-"#, with: #""created_at":"yesterday"#),
            good.replacingOccurrences(of: #""id":"#, with: #""extra":1,"id":"#),
            good.replacingOccurrences(of: #""tags":["#, with: #""tags":[,"#),
            good.replacingOccurrences(of: #""sha256":"00""#, with: "\"sha256\":\"0\n0\""),
            good.replacingOccurrences(of: #""sha256":"00""#, with: #""sha256":"\x00""#),
            String(good.dropLast()),
        ]
        for text in damaged {
            #expect(text != good)
            #expect(throws: JSONBytesError.self, "\(text)") { try read(Data(text.utf8)) }
        }
        // A byte that is not UTF-8, in a plain string and in one with escapes.
        for escape in ["", #"\n"#] {
            var bytes = Array(good.replacingOccurrences(of: #""database":""#, with: #""database":""# + escape + "X").utf8)
            bytes[try #require(bytes.firstIndex(of: UInt8(ascii: "X")))] = 0xFF
            #expect(throws: JSONBytesError.self) { try read(Data(bytes)) }
        }
    }

    @Test func readsEscapesTheWriterDoesNotWrite() throws {
        var w = JSONBytesWriter(pretty: false)
        Self.plain.write(to: &w)
        let text = String(decoding: w.bytes, as: UTF8.self)
            .replacingOccurrences(of: #""database":"/srv/app.db""#, with: #""database":"\/srv\/app\u00e9\ud83e\udda4.db""#)
        #expect(try read(Data(text.utf8)).database == "/srv/appé🦤.db")
        let lone = text.replacingOccurrences(of: #"\ud83e\udda4"#, with: #"\ud83e"#)
        #expect(throws: JSONBytesError.self) { try read(Data(lone.utf8)) }
    }

    @Test(arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (-1.25, "1969-12-31T23:59:58.750Z"),
        (1_795_763_782.429, "2026-11-27T07:16:22.429Z"),
        (1_795_763_782.007, "2026-11-27T07:16:22.007Z"),
        (951_782_400.5, "2000-02-29T00:00:00.500Z"),
        (253_402_300_799.999, "9999-12-31T23:59:59.999Z"),
    ])
    func timesAreWrittenInPlace(_ seconds: Double, _ text: String) {
        var bytes: [UInt8] = Array("x".utf8)
        RFC3339.append(Date(timeIntervalSince1970: seconds), to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "x" + text)
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: seconds)) == text)
    }

    // MARK: The listing index

    static func index(_ manifests: [Manifest], complete: Bool = true) -> StoreIndex {
        StoreIndex(complete: complete, entries: Dictionary(uniqueKeysWithValues: manifests.map {
            (ObjectName.manifest(id: $0.id), StoreIndex.Entry(version: "7-\($0.storedBytes)-1795000000.5", manifest: $0))
        }))
    }

    @Test func theIndexRoundTrips() throws {
        for index in [Self.index([]), Self.index([Self.plain, Self.full, Self.empty]), Self.index([Self.plain], complete: false)] {
            #expect(StoreIndex(decoding: index.encoded()) == index)
        }
    }

    @Test func anythingButAnIndexOfThisFormatReadsAsNone() throws {
        let good = String(decoding: Self.index([Self.plain, Self.full]).encoded(), as: UTF8.self)
        let formatOne = #"{"complete":true,"entries":{},"format":1}"#
        let others = [
            formatOne,
            good.replacingOccurrences(of: #"{"format":2,"#, with: #"{"format":3,"#),
            good + "x",
            good.replacingOccurrences(of: "20261126-100000-001.json", with: "20261126-100000-000.json"),   // two entries for one name
            good.replacingOccurrences(of: #""complete":true"#, with: #""complete":"yes""#),
            "", "{}", "[]", "null",
        ]
        for text in others {
            #expect(StoreIndex(decoding: Data(text.utf8)) == nil, "\(text)")
        }
        // Cut anywhere, it is not an index.
        let bytes = Array(good.utf8)
        for cut in stride(from: 0, to: bytes.count, by: 37) {
            #expect(StoreIndex(decoding: Data(bytes[..<cut])) == nil, "cut at \(cut)")
        }
    }

    private func read(_ data: Data) throws -> Manifest {
        let strict = try data.withUnsafeBytes { raw in
            var r = JSONBytesReader(raw)
            let m = try Manifest(reading: &r)
            try r.end()
            return m
        }
        #expect(Manifest(asWritten: data) == strict)
        return strict
    }
}
