import Foundation
import Testing

extension CrashTests {
    /// kill -9 during restores from a hot copy (and back from a compressed snapshot): the database
    /// is the old state or the new, never a mix, and the hot copy is never changed by its use.
    @Test func killedHotRestoresLeaveTheOldOrTheNewState() throws {
        let p = try Project().seeded()
        _ = try p.sqlite(Self.stateA)
        let stateA = try digest(p)
        try p.ok("upgrade")
        let hot = try #require(try p.hotIDs().first)
        _ = try p.sqlite(Self.toStateB)
        let stateB = try digest(p)
        let cold = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let started = Date()
        let first = try p.ok("restore", hot, "--yes", "--no-safety-snapshot")
        #expect(first.stderr.contains("via its hot copy"), "\(first.stderr)")
        #expect(try digest(p) == stateA)
        let window = UInt32(min(Date().timeIntervalSince(started) * 1.3, 20) * 1_000_000)
        var rng = SystemRandomNumberGenerator()
        var seen: [String: Int] = [:]
        for round in 0..<30 {
            let current = try digest(p)
            // Only kills on the way to A land in a hot restore; the way back makes them possible again.
            let target = current == stateA ? cold : hot
            try killAfter(p, ["restore", target, "--yes", "--no-safety-snapshot"], microseconds: UInt32.random(in: 0..<window, using: &rng))
            let now = try digest(p)
            #expect(now == stateA || now == stateB, "round \(round): a half-restored database: \(now)")
            #expect(try p.sqlite("PRAGMA integrity_check") == "ok", "round \(round)")
            if target == hot { seen[now == current ? "old" : "new", default: 0] += 1 }
        }
        #expect(seen["old", default: 0] > 0 && seen["new", default: 0] > 0, "outcomes of killed hot restores: \(seen)")
        // The hot copy still matches its checksum, and the staging debris goes with the next run.
        let last = try p.ok("restore", hot, "--yes", "--no-safety-snapshot")
        #expect(last.stderr.contains("via its hot copy"), "\(last.stderr)")
        #expect(try digest(p) == stateA)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: p.dir).filter { $0.contains("migsnap-staging") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
