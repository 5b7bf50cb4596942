import Foundation
import Testing

@Suite("Prune end to end")
struct PruneTests {
    func project(snapshots count: Int, policy: String) throws -> (Project, [String]) {
        let p = try Project().seeded()
        try policy.write(toFile: p.dir + "/retention.json", atomically: true, encoding: .utf8)
        var ids: [String] = []
        for _ in 0..<count {
            ids.append(try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return (p, ids)
    }

    func storeFiles(_ p: Project) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: p.store).filter { !$0.hasPrefix(".") && $0 != "index.json" }.sorted()
    }

    @Test func dryRunThenPrune() throws {
        let (p, ids) = try project(snapshots: 5, policy: #"{"keep_last": 2, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_per_revision": 0, "keep_tags": [], "max_total_size": "0"}"#)
        try p.ok("pin", ids[0])
        let filesBefore = try storeFiles(p)
        let dry = try p.ok("prune", "--dry-run", "--json")
        let decisions = try #require(try p.json(dry.stdout) as? [[String: Any]])
        #expect(decisions.map { $0["id"] as? String } == ids)
        #expect(decisions.map { $0["action"] as? String } == ["keep", "remove", "remove", "keep", "keep"])
        #expect((decisions[0]["reasons"] as? [String])?.contains("pinned") == true)
        #expect(decisions.allSatisfy { ($0["reasons"] as? [String])?.isEmpty == false })
        #expect(try storeFiles(p) == filesBefore)

        let human = try p.ok("prune", "--dry-run").stdout
        #expect(human.contains("remove") && human.contains("Dry run"))

        let noTTY = try p.migsnap("prune")
        #expect(noTTY.status == 4)
        #expect(try storeFiles(p) == filesBefore)

        try p.ok("prune", "--yes")
        #expect(try p.manifests().compactMap { $0["id"] as? String } == [ids[0], ids[3], ids[4]])
        #expect(try storeFiles(p).count == 6)
        #expect(try p.migsnap("verify").status == 0)
    }

    @Test func sizeCapRemovesTheOldestFirst() throws {
        let (p, ids) = try project(snapshots: 4, policy: #"{"keep_last": 10, "max_total_size": "1B"}"#)
        let decisions = try #require(try p.json(try p.ok("prune", "--dry-run", "--json").stdout) as? [[String: Any]])
        #expect(decisions.map { $0["action"] as? String } == ["remove", "remove", "remove", "keep"])
        let pruned = try p.ok("prune", "--yes")
        #expect(try p.manifests().compactMap { $0["id"] as? String } == [ids[3]])
        #expect(pruned.stderr.contains("over max_total_size 1B"), "the newest alone is over the cap: \(pruned.stderr)")
    }

    @Test("A broken policy removes nothing and names the key", arguments: [
        (#"{"keep_dayly": 3}"#, "keep_dayly"),
        (#"{"keep_last": -1}"#, "keep_last"),
        (#"{"max_total_size": "20 gigs"}"#, "max_total_size"),
        (#"{"keep_within": "7 days"}"#, "keep_within"),
        (#"{"keep_last": "ten"}"#, "keep_last"),
        (#"{"keep_last": 1"#, "retention.json"),
    ])
    func brokenPolicy(policy: String, key: String) throws {
        let (p, _) = try project(snapshots: 3, policy: policy)
        let before = try storeFiles(p)
        let r = try p.migsnap("prune", "--yes")
        #expect(r.status == 2, "\(r.output)")
        #expect(r.stderr.contains(key), "\(r.stderr)")
        #expect(try storeFiles(p) == before)
    }

    @Test func anEmptyPolicyRemovesNothingAndSaysSo() throws {
        let (p, _) = try project(snapshots: 3, policy: #"{"keep_last": 0, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_per_revision": 0, "keep_tags": [], "max_total_size": "0"}"#)
        let r = try p.ok("prune", "--yes")
        #expect(r.stdout.contains("nothing is removed"))
        #expect(try p.manifests().count == 3)
    }

    @Test func upgradePrunesButNeverItsOwnSnapshots() throws {
        let p = try Project()
        try #"{"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_per_revision": 0, "keep_tags": []}"#
            .write(toFile: p.dir + "/retention.json", atomically: true, encoding: .utf8)
        try p.ok("upgrade", "0001")
        let before = try p.manifests().compactMap { $0["id"] as? String }
        let manual = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let upgraded = try p.ok("upgrade")
        let reasons = try p.manifests().map { $0["reason"] as? String }
        #expect(reasons == ["pre-upgrade", "pre-upgrade", "post-upgrade"], "the three snapshots of the last upgrade stay, the rest is pruned")
        let removed = (before + [manual]).joined(separator: ", ")
        #expect(upgraded.stdout.contains("Pruned 3 old snapshots per the retention policy: \(removed)."), "\(upgraded.stdout)")
        #expect(upgraded.stdout.contains("Upgraded") && upgraded.stdout.contains(": 2 steps, snapshots "), "\(upgraded.stdout)")
        #expect(!upgraded.output.contains("(s)"), "\(upgraded.output)")
        try p.ok("upgrade", "--no-prune")
    }

    @Test func aBrokenPolicyStopsAnUpgradeBeforeAnythingEvenWithNoPrune() throws {
        // The policy also says how many hot copies to keep, so --no-prune reads it too.
        let p = try Project()
        try #"{"keep_hot": -1}"#.write(toFile: p.dir + "/retention.json", atomically: true, encoding: .utf8)
        for arguments in [["upgrade"], ["upgrade", "--no-prune"]] {
            let r = try p.migsnap(arguments)
            #expect(r.status == 2, "\(arguments): \(r.output)")
            #expect(r.stderr.contains("keep_hot"), "\(arguments): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: p.store), "nothing was written")
    }

    @Test func aKilledPruneLeavesAConsistentStore() throws {
        let (p, _) = try project(snapshots: 12, policy: #"{"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0, "keep_per_revision": 0, "keep_tags": []}"#)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = ["prune", "--yes"]
        process.currentDirectoryURL = URL(fileURLWithPath: p.dir)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(UInt32.random(in: 20_000..<120_000))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Whatever the moment: every listed snapshot has its file and verifies.
        #expect(try p.migsnap("verify").status == 0)
        try p.ok("prune", "--yes")
        #expect(try p.manifests().count == 1)
        #expect(try storeFiles(p).count == 2)
    }
}
