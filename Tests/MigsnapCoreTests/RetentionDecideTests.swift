import Foundation
import Testing
@testable import MigsnapCore

/// A UTC minute written as `2026-11-26T10:00`; test data, so a typo stops the run.
private func at(_ minute: String) -> Date {
    RFC3339.date(from: minute + ":00Z")!
}

/// A snapshot whose id is its time (plus `suffix` for two taken in the same minute), so golden
/// files read as a timeline.
private func snap(
    _ minute: String, suffix: String = "", revisions: [String] = ["r1"], tags: [String] = [], pinned: Bool = false, bytes: Int64 = 100
) -> RetentionCandidate {
    RetentionCandidate(id: minute + suffix, createdAt: at(minute), revisions: revisions, tags: tags, pinned: pinned, storedBytes: bytes)
}

private func policy(_ change: (inout RetentionPolicy) -> Void) -> RetentionPolicy {
    var p = RetentionPolicy.empty
    change(&p)
    return p
}

struct DecideCase: Sendable, CustomTestStringConvertible {
    let name: String
    let policy: RetentionPolicy
    let now: String
    let snapshots: [RetentionCandidate]
    var protected: Set<String> = []
    /// The ids the spec keeps, worked out by hand; nil where the golden file alone is reviewed.
    var kept: Set<String>?
    /// Exact reasons for a few ids, worked out by hand.
    var reasons: [String: [String]] = [:]

    var testDescription: String { name }
}

