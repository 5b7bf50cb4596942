import Foundation
import Testing

/// The long human outputs, compared whole with files under Golden/ (issue 8, "How it is checked").
///
/// When an output changes on purpose, re-record instead of editing the files:
///
///     MIGSNAP_RECORD_GOLDEN=1 swift test --filter GoldenTests
///
/// That run writes every file and fails, saying which it wrote, so that a recording never passes
/// unnoticed; review `git diff Tests/EndToEndTests/Golden`, then run the tests again without it.
@Suite("Golden human output")
struct GoldenTests {
    /// `list` over a store of fixed manifests: every column, sizes from bytes to GiB, a merge
    /// point, base, pins, a hot copy, tags and a restore-verified date, exactly as printed.
    @Test func list() throws {
        let p = try Project().seeded()
        try FixedStore.write(in: p)
        for (name, command) in [("list", ["list"]), ("list-filtered", ["list", "--revision", "0002", "--tag", "nightly"]),
                                ("list-no-match", ["list", "--tag", "nosuch"])] {
            try Golden.check(name, p.migsnap(command), command: command, in: p, realSnapshots: false)
        }
    }

    /// The plans of a restore and of a rollback to a snapshot at 0002, after 0003 removed a column
    /// and rows, and the application added a row and renamed a customer. Ids and times vary: see
    /// `Golden.transcript`.
    @Test func restoreAndRollbackPlans() throws {
        let p = try Project().seeded()
        let (id, _) = try p.snapshotThenMigrate()
        _ = try p.sqlite("INSERT INTO orders (customer_id, total_cents) VALUES (1, 500); UPDATE customers SET name = 'Renamed' WHERE id = 1")
        try Golden.check("restore-plan", p.migsnap("restore", id, "--dry-run"), command: ["restore", id, "--dry-run"], in: p)
        try Golden.check("rollback-plan", p.migsnap("rollback", "--dry-run"), command: ["rollback", "--dry-run"], in: p)
    }

    /// No snapshot at the target: the plan falls back to `alembic downgrade`, and says so loudly.
    @Test func rollbackFallbackPlan() throws {
        let p = try Project().seeded()
        try p.alembic("upgrade", "head")
        try Golden.check("rollback-fallback-plan", p.migsnap("rollback", "--dry-run"), command: ["rollback", "--dry-run"], in: p)
    }
}

extension GoldenTests {
    @Test func aChangedOutputShowsAsALineDiff() {
        #expect(Golden.lineDiff("a\nb\nc\n", "a\nB\nc\nd\n") == "  a\n- b\n+ B\n  c\n+ d\n  ")
        #expect(!Golden.lineDiff("same\n", "same\n").contains(where: { "+-".contains($0) }))
    }
}

/// A store whose manifests are fixed, so that `list` prints the same bytes on every machine.
enum FixedStore {
    struct Entry {
        var id: String
        var createdAt: String
        var revisions: [String]
        var reason: String
        var targetRevision: String?
        var rawBytes: Int64
        var storedBytes: Int64
        var pinned = false
        var tags: [String] = []
        var restoreVerifiedAt: String?
        /// Whether the manifest records a hot copy (`list` reads only the record).
        var hot = false
    }

    static let entries = [
        Entry(id: "20260105-090000-000", createdAt: "2026-01-05T09:00:00.000Z", revisions: [], reason: "manual",
              rawBytes: 0, storedBytes: 20),
        Entry(id: "20260105-093000-500", createdAt: "2026-01-05T09:30:00.500Z", revisions: ["0001"], reason: "pre-upgrade",
              targetRevision: "0002", rawBytes: 20480, storedBytes: 911, pinned: true, tags: ["release", "v1.2"], hot: true),
        Entry(id: "20260106-120000-250", createdAt: "2026-01-06T12:00:00.250Z", revisions: ["0002"], reason: "pre-restore",
              rawBytes: 1_572_864, storedBytes: 524_288, tags: ["nightly"], restoreVerifiedAt: "2026-01-07T08:00:00.000Z"),
        Entry(id: "20260107-235959-999", createdAt: "2026-01-07T23:59:59.999Z", revisions: ["0002", "a1b2c3d4e5f6"], reason: "pre-downgrade",
              rawBytes: 3_221_225_472, storedBytes: 1_073_741_824),
    ]

