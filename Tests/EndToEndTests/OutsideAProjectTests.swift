import Foundation
import Testing

@Suite("Outside a project, and before the first snapshot")
struct OutsideAProjectTests {
    @Test(arguments: [["list"], ["list", "--json"], ["verify"], ["prune", "--dry-run"], ["prune", "--yes"]])
    func readingTheStoreNeedsAProjectOrANamedStore(_ command: [String]) throws {
        let p = try Project()
        let empty = p.dir + "/elsewhere"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        let r = try run(Paths.binary, command, in: empty, environment: p.environment)
        #expect(r.status == 2, "\(r.output)")
        #expect(r.stderr.contains("No Alembic project here") && r.stderr.contains("--store"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty)

        let named = try run(Paths.binary, command + ["--store", p.store], in: empty, environment: p.environment)
        #expect(named.status == 0, "\(named.output)")
        let fromEnvironment = try run(Paths.binary, command, in: empty, environment: p.environment.merging(["MIGSNAP_STORE": p.store]) { $1 })
        #expect(fromEnvironment.status == 0, "\(fromEnvironment.output)")
    }

    @Test func anUpgradeWhoseAlembicCannotStartWritesNothing() throws {
        let p = try Project()
        let before = try p.tree()
        let r = try p.migsnap("upgrade", "--alembic", "no-such-alembic")
        #expect(r.status == 2, "\(r.output)")
        #expect(r.stderr.contains("`no-such-alembic` was not found on PATH"), "\(r.stderr)")
        #expect(try p.tree() == before, "no store, no snapshot, no first-deploy database")

        let broken = try p.migsnap("upgrade", "--alembic", "python3 -m no_such_module")
        #expect(broken.status == 2, "\(broken.output)")
        #expect(broken.stderr.contains("python3 -m no_such_module --version"), "\(broken.stderr)")
        #expect(try p.tree() == before)
    }

    @Test func anUpgradeWithoutItsMigrationDirectoryWritesNothing() throws {
        let p = try Project()
        try FileManager.default.moveItem(atPath: p.dir + "/migrations", toPath: p.dir + "/moved")
        let before = try p.tree()
        let r = try p.migsnap("upgrade")
        #expect(r.status == 2, "\(r.output)")
        #expect(r.stderr.contains("script_location \(p.dir)/migrations") && r.stderr.contains("is not a directory"), "\(r.stderr)")
        #expect(try p.tree() == before)
    }
}