@Suite("Retention decisions")
struct RetentionDecideTests {
    static let cases: [DecideCase] = [
        DecideCase(
            name: "keep-last", policy: policy { $0.keepLast = 3 }, now: "2026-11-26T00:00",
            snapshots: ["2026-11-20T10:00", "2026-11-21T10:00", "2026-11-22T10:00", "2026-11-23T10:00", "2026-11-24T10:00"].map { snap($0) },
            kept: ["2026-11-22T10:00", "2026-11-23T10:00", "2026-11-24T10:00"],
            reasons: ["2026-11-24T10:00": ["newest", "last 3"], "2026-11-22T10:00": ["last 3"], "2026-11-21T10:00": ["no rule keeps it"]]
        ),
        DecideCase(
            name: "hourly-ties-in-one-hour", policy: policy { $0.keepHourly = 2 }, now: "2026-11-26T12:00",
            snapshots: ["2026-11-26T08:30", "2026-11-26T09:10", "2026-11-26T09:50", "2026-11-26T10:05", "2026-11-26T10:40"].map { snap($0) },
            kept: ["2026-11-26T10:40", "2026-11-26T09:50"],
            reasons: ["2026-11-26T09:50": ["hourly 2026-11-26T09"], "2026-11-26T10:05": ["no rule keeps it"]]
        ),
        DecideCase(
            name: "daily-ties-in-one-day", policy: policy { $0.keepDaily = 2 }, now: "2026-11-27T00:00",
            snapshots: ["2026-11-24T23:59", "2026-11-25T00:00", "2026-11-25T12:00", "2026-11-25T23:59", "2026-11-26T00:01"].map { snap($0) },
            kept: ["2026-11-26T00:01", "2026-11-25T23:59"],
            reasons: ["2026-11-25T23:59": ["daily 2026-11-25"], "2026-11-26T00:01": ["newest", "daily 2026-11-26"]]
        ),
        DecideCase(
            name: "same-instant-tie-broken-by-id", policy: policy { $0.keepDaily = 1 }, now: "2026-11-27T00:00",
            snapshots: [snap("2026-11-26T10:00", suffix: "-b"), snap("2026-11-26T10:00", suffix: "-a")],
            kept: ["2026-11-26T10:00-b"],
            reasons: ["2026-11-26T10:00-b": ["newest", "daily 2026-11-26"]]
        ),
        DecideCase(
            name: "weekly-iso-week-across-2026-2027", policy: policy { $0.keepWeekly = 3 }, now: "2027-01-05T00:00",
            snapshots: ["2026-12-20T10:00", "2026-12-27T10:00", "2026-12-28T10:00", "2026-12-31T10:00", "2027-01-01T10:00", "2027-01-04T10:00"].map { snap($0) },
            kept: ["2027-01-04T10:00", "2027-01-01T10:00", "2026-12-27T10:00"],
            reasons: ["2027-01-01T10:00": ["weekly 2026-W53"], "2026-12-27T10:00": ["weekly 2026-W52"], "2027-01-04T10:00": ["newest", "weekly 2027-W01"]]
        ),
        DecideCase(
            name: "weekly-2020-w53", policy: policy { $0.keepWeekly = 2 }, now: "2021-01-05T00:00",
            snapshots: ["2020-12-27T10:00", "2020-12-31T10:00", "2021-01-03T10:00", "2021-01-04T10:00"].map { snap($0) },
            kept: ["2021-01-04T10:00", "2021-01-03T10:00"],
            reasons: ["2021-01-03T10:00": ["weekly 2020-W53"], "2020-12-31T10:00": ["no rule keeps it"]]
        ),
        DecideCase(
            name: "monthly-and-yearly-across-new-year", policy: policy { $0.keepMonthly = 2; $0.keepYearly = 2 }, now: "2026-03-01T00:00",
            snapshots: ["2025-06-15T10:00", "2025-12-31T23:00", "2026-01-01T01:00", "2026-01-20T10:00", "2026-02-10T10:00"].map { snap($0) },
            kept: ["2026-02-10T10:00", "2026-01-20T10:00", "2025-12-31T23:00"],
            reasons: ["2026-02-10T10:00": ["newest", "monthly 2026-02", "yearly 2026"], "2026-01-20T10:00": ["monthly 2026-01"], "2025-12-31T23:00": ["yearly 2025"]]
        ),
        DecideCase(
            name: "within-measured-from-newest-not-now", policy: policy { $0.keepWithin = RetentionDuration(value: 7, unit: .days) }, now: "2026-11-26T00:00",
            snapshots: ["2026-01-10T10:00", "2026-03-01T10:00", "2026-03-05T10:00", "2026-03-08T09:59", "2026-03-08T10:00", "2026-03-08T10:01", "2026-03-15T10:00"].map { snap($0) },
            kept: ["2026-03-08T10:01", "2026-03-15T10:00"],
            reasons: ["2026-03-08T10:01": ["within 7d of newest"], "2026-03-08T10:00": ["no rule keeps it"]]
        ),
        DecideCase(
            name: "within-calendar-month", policy: policy { $0.keepWithin = RetentionDuration(value: 1, unit: .months) }, now: "2026-04-01T00:00",
            snapshots: ["2026-01-31T12:00", "2026-02-28T12:00", "2026-02-28T12:01", "2026-03-10T10:00", "2026-03-31T12:00"].map { snap($0) },
            kept: ["2026-02-28T12:01", "2026-03-10T10:00", "2026-03-31T12:00"]
        ),
        DecideCase(
            name: "within-hours", policy: policy { $0.keepWithin = RetentionDuration(value: 36, unit: .hours) }, now: "2026-11-26T12:00",
            snapshots: ["2026-11-24T23:59", "2026-11-25T00:30", "2026-11-26T12:00"].map { snap($0) },
            kept: ["2026-11-25T00:30", "2026-11-26T12:00"],
            reasons: ["2026-11-25T00:30": ["within 36h of newest"]]
        ),
        DecideCase(
            name: "per-revision-base-and-merge", policy: policy { $0.keepPerRevision = 1 }, now: "2026-11-09T00:00",
            snapshots: [
                snap("2026-11-01T10:00", revisions: []), snap("2026-11-02T10:00", revisions: []),
                snap("2026-11-03T10:00", revisions: ["aaa111"]), snap("2026-11-04T10:00", revisions: ["bbb222"]),
                snap("2026-11-05T10:00", revisions: ["ccc333", "bbb222"]), snap("2026-11-06T10:00", revisions: ["bbb222", "ccc333"]),
                snap("2026-11-07T10:00", revisions: ["aaa111"]), snap("2026-11-08T10:00", revisions: ["ddd444"]),
            ],
            kept: ["2026-11-08T10:00", "2026-11-07T10:00", "2026-11-06T10:00", "2026-11-04T10:00", "2026-11-02T10:00"],
            reasons: ["2026-11-02T10:00": ["per revision base"], "2026-11-06T10:00": ["per revision bbb222,ccc333"], "2026-11-05T10:00": ["no rule keeps it"]]
        ),
        DecideCase(
            name: "per-revision-two-each", policy: policy { $0.keepPerRevision = 2 }, now: "2026-11-09T00:00",
            snapshots: [
                snap("2026-10-31T10:00", revisions: []), snap("2026-11-01T10:00", revisions: []), snap("2026-11-02T10:00", revisions: []),
                snap("2026-11-03T10:00", revisions: ["aaa111"]), snap("2026-11-07T10:00", revisions: ["aaa111"]),
            ],
            kept: ["2026-11-01T10:00", "2026-11-02T10:00", "2026-11-03T10:00", "2026-11-07T10:00"]
        ),
        DecideCase(
            name: "tags", policy: policy { $0.keepTags = ["release", "keep-me"] }, now: "2026-11-06T00:00",
            snapshots: [
                snap("2026-11-01T10:00", tags: ["release"]), snap("2026-11-02T10:00", tags: ["other"]),
                snap("2026-11-03T10:00", tags: ["keep-me", "release"]), snap("2026-11-04T10:00"), snap("2026-11-05T10:00"),
            ],
            kept: ["2026-11-01T10:00", "2026-11-03T10:00", "2026-11-05T10:00"],
            reasons: ["2026-11-03T10:00": ["tag release", "tag keep-me"], "2026-11-02T10:00": ["no rule keeps it"]]
        ),
        DecideCase(
            name: "pinned", policy: policy { $0.keepLast = 1 }, now: "2026-11-04T00:00",
            snapshots: [snap("2025-01-01T10:00", pinned: true), snap("2026-11-01T10:00"), snap("2026-11-02T10:00", pinned: true), snap("2026-11-03T10:00")],
            kept: ["2025-01-01T10:00", "2026-11-02T10:00", "2026-11-03T10:00"],
            reasons: ["2025-01-01T10:00": ["pinned"]]
        ),
        DecideCase(
            name: "future-dated-takes-no-part-in-rules",
            policy: policy { $0.keepLast = 1; $0.keepWithin = RetentionDuration(value: 2, unit: .days) }, now: "2026-11-23T00:00",
            snapshots: ["2026-11-19T10:00", "2026-11-20T12:00", "2026-11-22T10:00", "2099-01-01T00:00"].map { snap($0) },
            kept: ["2026-11-20T12:00", "2026-11-22T10:00", "2099-01-01T00:00"],
            reasons: ["2099-01-01T00:00": ["future-dated"], "2026-11-22T10:00": ["newest", "last 1", "within 2d of newest"]]
        ),
        DecideCase(
            name: "all-future-dated", policy: policy { $0.keepDaily = 1 }, now: "2026-11-01T00:00",
            snapshots: ["2026-12-01T10:00", "2026-12-02T10:00"].map { snap($0) },
            kept: ["2026-12-01T10:00", "2026-12-02T10:00"],
            reasons: ["2026-12-02T10:00": ["future-dated"]]
        ),
        DecideCase(
            name: "protected-just-taken", policy: policy { $0.keepLast = 1 }, now: "2026-11-05T00:00",
            snapshots: ["2026-11-01T10:00", "2026-11-02T10:00", "2026-11-03T10:00", "2026-11-04T10:00"].map { snap($0) },
            protected: ["2026-11-03T10:00", "2026-11-04T10:00"],
            kept: ["2026-11-03T10:00", "2026-11-04T10:00"],
            reasons: ["2026-11-03T10:00": ["just taken"], "2026-11-04T10:00": ["newest", "just taken", "last 1"]]
        ),
        DecideCase(
            name: "protected-over-size-cap", policy: policy { $0.keepLast = 1; $0.maxTotalSize = ByteSize(bytes: 150) }, now: "2026-11-05T00:00",
            snapshots: ["2026-11-01T10:00", "2026-11-02T10:00", "2026-11-03T10:00", "2026-11-04T10:00"].map { snap($0) },
            protected: ["2026-11-03T10:00", "2026-11-04T10:00"],
            kept: ["2026-11-03T10:00", "2026-11-04T10:00"]
        ),
        DecideCase(
            name: "empty-policy", policy: .empty, now: "2026-11-05T00:00",
            snapshots: [snap("2020-01-01T10:00"), snap("2026-11-01T10:00", pinned: true), snap("2026-11-04T10:00"), snap("2027-01-01T10:00")],
            kept: ["2020-01-01T10:00", "2026-11-01T10:00", "2026-11-04T10:00", "2027-01-01T10:00"],
            reasons: ["2020-01-01T10:00": ["empty policy: nothing is removed"], "2026-11-01T10:00": ["pinned", "empty policy: nothing is removed"]]
        ),
        DecideCase(
            name: "size-cap-without-keep-rules", policy: policy { $0.maxTotalSize = ByteSize(bytes: 250) }, now: "2026-11-05T00:00",
            snapshots: ["2026-11-01T10:00", "2026-11-02T10:00", "2026-11-03T10:00", "2026-11-04T10:00"].map { snap($0) },
            kept: ["2026-11-03T10:00", "2026-11-04T10:00"],
            reasons: ["2026-11-01T10:00": ["over max_total_size 250B"], "2026-11-03T10:00": ["no keep rules: only max_total_size removes snapshots"]]
        ),
        DecideCase(
            name: "size-cap-removes-oldest-kept", policy: policy { $0.keepLast = 5; $0.maxTotalSize = ByteSize(bytes: 1000) }, now: "2026-11-07T00:00",
            snapshots: [
                snap("2026-11-01T10:00", bytes: 300), snap("2026-11-02T10:00", pinned: true, bytes: 300), snap("2026-11-03T10:00", bytes: 300),
                snap("2026-11-04T10:00", bytes: 300), snap("2026-11-05T10:00", bytes: 300), snap("2026-11-06T10:00", bytes: 300),
            ],
            kept: ["2026-11-02T10:00", "2026-11-05T10:00", "2026-11-06T10:00"],
            reasons: ["2026-11-01T10:00": ["no rule keeps it"], "2026-11-03T10:00": ["over max_total_size 1KB"], "2026-11-04T10:00": ["over max_total_size 1KB"]]
        ),
        DecideCase(
            name: "size-cap-that-cannot-be-met", policy: policy { $0.keepLast = 3; $0.maxTotalSize = ByteSize(bytes: 500) }, now: "2026-11-04T00:00",
            snapshots: [snap("2026-11-01T10:00", pinned: true, bytes: 400), snap("2026-11-02T10:00", bytes: 300), snap("2026-11-03T10:00", bytes: 600)],
            kept: ["2026-11-01T10:00", "2026-11-03T10:00"],
            reasons: ["2026-11-02T10:00": ["over max_total_size 500B"], "2026-11-01T10:00": ["pinned", "last 3"]]
        ),
        DecideCase(
            name: "combination", policy: policy { $0.keepLast = 2; $0.keepDaily = 2; $0.keepWeekly = 2; $0.keepPerRevision = 1; $0.keepTags = ["release"] },
            now: "2026-11-18T00:00",
            snapshots: [
                snap("2026-11-02T10:00", revisions: ["a"], tags: ["release"]), snap("2026-11-09T10:00", revisions: ["a"]),
                snap("2026-11-10T10:00", revisions: ["a"]), snap("2026-11-16T09:00", revisions: ["b"]),
                snap("2026-11-16T18:00", revisions: ["b"]), snap("2026-11-17T10:00", revisions: ["c"]),
            ],
            kept: ["2026-11-02T10:00", "2026-11-10T10:00", "2026-11-16T18:00", "2026-11-17T10:00"],
            reasons: [
                "2026-11-02T10:00": ["tag release"], "2026-11-10T10:00": ["weekly 2026-W46", "per revision a"],
                "2026-11-16T18:00": ["last 2", "daily 2026-11-16", "per revision b"],
                "2026-11-17T10:00": ["newest", "last 2", "daily 2026-11-17", "weekly 2026-W47", "per revision c"],
            ]
        ),
        DecideCase(name: "no-snapshots", policy: .builtInDefault, now: "2026-11-18T00:00", snapshots: [], kept: []),
        DecideCase(name: "default-policy-on-a-year-of-history", policy: .builtInDefault, now: "2026-11-26T12:00", snapshots: yearOfHistory),
    ]

