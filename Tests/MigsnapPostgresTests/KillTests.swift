import Foundation
import MigsnapCore
@testable import MigsnapPostgres
import Testing

/// The built migsnap binary: MIGSNAP_BIN (scripts/test sets it) or this checkout's debug build.
func migsnapBinary() throws -> String {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    let binary = ProcessInfo.processInfo.environment["MIGSNAP_BIN"].flatMap { $0.isEmpty ? nil : $0 }
        ?? url.path + "/.build/debug/migsnap"
    try #require(FileManager.default.isExecutableFile(atPath: binary),
                 "No migsnap binary at \(binary): run `swift build` first, or the tests through scripts/test.")
    return binary
}

@Suite("PostgreSQL restore killed with SIGKILL")
struct KillTests {
    /// The URL travels in DATABASE_URL, so the password is on no command line.
    func migsnap(_ db: TestDatabase, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try migsnapBinary())
        process.arguments = arguments + ["--store", db.directory.appendingPathComponent("store").path]
        process.currentDirectoryURL = db.directory
        let url = try #require(ProcessInfo.processInfo.environment["MIGSNAP_TEST_PG_URL"])
        let databaseURL = String(url[..<url.range(of: "/", options: .backwards)!.lowerBound]) + "/" + db.name
        process.environment = ProcessInfo.processInfo.environment.merging(["DATABASE_URL": databaseURL]) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = Pipe()
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func snapshotID(_ db: TestDatabase) throws -> String {
        let process = try migsnap(db, ["snapshot", "--quiet"])
        let out = (process.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        return String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("kill -9 at any moment of a restore leaves the old or the new database, whole")
    func killedRestore() throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: VersionTable())
        try db.sql("CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g; CREATE INDEX ON bulk (h)")
        let a = try snapshotID(db)
        let stateA = try db.state()
        try damage(db, versionTable: VersionTable())
        let b = try snapshotID(db)
        let stateB = try db.state()
        #expect(stateA != stateB)

        let started = Date()
        let full = try migsnap(db, ["restore", a, "--yes", "--no-safety-snapshot"])
        full.waitUntilExit()
        try #require(full.terminationStatus == 0)
        #expect(try db.state() == stateA)
        let window = UInt32(min(Date().timeIntervalSince(started) * 1.3, 20) * 1_000_000)

        var outcomes: [String: Int] = [:]
        for round in 0..<12 {
            let before = try db.state()
            let process = try migsnap(db, ["restore", before == stateA ? b : a, "--yes", "--no-safety-snapshot"])
            usleep(UInt32.random(in: 0..<window))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let after = try db.state()
            #expect(after == stateA || after == stateB, "round \(round): a half-restored database")
            outcomes[after == before ? "old" : "new", default: 0] += 1
        }
        #expect(outcomes["old", default: 0] > 0 && outcomes["new", default: 0] > 0, "outcomes: \(outcomes)")

        // The next run clears the copies the killed ones left behind.
        let last = try migsnap(db, ["restore", a, "--yes", "--no-safety-snapshot"])
        last.waitUntilExit()
        #expect(last.terminationStatus == 0)
        #expect(try db.state() == stateA)
        #expect(try db.sql("SELECT count(*) FROM pg_database WHERE starts_with(datname, '\(DatabaseSwap.debrisPrefix(db.name))')") == ["0"])
    }
}
