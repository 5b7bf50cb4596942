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
        // A whole hot restore, timed twice (the quicker counts: a first run may wait on a cold cache).
        var whole = TimeInterval.infinity
        for _ in 0..<2 {
            let started = Date()
            let run = try p.ok("restore", hot, "--yes", "--no-safety-snapshot")
            whole = min(whole, Date().timeIntervalSince(started))
            #expect(run.stderr.contains("via its hot copy"), "\(run.stderr)")
            #expect(try digest(p) == stateA)
            try p.ok("restore", cold, "--yes", "--no-safety-snapshot")
        }
        // Kills spread evenly from early in a restore to past its end, so that both outcomes
        // come up whatever the machine's speed (random moments left that to chance).
        let fractions = [0.05, 0.25, 0.45, 0.65, 0.85, 1.05, 1.3]
        var hotRounds = 0
        var seen: [String: Int] = [:]
        for round in 0..<30 {
            let current = try digest(p)
            // Only kills on the way to A land in a hot restore; the way back makes them possible again.
            let target = current == stateA ? cold : hot
            let at = target == hot ? fractions[hotRounds % fractions.count] : fractions[round % fractions.count]
            if target == hot { hotRounds += 1 }
            try killAfter(p, ["restore", target, "--yes", "--no-safety-snapshot"], microseconds: UInt32(min(whole * at, 20) * 1_000_000))
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