    /// A project's year: a release or two a month, each upgrade a few migration steps (one
    /// snapshot per step, minutes apart), every sixth deploy tagged `release`, a nightly
    /// snapshot for the last three months, and the pinned first deploy. The database grows
    /// with every revision, so the 20GiB cap bites on the oldest.
    static let yearOfHistory: [RetentionCandidate] = {
        let deploys = [
            "2025-11-20T14:00", "2025-12-11T10:00", "2026-01-15T16:00", "2026-02-05T11:00", "2026-02-26T15:00",
            "2026-03-19T10:00", "2026-04-30T09:00", "2026-06-04T13:00", "2026-07-09T10:00", "2026-08-27T17:00",
            "2026-09-17T10:00", "2026-10-08T12:00", "2026-10-29T10:00", "2026-11-12T09:00", "2026-11-19T10:00",
            "2026-11-23T15:00", "2026-11-24T10:00", "2026-11-26T08:00",
        ]
        var steps: [(Date, tags: [String])] = []
        for (n, deploy) in deploys.enumerated() {
            for step in 0..<(1 + n % 3) {
                steps.append((at(deploy).addingTimeInterval(Double(step) * 90), n % 6 == 5 && step == 0 ? ["release"] : []))
            }
        }
        func history(at created: Date, revision: Int?, tags: [String] = [], pinned: Bool = false) -> RetentionCandidate {
            RetentionCandidate(
                id: String(RFC3339.string(from: created).prefix(19)), createdAt: created,
                revisions: revision.map { [String(format: "rev%03d", $0)] } ?? [], tags: tags, pinned: pinned,
                storedBytes: Int64(400 + 10 * (revision ?? 0)) << 20)
        }
        var snapshots = [history(at: at("2025-11-03T09:00"), revision: nil, pinned: true)]
        snapshots += steps.enumerated().map { revision, step in history(at: step.0, revision: revision, tags: step.tags) }
        for night in stride(from: at("2026-09-01T03:00"), to: at("2026-11-26T12:00"), by: 86_400) {
            let current = steps.lastIndex { $0.0 < night }
            snapshots.append(history(at: night, revision: current))
        }
        return snapshots
    }()

    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/retention")

