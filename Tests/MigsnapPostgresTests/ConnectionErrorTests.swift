import Foundation
import MigsnapCore
@testable import MigsnapPostgres
import Testing

@Suite("PostgreSQL connection errors")
struct ConnectionErrorTests {
    @Test("a wrong password is bad input, and the message holds no password")
    func wrongPassword() throws {
        var target = try TestServer.target()
        target.password = "Wr0ng-s3cret@/%"
        #expect {
            _ = try PostgresEngine(target: target).currentRevisions(versionTable: VersionTable())
        } throws: { error in
            guard case .invalidInput(let message, let hint) = error as? MigsnapError else { return false }
            let text = message + (hint ?? "")
            return message.contains("rejected the password") && !text.contains("Wr0ng-s3cret")
        }
    }

    @Test("a missing database is bad input naming it; databaseExists says false")
    func missingDatabase() throws {
        let engine = PostgresEngine(target: try TestServer.target().with(database: "no_such_db_migsnap"))
        #expect(try engine.databaseExists() == false)
        #expect(throws: MigsnapError.invalidInput(
            "The database \"no_such_db_migsnap\" does not exist on 127.0.0.1:\(try TestServer.target().port!).",
            hint: "Check the database name in the URL, or create it with createdb.")) {
            try engine.rowCounts()
        }
        #expect(try PostgresEngine(target: TestServer.target()).databaseExists())
    }

    @Test("a server that is not running: failed, asking whether it runs at host:port")
    func serverDown() throws {
        var target = try TestServer.target()
        target.port = 1
        #expect {
            _ = try PostgresEngine(target: target).currentRevisions(versionTable: VersionTable())
        } throws: { error in
            guard case .failed(_, let hint) = error as? MigsnapError else { return false }
            return hint?.contains("Is the server running at 127.0.0.1:1?") == true
        }
    }

    @Test("no file the engine writes holds the password")
    func passwordNeverWritten() throws {
        let db = try TestDatabase()
        let password = try #require(db.target.password)
        try loadFixture(db, versionTable: VersionTable())
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        try db.engine.restore(payload: db.payload(), expectedRevisions: ["abc123"], versionTable: VersionTable(), progress: SilentProgress())
        let written = try FileManager.default.contentsOfDirectory(at: db.directory, includingPropertiesForKeys: nil)
        #expect(!written.isEmpty)
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        for file in written {
            let bytes = try Data(contentsOf: file)
            #expect(bytes.range(of: Data(password.utf8)) == nil, "\(file.lastPathComponent) holds the password")
            #expect(bytes.range(of: Data(encoded.utf8)) == nil, "\(file.lastPathComponent) holds the encoded password")
        }
    }

    @Test("pg_dump's version banner gives the major version", arguments: [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 15),
        ("pg_restore (PostgreSQL) 17.2", 17),
        ("pg_dump (PostgreSQL) 9.6.24", 96),
        ("something else", nil),
    ] as [(String, Int?)])
    func versionBanner(banner: String, major: Int?) {
        #expect(ClientTools.majorVersion(banner) == major)
    }
}