    /// Takes one real snapshot (so that migsnap made the store and a manifest has every field it
    /// writes), then replaces it with `entries`, written from that manifest. `list` reads manifests
    /// only, so the payloads they name need not exist.
    static func write(in p: Project) throws {
        let real = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let template = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(p.store)/\(real).json"))) as? [String: Any])
        let files = try FileManager.default.contentsOfDirectory(atPath: p.store)
        for file in files where file.hasPrefix(real) || file == "index.json" {
            try FileManager.default.removeItem(atPath: "\(p.store)/\(file)")
        }
        for entry in entries {
            var manifest = template
            manifest["id"] = entry.id
            manifest["file"] = "\(entry.id).sqlite.gz"
            manifest["created_at"] = entry.createdAt
            manifest["revisions"] = entry.revisions
            manifest["reason"] = entry.reason
            manifest["target_revision"] = entry.targetRevision ?? NSNull()
            manifest["raw_bytes"] = entry.rawBytes
            manifest["stored_bytes"] = entry.storedBytes
            manifest["pinned"] = entry.pinned
            manifest["tags"] = entry.tags
            manifest["restore_verified_at"] = entry.restoreVerifiedAt ?? NSNull()
            manifest["hot"] = entry.hot ? ["bytes": entry.rawBytes, "sha256": String(repeating: "0", count: 64)] : nil
            try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys])
                .write(to: URL(fileURLWithPath: "\(p.store)/\(entry.id).json"))
        }
    }
}

enum Golden {
    static let directory = Paths.repository + "/Tests/EndToEndTests/Golden"
    static var recording: Bool { ProcessInfo.processInfo.environment["MIGSNAP_RECORD_GOLDEN"] == "1" }

    /// What a person saw: the command, its exit status, stdout and stderr. The project's directory
    /// becomes <PROJECT>; with `realSnapshots`, snapshot ids become <ID-1>, <ID-2>… in the order
    /// they first appear and times <TIME>, as they vary from run to run.
    static func transcript(_ result: RunResult, command: [String], in p: Project, realSnapshots: Bool) -> String {
        var text = """
        $ migsnap \(command.joined(separator: " "))
        exit status: \(result.status)
        --- stdout
        \(result.stdout)--- stderr
        \(result.stderr)
        """
        for dir in Set([p.dir, (p.dir as NSString).resolvingSymlinksInPath]) {
            text = text.replacingOccurrences(of: dir, with: "<PROJECT>")
        }
        guard realSnapshots else { return text }
        var ids: [String] = []
        text = text.replacing(/\d{8}-\d{6}-\d{3}/) { match in
            let id = String(match.output)
            if !ids.contains(id) { ids.append(id) }
            return "<ID-\(ids.firstIndex(of: id)! + 1)>"
        }
        return text.replacing(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z/, with: "<TIME>")
    }

    static func check(_ name: String, _ result: RunResult, command: [String], in p: Project, realSnapshots: Bool = true,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let actual = transcript(result, command: command, in: p, realSnapshots: realSnapshots)
        let file = "\(directory)/\(name).txt"
        if recording {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(actual.utf8).write(to: URL(fileURLWithPath: file))
            Issue.record("re-recorded \(file): review `git diff Tests/EndToEndTests/Golden`, then run again without MIGSNAP_RECORD_GOLDEN",
                         sourceLocation: sourceLocation)
            return
        }
        guard let expected = try? String(contentsOfFile: file, encoding: .utf8) else {
            Issue.record("no golden file \(file): record it with MIGSNAP_RECORD_GOLDEN=1 swift test --filter GoldenTests, and review it",
                         sourceLocation: sourceLocation)
            return
        }
        // A Bool, so that the failure shows the diff rather than both texts whole.
        let matchesGolden = actual == expected
        #expect(matchesGolden, """
            the output differs from \(file) (- expected, + actual):
            \(lineDiff(expected, actual))
            If the change is intended, re-record: MIGSNAP_RECORD_GOLDEN=1 swift test --filter GoldenTests, and review the diff.
            """, sourceLocation: sourceLocation)
    }

    /// Every line of both texts, those only in `old` marked `-`, only in `new` `+` (a longest
    /// common subsequence; the files are short).
    static func lineDiff(_ old: String, _ new: String) -> String {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var common = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                common[i][j] = a[i] == b[j] ? common[i + 1][j + 1] + 1 : max(common[i + 1][j], common[i][j + 1])
            }
        }
        var lines: [String] = []
        var (i, j) = (0, 0)
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                lines.append("  " + a[i]); i += 1; j += 1
            } else if i < a.count, j == b.count || common[i + 1][j] >= common[i][j + 1] {
                lines.append("- " + a[i]); i += 1
            } else {
                lines.append("+ " + b[j]); j += 1
            }
        }
        return lines.joined(separator: "\n")
    }
}