    @Test("decisions follow the policy and match the golden file", arguments: cases)
    func decide(_ c: DecideCase) throws {
        let now = at(c.now)
        let decisions = Retention.decide(c.snapshots, policy: c.policy, now: now, protected: c.protected)

        var rng = SplitMix64(seed: UInt64(c.name.utf8.count))
        checkRetentionInvariants(decisions, snapshots: c.snapshots, policy: c.policy, now: now, protected: c.protected, label: c.name, rng: &rng)
        if let kept = c.kept {
            #expect(Set(decisions.filter { $0.action == .keep }.map(\.id)) == kept)
        }
        for (id, reasons) in c.reasons {
            #expect(decisions.first { $0.id == id }?.reasons == reasons, "reasons of \(id)")
        }
        try compareWithGolden(decisions, name: c.name)
    }

    @Test("the size cap on a year of history removes the oldest unprotected snapshots first")
    func sizeCapOnHistory() {
        var capped = RetentionPolicy.builtInDefault
        capped.maxTotalSize = ByteSize(bytes: 5 << 30)
        let now = at("2026-11-26T12:00")
        let decisions = Retention.decide(Self.yearOfHistory, policy: capped, now: now)
        let byID = Dictionary(uniqueKeysWithValues: Self.yearOfHistory.map { ($0.id, $0) })
        let keptBytes = decisions.filter { $0.action == .keep }.reduce(Int64(0)) { $0 + (byID[$1.id]?.storedBytes ?? 0) }
        #expect(keptBytes <= 5 << 30)
        #expect(decisions.contains { $0.reasons == ["over max_total_size 5GiB"] })
        #expect(decisions.first?.action == .keep, "the pinned first deploy survives the cap")
        var rng = SplitMix64(seed: 3)
        checkRetentionInvariants(decisions, snapshots: Self.yearOfHistory, policy: capped, now: now, protected: [], label: "capped history", rng: &rng)
    }

