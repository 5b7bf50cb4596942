import Foundation
import Testing

/// `verify --restore`: a check that restores, as people who run backups ask for.
@Suite("verify --restore")
struct VerifyRestoreTests {
    @Test func sqliteRecordsWhenAndCatchesOtherRows() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try p.manifests().first?["restore_verified_at"] is NSNull)
        let r = try p.ok("verify", "--restore")
        #expect(r.stdout.contains("restored into a staged copy"))
        let at = try #require(try p.manifests().first?["restore_verified_at"] as? String)
        #expect(at.hasPrefix(String(RFC3339Now().prefix(10))))
        #expect(try p.ok("show", id).stdout.contains("restore verified"))

        // A manifest whose recorded rows the payload does not hold fails the restore check only.
        let path = p.store + "/\(id).json"
        let data = try #require(fileBytes(path))
        var manifest = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var shape = try #require(manifest["shape"] as? [String: Any])
        var tables = try #require(shape["tables"] as? [String: Any])
        var customers = try #require(tables["customers"] as? [String: Any])
        customers["rows"] = 999
        tables["customers"] = customers
        shape["tables"] = tables
        manifest["shape"] = shape
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: path))
        try p.ok("verify")
        let failed = try p.migsnap("verify", "--restore")
        #expect(failed.status == 3, "\(failed.output)")
        #expect(failed.stdout.contains("customers"), "\(failed.output)")
    }

    @Test func postgresRestoresIntoAScratchDatabaseAndDropsIt() throws {
        let db = try PostgresDatabase()
        let p = try Project.postgres(db)
        try p.ok("upgrade", "0002")
        try p.seedPostgres(db)
        try p.ok("snapshot")
        let before = try db.state()
        let r = try p.migsnap("verify", "--restore", "--json")
        #expect(r.status == 0, "\(r.output)")
        #expect((try p.json(r.stdout) as? [[String: Any]])?.first?["ok"] as? Bool == true)
        #expect(try p.manifests().first?["restore_verified_at"] is String)
        expectSameState(try db.state(), before)
        // This database's scratch copies only: other tests on the shared server stage their own meanwhile.
        #expect(try scratchDatabases(of: db) == "", "the scratch database is dropped")
    }
}

func RFC3339Now() -> String {
    ISO8601DateFormatter().string(from: Date())
}
