import Foundation
import Testing

/// Payloads encrypted in the age format: readable by `age -d` by hand, and migsnap reads what
/// `age -r` wrote. Needs Debian's `age` (scripts/test installs it): missing, these tests fail.
@Suite("Encryption at rest (age)")
struct EncryptionTests {
    struct Keys {
        let file: String
        let recipient: String
    }

    func keys(_ p: Project, _ name: String = "key.txt") throws -> Keys {
        let file = p.dir + "/" + name
        let gen = try run("/usr/bin/age-keygen", ["-o", file], in: p.dir)
        try #require(gen.status == 0, "age-keygen: \(gen.output) (scripts/test installs Debian's age)")
        let recipient = try run("/usr/bin/age-keygen", ["-y", file], in: p.dir).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return Keys(file: file, recipient: recipient)
    }

    func payload(_ p: Project, _ id: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: p.store)
        return p.store + "/" + (try #require(names.first { $0.hasPrefix(id) && !$0.hasSuffix(".json") }))
    }

    @Test func roundTripAndByHand() throws {
        let p = try Project().seeded()
        let k = try keys(p)
        let before = try p.dump()
        let snap = try p.migsnap("snapshot", "--json", env: ["MIGSNAP_AGE_RECIPIENT": k.recipient])
        #expect(snap.status == 0, "\(snap.output)")
        let m = try #require(try p.json(snap.stdout) as? [String: Any])
        let id = try #require(m["id"] as? String)
        #expect((m["file"] as? String)?.hasSuffix(".sqlite.gz.age") == true)
        #expect(((m["encryption"] as? [String: Any])?["recipients"] as? [String]) == [k.recipient])
        let manifestText = try String(contentsOfFile: p.store + "/\(id).json", encoding: .utf8)
        #expect(!manifestText.contains("AGE-SECRET-KEY"))
        let file = try payload(p, id)
        #expect(fileBytes(file)?.prefix(21) == Data("age-encryption.org/v1".utf8))

        // By hand, without migsnap: age -d, then gunzip.
        let byHand = try run("/bin/sh", ["-c", "age -d -i '\(k.file)' '\(file)' | gunzip > '\(p.dir)/by-hand.db'"], in: p.dir)
        #expect(byHand.status == 0, "\(byHand.output)")
        #expect(try p.dump(p.dir + "/by-hand.db") == before)

        try p.alembic("upgrade", "head")
        let noKey = try p.migsnap("restore", id, "--yes")
        #expect(noKey.status == 2 && noKey.stderr.contains("MIGSNAP_AGE_IDENTITY"), "\(noKey.output)")
        let wrong = try keys(p, "other.txt")
        let wrongKey = try p.migsnap("restore", id, "--yes", env: ["MIGSNAP_AGE_IDENTITY": wrong.file])
        #expect(wrongKey.status == 2, "\(wrongKey.output)")
        #expect(try p.dump() != before, "the database is untouched by refused restores")
        let restored = try p.migsnap("restore", id, "--yes", env: ["MIGSNAP_AGE_IDENTITY": k.file])
        #expect(restored.status == 0, "\(restored.output)")
        #expect(try p.dump() == before)
        #expect(try p.migsnap("verify", id, env: ["MIGSNAP_AGE_IDENTITY": k.file]).status == 0)
    }

    @Test func aFlippedByteIsCaughtBeforeTheDatabaseIsTouched() throws {
        let p = try Project().seeded()
        let k = try keys(p)
        let id = try p.migsnap("snapshot", "--quiet", env: ["MIGSNAP_AGE_RECIPIENT": k.recipient]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.alembic("upgrade", "head")
        let after = try p.dump()
        let file = try payload(p, id)
        var bytes = try #require(fileBytes(file))
        bytes[bytes.count - 40] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: file))
        let r = try p.migsnap("restore", id, "--yes", env: ["MIGSNAP_AGE_IDENTITY": k.file])
        #expect(r.status == 3, "\(r.output)")
        #expect(try p.dump() == after)
    }

    @Test func migsnapRestoresWhatAgeEncrypted() throws {
        let p = try Project().seeded()
        let k = try keys(p)
        let before = try p.dump()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // A person encrypts a plain payload with the age tool and records it in the manifest.
        let plain = try payload(p, id)
        let encrypted = plain + ".age"
        let age = try run("/usr/bin/age", ["-r", k.recipient, "-o", encrypted, plain], in: p.dir)
        #expect(age.status == 0, "\(age.output)")
        try FileManager.default.removeItem(atPath: plain)
        let manifestPath = p.store + "/\(id).json"
        let manifestData = try #require(fileBytes(manifestPath))
        var manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let data = try #require(fileBytes(encrypted))
        manifest["file"] = (encrypted as NSString).lastPathComponent
        manifest["stored_bytes"] = data.count
        manifest["sha256"] = try run("/usr/bin/sha256sum", [encrypted], in: p.dir).stdout.split(separator: " ").first.map(String.init)
        manifest["encryption"] = ["format": "age-v1", "recipients": [k.recipient]]
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: manifestPath))

        try p.alembic("upgrade", "head")
        let r = try p.migsnap("restore", id, "--yes", env: ["MIGSNAP_AGE_IDENTITY": k.file])
        #expect(r.status == 0, "\(r.output)")
        #expect(try p.dump() == before)
    }

    @Test func aMalformedRecipientStopsBeforeAnythingIsWritten() throws {
        let p = try Project().seeded()
        let r = try p.migsnap("snapshot", env: ["MIGSNAP_AGE_RECIPIENT": "age1notarecipient"])
        #expect(r.status == 2, "\(r.output)")
        #expect(!FileManager.default.fileExists(atPath: p.store))
    }
}