    @Test("a manifest gives the policy what it needs")
    func candidateFromManifest() throws {
        let manifest = Manifest(
            id: "20261126T100000Z-ab12", createdAt: at("2026-11-26T10:00"), engine: .sqlite, revisions: ["b2", "a1"],
            reason: .manual, rawBytes: 4096, storedBytes: 1234, sha256: "00", pinned: true, tags: ["release"],
            database: "app.db", file: "20261126T100000Z-ab12.sqlite.gz")
        #expect(RetentionCandidate(manifest) == RetentionCandidate(
            id: "20261126T100000Z-ab12", createdAt: at("2026-11-26T10:00"), revisions: ["b2", "a1"], tags: ["release"],
            pinned: true, storedBytes: 1234))
    }

    /// Golden files are written by the test itself (MIGSNAP_RECORD_GOLDEN=1), never by hand.
    private func compareWithGolden(_ decisions: [RetentionDecision], name: String) throws {
        let actual = try String(decoding: JSON.encoder().encode(decisions), as: UTF8.self) + "\n"
        let file = Self.goldenDirectory.appendingPathComponent("\(name).json")
        if ProcessInfo.processInfo.environment["MIGSNAP_RECORD_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.goldenDirectory, withIntermediateDirectories: true)
            try Data(actual.utf8).write(to: file)
            Issue.record("re-recorded \(file.path), review the diff")
            return
        }
        guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
            Issue.record("no golden file \(file.path); run with MIGSNAP_RECORD_GOLDEN=1 and review it")
            return
        }
        #expect(actual == expected, "differs from \(file.path); if the change is intended, re-record with MIGSNAP_RECORD_GOLDEN=1 and review the diff")
    }
}

