import Foundation
import Testing

@Suite("--threads and MIGSNAP_THREADS")
struct ThreadsTests {
    @Test("one thread or several write the same snapshot bytes, and restore on any count")
    func sameBytesAnyThreads() throws {
        let p = try Project().seeded()
        let before = try p.dump()
        let one = try p.ok("snapshot", "--quiet", "--threads", "1").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let two = try p.migsnap(["snapshot", "--quiet"], env: ["MIGSNAP_THREADS": "2"])
        #expect(two.status == 0)
        let files = try p.manifests().compactMap { $0["file"] as? String }
        #expect(files.count == 2)
        #expect(files.count == 2 && fileBytes(p.store + "/" + files[0]) == fileBytes(p.store + "/" + files[1]))
        #expect(try p.ok("verify", one, "--threads", "3").status == 0)

        try p.alembic("upgrade", "head")
        #expect(try p.dump() != before)
        _ = try p.ok("restore", one, "--yes", "--threads", "3")
        #expect(try p.dump() == before)
    }

    @Test("a thread count that is not 1 to 64 is a malformed command line",
          arguments: [(["--threads", "0"], [String: String]()), (["--threads", "65"], [:]), ([], ["MIGSNAP_THREADS": "many"])])
    func invalid(arguments: [String], env: [String: String]) throws {
        let p = try Project().seeded()
        let result = try p.migsnap(["snapshot", "--quiet"] + arguments, env: env)
        #expect(result.status == 64)
        #expect(result.stderr.contains("threads") || result.stderr.contains("MIGSNAP_THREADS"))
        #expect(try p.manifests().isEmpty)
    }
}
