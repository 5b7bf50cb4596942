import Foundation
import Testing

@Suite("copy between stores")
struct CopyTests {
    @Test func copiesVerifiedSkipsWhatIsThereAndRestoresFromTheCopy() throws {
        let p = try Project().seeded()
        let before = try p.dump()
        let first = try p.ok("snapshot", "--quiet", "--pin").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.ok("snapshot", "--quiet")
        let other = p.dir + "/elsewhere"

        let dry = try p.ok("copy", "--all", "--to", other, "--dry-run")
        #expect(dry.stdout.contains("would be copied"))
        #expect(!FileManager.default.fileExists(atPath: other), "a dry run creates nothing")

        let copied = try p.ok("copy", "--all", "--to", other, "--json")
        let outcomes = try #require(try p.json(copied.stdout) as? [[String: Any]])
        #expect(outcomes.map { $0["action"] as? String } == ["copied", "copied"])
        let again = try p.ok("copy", first, "--to", other, "--json")
        #expect((try p.json(again.stdout) as? [[String: Any]])?.first?["action"] as? String == "present")

        // The copy is a store of its own: listed, verified, pinned as the original, restorable.
        let listed = try #require(try p.json(try p.ok("list", "--json", "--store", other).stdout) as? [[String: Any]])
        #expect(listed.map { $0["id"] as? String } == (try p.manifests()).map { $0["id"] as? String })
        #expect(listed.first?["pinned"] as? Bool == true)
        try p.ok("verify", "--store", other)
        try p.alembic("upgrade", "head")
        try FileManager.default.removeItem(atPath: p.store)
        try p.ok("restore", first, "--yes", "--store", other, "--no-safety-snapshot")
        #expect(try p.dump() == before)
    }

    @Test func aDamagedSourceIsNotCopied() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let payload = try #require(try FileManager.default.contentsOfDirectory(atPath: p.store).first { $0.hasPrefix(id) && $0.hasSuffix(".gz") })
        let handle = try #require(FileHandle(forUpdatingAtPath: p.store + "/" + payload))
        try handle.seek(toOffset: 20)
        try handle.write(contentsOf: Data([0xFF, 0x00, 0xFF]))
        try handle.close()
        let r = try p.migsnap("copy", id, "--to", p.dir + "/elsewhere")
        #expect(r.status == 3, "\(r.output)")
        let listed = try p.json(try p.migsnap("list", "--json", "--store", p.dir + "/elsewhere").stdout) as? [Any]
        #expect(listed?.isEmpty == true)
    }
}