@Suite("Retention properties")
struct RetentionPropertyTests {
    @Test("invariants hold on 400 generated histories and policies")
    func generated() {
        var rng = SplitMix64(seed: 20261126)
        let start = at("2024-01-01T00:00")
        let durations = ["0d", "36h", "7d", "2w", "3m", "1y"].compactMap { try? RetentionDuration.parse($0) }
        for round in 0..<400 {
            var snapshots: [RetentionCandidate] = []
            for n in 0..<Int.random(in: 0...30, using: &rng) {
                let createdAt = Bool.random(using: &rng) && !snapshots.isEmpty && Int.random(in: 0..<10, using: &rng) == 0
                    ? snapshots[Int.random(in: 0..<snapshots.count, using: &rng)].createdAt
                    : start.addingTimeInterval(Double(Int.random(in: 0...(3 * 365 * 24 * 60), using: &rng)) * 60)
                let revisions = (0..<Int.random(in: 0...2, using: &rng)).map { _ in ["a1", "b2", "c3", "d4"].randomElement(using: &rng)! }
                snapshots.append(RetentionCandidate(
                    id: "s\(n)-\(Int.random(in: 0...999, using: &rng))", createdAt: createdAt, revisions: revisions,
                    tags: Int.random(in: 0..<5, using: &rng) == 0 ? ["release"] : [], pinned: Int.random(in: 0..<10, using: &rng) == 0,
                    storedBytes: Int64.random(in: 1...1000, using: &rng)))
            }
            let latest = snapshots.map(\.createdAt).max() ?? start
            let now = latest.addingTimeInterval(Double(Int.random(in: -10...30, using: &rng)) * 86_400)
            let protected = Set(snapshots.filter { _ in Int.random(in: 0..<10, using: &rng) == 0 }.map(\.id))
            let count = { (rng: inout SplitMix64) in Int.random(in: 0..<10, using: &rng) < 4 ? 0 : Int.random(in: 1...4, using: &rng) }
            let policy = RetentionPolicy(
                keepLast: count(&rng), keepHourly: count(&rng), keepDaily: count(&rng), keepWeekly: count(&rng),
                keepMonthly: count(&rng), keepYearly: count(&rng), keepWithin: durations.randomElement(using: &rng)!,
                keepPerRevision: count(&rng), keepTags: Bool.random(using: &rng) ? ["release"] : [],
                maxTotalSize: Bool.random(using: &rng) ? nil : ByteSize(bytes: Int64.random(in: 1...Int64(1 + snapshots.count * 500), using: &rng)),
                pruneAfterUpgrade: true)

            let decisions = Retention.decide(snapshots, policy: policy, now: now, protected: protected)
            checkRetentionInvariants(decisions, snapshots: snapshots, policy: policy, now: now, protected: protected, label: "round \(round)", rng: &rng)
        }
    }

    @Test("absurd sizes in manifests neither trap nor defeat the cap")
    func absurdSizes() {
        let snapshots = [Int64.max, -5, Int64.max, 10, 20].enumerated().map { n, bytes in
            RetentionCandidate(id: "s\(n)", createdAt: at("2026-11-0\(n + 1)T10:00"), storedBytes: bytes)
        }
        var policy = RetentionPolicy.empty
        policy.keepLast = 5
        policy.maxTotalSize = ByteSize(bytes: 25)
        let decisions = Retention.decide(snapshots, policy: policy, now: at("2026-12-01T00:00"))
        #expect(decisions.map(\.action) == [.remove, .remove, .remove, .remove, .keep])
    }

    @Test("keep_last N keeps exactly the newest N when nothing else applies")
    func keepLastCount() {
        var rng = SplitMix64(seed: 42)
        for n in 1...12 {
            let snapshots = (0..<10).map { i in
                RetentionCandidate(id: "s\(i)", createdAt: at("2026-01-01T00:00").addingTimeInterval(Double(Int.random(in: 0...1_000_000, using: &rng))))
            }
            var policy = RetentionPolicy.empty
            policy.keepLast = n
            let decisions = Retention.decide(snapshots, policy: policy, now: at("2027-01-01T00:00"))
            let expected = Set(decisions.suffix(n).map(\.id))
            #expect(Set(decisions.filter { $0.action == .keep }.map(\.id)) == expected, "keep_last \(n)")
        }
    }
}
