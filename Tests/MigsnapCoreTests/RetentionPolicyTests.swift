import Foundation
import Testing
@testable import MigsnapCore

@Suite("Retention policy file")
struct RetentionPolicyTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func parse(_ json: String) throws -> RetentionPolicy {
        try RetentionPolicy.parse(Data(json.utf8), source: "/etc/app/retention.json")
    }

    @Test("the shipped retention.json equals the built-in default")
    func shippedFileIsTheDefault() throws {
        let path = Self.packageRoot.appendingPathComponent("retention.json").path
        #expect(try RetentionPolicy.load(path: path) == RetentionPolicy.builtInDefault)
    }

    @Test("the built-in default is DESIGN.md's policy")
    func builtInDefaultValues() {
        let d = RetentionPolicy.builtInDefault
        let counts: [Int] = [d.keepLast, d.keepHourly, d.keepDaily, d.keepWeekly, d.keepMonthly, d.keepYearly, d.keepPerRevision]
        #expect(counts == [10, 0, 7, 4, 6, 0, 1])
        #expect(d.keepWithin.isZero)
        #expect(d.keepTags == ["release"])
        #expect(d.maxTotalSize == ByteSize(bytes: 20 * 1024 * 1024 * 1024))
        #expect(d.pruneAfterUpgrade)
        #expect(!d.isEmpty)
    }

    @Test("a missing key takes the built-in default's value")
    func missingKeysTakeDefaults() throws {
        var expected = RetentionPolicy.builtInDefault
        expected.keepLast = 3
        #expect(try parse(#"{"keep_last": 3}"#) == expected)
        #expect(try parse("{}") == RetentionPolicy.builtInDefault)
        #expect(try parse("{}").keepHot == 1)
        #expect(try parse(#"{"keep_hot": 0}"#).keepHot == 0)
    }

    @Test("every field is read")
    func everyField() throws {
        let policy = try parse("""
            {"keep_last": 1, "keep_hourly": 2, "keep_daily": 3, "keep_weekly": 4, "keep_monthly": 5,
             "keep_yearly": 6, "keep_within": "3m", "keep_per_revision": 7, "keep_tags": ["a", "b"],
             "max_total_size": "1.5GB", "prune_after_upgrade": false, "keep_hot": 3}
            """)
        #expect(policy == RetentionPolicy(
            keepLast: 1, keepHourly: 2, keepDaily: 3, keepWeekly: 4, keepMonthly: 5, keepYearly: 6,
            keepWithin: RetentionDuration(value: 3, unit: .months), keepPerRevision: 7, keepTags: ["a", "b"],
            maxTotalSize: ByteSize(bytes: 1_500_000_000), pruneAfterUpgrade: false, keepHot: 3))
    }

    @Test("no size cap: \"0\", \"0GiB\" or null", arguments: [#""0""#, #""0GiB""#, "null", "0"])
    func noSizeCap(value: String) throws {
        #expect(try parse(#"{"max_total_size": \#(value)}"#).maxTotalSize == nil)
    }

    @Test("a size may be a bare number of bytes")
    func sizeAsNumber() throws {
        #expect(try parse(#"{"max_total_size": 4096}"#).maxTotalSize == ByteSize(bytes: 4096))
    }

    @Test("a whole number written as 3.0 is a whole number")
    func integralFloat() throws {
        #expect(try parse(#"{"keep_daily": 3.0}"#).keepDaily == 3)
    }

    @Test("every rule off and no cap is the empty policy")
    func emptyPolicy() throws {
        let policy = try parse("""
            {"keep_last": 0, "keep_hourly": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0,
             "keep_yearly": 0, "keep_within": "0h", "keep_per_revision": 0, "keep_tags": [], "max_total_size": "0"}
            """)
        #expect(policy.isEmpty)
        #expect(!policy.hasKeepRules)
        #expect(RetentionPolicy.empty.isEmpty)
        var capped = policy
        capped.maxTotalSize = ByteSize(bytes: 1)
        #expect(!capped.isEmpty)
        var tagged = policy
        tagged.keepTags = ["release"]
        #expect(!tagged.isEmpty)
    }

    @Test("encoding and parsing give the same policy back")
    func roundTrip() throws {
        var custom = RetentionPolicy.builtInDefault
        custom.keepWithin = RetentionDuration(value: 36, unit: .hours)
        custom.maxTotalSize = nil
        custom.keepTags = []
        for policy in [RetentionPolicy.builtInDefault, custom, RetentionPolicy.empty] {
            let data = try JSON.encoder().encode(policy)
            #expect(try RetentionPolicy.parse(data, source: "encoded") == policy)
        }
    }

    struct BadField: Sendable, CustomTestStringConvertible {
        let json: String
        let key: String
        /// A word of the problem the message must state.
        let problem: String
        var testDescription: String { json }
    }

    static let badFields: [BadField] = [
        BadField(json: #"{"keep_dayly": 7}"#, key: "keep_dayly", problem: "not a known key"),
        BadField(json: #"{"colour": "red"}"#, key: "colour", problem: "not a known key"),
        BadField(json: #"{"keep_last": -1}"#, key: "keep_last", problem: "negative"),
        BadField(json: #"{"keep_hourly": 1.5}"#, key: "keep_hourly", problem: "whole number"),
        BadField(json: #"{"keep_daily": "7"}"#, key: "keep_daily", problem: "whole number"),
        BadField(json: #"{"keep_weekly": true}"#, key: "keep_weekly", problem: "whole number"),
        BadField(json: #"{"keep_monthly": null}"#, key: "keep_monthly", problem: "whole number"),
        BadField(json: #"{"keep_yearly": [1]}"#, key: "keep_yearly", problem: "whole number"),
        BadField(json: #"{"keep_per_revision": 99999999999999999999}"#, key: "keep_per_revision", problem: "whole number"),
        BadField(json: #"{"keep_within": 7}"#, key: "keep_within", problem: "duration"),
        BadField(json: #"{"keep_within": "7"}"#, key: "keep_within", problem: "duration"),
        BadField(json: #"{"keep_within": "7x"}"#, key: "keep_within", problem: "duration"),
        BadField(json: #"{"keep_within": "-7d"}"#, key: "keep_within", problem: "duration"),
        BadField(json: #"{"keep_within": "1.5d"}"#, key: "keep_within", problem: "duration"),
        BadField(json: #"{"keep_within": "7D"}"#, key: "keep_within", problem: "duration"),
        BadField(json: #"{"max_total_size": "20gb"}"#, key: "max_total_size", problem: "unit"),
        BadField(json: #"{"max_total_size": "20 GiB"}"#, key: "max_total_size", problem: "unit"),
        BadField(json: #"{"max_total_size": "GiB"}"#, key: "max_total_size", problem: "not a size"),
        BadField(json: #"{"max_total_size": "1..5GB"}"#, key: "max_total_size", problem: "not a size"),
        BadField(json: #"{"max_total_size": "-1GB"}"#, key: "max_total_size", problem: "not a size"),
        BadField(json: #"{"max_total_size": "1.5"}"#, key: "max_total_size", problem: "fraction"),
        BadField(json: #"{"max_total_size": "1.5B"}"#, key: "max_total_size", problem: "fraction"),
        BadField(json: #"{"max_total_size": "99999999999TiB"}"#, key: "max_total_size", problem: "too large"),
        BadField(json: #"{"max_total_size": -5}"#, key: "max_total_size", problem: "size"),
        BadField(json: #"{"max_total_size": true}"#, key: "max_total_size", problem: "size"),
        BadField(json: #"{"keep_tags": "release"}"#, key: "keep_tags", problem: "list"),
        BadField(json: #"{"keep_tags": ["release", 3]}"#, key: "keep_tags", problem: "strings"),
        BadField(json: #"{"keep_tags": [""]}"#, key: "keep_tags", problem: "non-empty"),
        BadField(json: #"{"prune_after_upgrade": "yes"}"#, key: "prune_after_upgrade", problem: "true or false"),
        BadField(json: #"{"prune_after_upgrade": 1}"#, key: "prune_after_upgrade", problem: "true or false"),
        BadField(json: #"{"keep_hot": -1}"#, key: "keep_hot", problem: "negative"),
        BadField(json: #"{"keep_hot": true}"#, key: "keep_hot", problem: "whole number"),
        BadField(json: #"{"keep_hot": 1.5}"#, key: "keep_hot", problem: "whole number"),
    ]

    @Test("a bad field is bad input naming the file, the key and the problem", arguments: badFields)
    func badField(_ bad: BadField) {
        #expect {
            try parse(bad.json)
        } throws: { error in
            guard case MigsnapError.invalidInput(let message, _) = error else { return false }
            return message.contains("/etc/app/retention.json") && message.contains(bad.key) && message.contains(bad.problem)
        }
    }

    @Test("an unknown key suggests the known key it most likely meant", arguments: [
        ("keep_dayly", "keep_daily"), ("keep-last", "keep_last"), ("Keep_Weekly", "keep_weekly"),
        ("keep_montly", "keep_monthly"), ("keep_tag", "keep_tags"),
    ])
    func suggestion(typo: String, meant: String) throws {
        let error = try #require(throws: MigsnapError.self) { try parse(#"{"\#(typo)": 1}"#) }
        #expect(error.message.contains(typo))
        #expect(error.hint?.contains("Did you mean \"\(meant)\"?") == true)
    }

    @Test("a key far from every known key gets no guess")
    func noWildGuess() throws {
        let error = try #require(throws: MigsnapError.self) { try parse(#"{"colour": 1}"#) }
        #expect(error.hint?.contains("Did you mean") == false)
        #expect(error.hint?.contains("keep_last") == true)
    }

    @Test("malformed JSON is bad input naming the file", arguments: [#"{"keep_last": 10"#, "keep_last: 10", "", #"{"keep_last" 10}"#])
    func malformedJSON(json: String) throws {
        let error = try #require(throws: MigsnapError.self) { try parse(json) }
        guard case .invalidInput(let message, _) = error else { Issue.record("not invalidInput: \(error)"); return }
        #expect(message.contains("/etc/app/retention.json"))
        #expect(message.contains("not valid JSON"))
    }

    @Test("malformed JSON says where")
    func malformedJSONPosition() throws {
        let error = try #require(throws: MigsnapError.self) { try parse(#"{"keep_last" 10}"#) }
        #expect(error.message.contains("character 13"))
    }

    @Test("a JSON document that is not an object is bad input", arguments: ["[1]", "10", #""keep_last""#])
    func notAnObject(json: String) throws {
        let error = try #require(throws: MigsnapError.self) { try parse(json) }
        #expect(error == .invalidInput("invalid retention policy /etc/app/retention.json: the file must hold one JSON object, like {\"keep_last\": 10}"))
    }

    @Test("a file that cannot be read is bad input naming the path")
    func unreadableFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-no-such-\(UUID().uuidString).json").path
        let error = try #require(throws: MigsnapError.self) { try RetentionPolicy.load(path: path) }
        guard case .invalidInput(let message, _) = error else { Issue.record("not invalidInput: \(error)"); return }
        #expect(message.contains(path))
    }

    @Test("a written file loads")
    func loadWrittenFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-retention-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(#"{"keep_daily": 2, "keep_within": "2w"}"#.utf8).write(to: URL(fileURLWithPath: path))
        let policy = try RetentionPolicy.load(path: path)
        #expect(policy.keepDaily == 2)
        #expect(policy.keepWithin == RetentionDuration(value: 2, unit: .weeks))
        #expect(policy.keepLast == RetentionPolicy.builtInDefault.keepLast)
    }
}

@Suite("Sizes and durations in retention.json")
struct RetentionUnitsTests {
    @Test("sizes", arguments: [
        ("0", Int64(0)), ("1024", 1024), ("1B", 1), ("1KB", 1000), ("1KiB", 1024), ("500MB", 500_000_000),
        ("20GiB", 21_474_836_480), ("1.5GB", 1_500_000_000), ("1.1GB", 1_100_000_000), ("0.1KiB", 102),
        ("1TB", 1_000_000_000_000), ("2TiB", 2_199_023_255_552), ("0.000001TiB", 1_099_511),
        ("8388607TiB", 8_388_607 << 40),
    ])
    func size(text: String, bytes: Int64) throws {
        #expect(try ByteSize.parse(text).bytes == bytes)
    }

    @Test("malformed sizes", arguments: ["", "GB", "1.", ".5GB", "1.5B", "1.5", "20gb", "20Gb", "20gib", "20 GiB", "20GiB ", "-1", "+1", "1e3", "1,5GB", "8388608TiB", "1.0000000000000000001GB", "9223372036854775808"])
    func malformedSize(text: String) {
        #expect(throws: MigsnapError.self) { try ByteSize.parse(text) }
    }

    @Test("a size prints in the largest exact unit", arguments: [
        (Int64(0), "0B"), (1, "1B"), (999, "999B"), (1000, "1KB"), (1024, "1KiB"), (1536, "1.5KiB"),
        (21_474_836_480, "20GiB"), (1_500_000_000, "1.5GB"), (500_000_000, "500MB"), (1_250_000, "1.25MB"),
        (1_234_567, "1234567B"), (1 << 40, "1TiB"),
    ])
    func sizeDescription(bytes: Int64, text: String) throws {
        #expect(ByteSize(bytes: bytes).description == text)
        #expect(try ByteSize.parse(text).bytes == bytes)
    }

    @Test("every printed size parses back to the same bytes")
    func sizeRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let bytes = Int64.random(in: 0...(Int64(1) << 50), using: &rng) >> Int64.random(in: 0...40, using: &rng)
            #expect(try ByteSize.parse(ByteSize(bytes: bytes).description).bytes == bytes)
        }
    }

    @Test("durations", arguments: [
        ("0d", 0, RetentionDuration.Unit.days), ("36h", 36, .hours), ("7d", 7, .days), ("2w", 2, .weeks),
        ("3m", 3, .months), ("1y", 1, .years),
    ])
    func duration(text: String, value: Int, unit: RetentionDuration.Unit) throws {
        let duration = try RetentionDuration.parse(text)
        #expect(duration == RetentionDuration(value: value, unit: unit))
        #expect(duration.description == text)
    }

    @Test("malformed durations", arguments: ["", "d", "7", "7D", "7 d", " 7d", "-1d", "1.5d", "7dd", "7s", "7min", "99999999999999999999d"])
    func malformedDuration(text: String) {
        #expect(throws: MigsnapError.self) { try RetentionDuration.parse(text) }
    }

    @Test("durations count back on the UTC calendar", arguments: [
        ("36h", "2026-03-31T12:00:00Z", "2026-03-30T00:00:00Z"),
        ("7d", "2026-03-31T12:00:00Z", "2026-03-24T12:00:00Z"),
        ("2w", "2026-03-31T12:00:00Z", "2026-03-17T12:00:00Z"),
        ("1m", "2026-03-31T12:00:00Z", "2026-02-28T12:00:00Z"),
        ("1m", "2024-03-31T12:00:00Z", "2024-02-29T12:00:00Z"),
        ("3m", "2026-01-15T00:00:00Z", "2025-10-15T00:00:00Z"),
        ("1y", "2024-02-29T08:00:00Z", "2023-02-28T08:00:00Z"),
        ("0d", "2026-03-31T12:00:00Z", "2026-03-31T12:00:00Z"),
    ])
    func subtracted(text: String, from: String, expected: String) throws {
        let date = try #require(RFC3339.date(from: from))
        #expect(try RFC3339.string(from: RetentionDuration.parse(text).subtracted(from: date)) == RFC3339.string(from: #require(RFC3339.date(from: expected))))
    }

    @Test("sizes and durations are JSON strings, decoded strictly")
    func textCodable() throws {
        let size = ByteSize(bytes: 1_500_000_000)
        let duration = RetentionDuration(value: 36, unit: .hours)
        #expect(String(decoding: try JSONEncoder().encode([size]), as: UTF8.self) == #"["1.5GB"]"#)
        #expect(String(decoding: try JSONEncoder().encode([duration]), as: UTF8.self) == #"["36h"]"#)
        #expect(try JSONDecoder().decode([ByteSize].self, from: Data(#"["1.5GB"]"#.utf8)) == [size])
        #expect(try JSONDecoder().decode([RetentionDuration].self, from: Data(#"["36h"]"#.utf8)) == [duration])
        #expect(throws: MigsnapError.self) { try JSONDecoder().decode([RetentionDuration].self, from: Data(#"["36H"]"#.utf8)) }
    }

    @Test("a duration longer than any calendar reaches means everything")
    func hugeDuration() throws {
        let date = try #require(RFC3339.date(from: "2026-03-31T12:00:00Z"))
        for text in ["9223372036854775807y", "9223372036854775807w", "99999999h", "999999m"] {
            #expect(try RetentionDuration.parse(text).subtracted(from: date) == .distantPast)
        }
    }
}
