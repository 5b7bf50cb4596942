import Foundation
import Testing

/// Issue 13, item 12: every error names the real cause, in one line, with the right exit status.
@Suite("Errors name the real cause")
struct DiagnosisTests {
    /// The `Error:` and `Try:` lines, and nothing else on stderr.
    func expectOneLineError(_ r: RunResult, status: Int32, naming fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count <= 2 && lines.first?.hasPrefix("Error: ") == true, "not one Error: line: \(r.stderr.prefix(500))", sourceLocation: sourceLocation)
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("Try: ") }, sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(r.stderr.contains(fragment), "no \(fragment) in \(r.stderr.prefix(500))", sourceLocation: sourceLocation)
        }
    }

    @Test func aMissingScriptLocationIsNamed() throws {
        let p = try Project()
        try FileManager.default.removeItem(atPath: p.dir + "/migrations")
        expectOneLineError(try p.migsnap("upgrade"), status: 2, naming: ["script_location", p.dir + "/migrations", "not a directory"])
    }

    @Test func aSQLiteURLNamingADirectoryIsBadInput() throws {
        let p = try Project()
        let directory = p.dir + "/migrations"
        for command in [["snapshot"], ["status"], ["upgrade"]] {
            let r = try p.migsnap(command + ["--url", "sqlite:///" + directory])
            expectOneLineError(r, status: 2, naming: [directory, "is a directory"])
        }
    }

    @Test func aRetentionDirectoryIsBadInput() throws {
        let p = try Project()
        let r = try p.migsnap("prune", "--dry-run", "--retention", "/tmp")
        expectOneLineError(r, status: 2, naming: ["/tmp", "is a directory"])
        #expect(!r.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func helpForAnUnknownCommandIsAUsageError() throws {
        let p = try Project()
        let r = try p.migsnap("help", "bogus")
        expectOneLineError(r, status: 64, naming: ["'bogus'"])
        #expect(try p.migsnap("help", "restore").status == 0)
        #expect(try p.migsnap("help").status == 0)
    }

    @Test("Ids and URLs with newlines or 100,000 characters are shortened, not echoed whole", arguments: [
        ["show", "abc\ndef"],
        ["show", String(repeating: "z", count: 100_000)],
        ["restore", "--revision", "r\nEvil: injected", "--yes"],
        ["rollback", String(repeating: "9", count: 100_000), "--yes"],
        ["status", "--url", "postgresql://app:hunter2\nx@db/" + String(repeating: "d", count: 100_000) + "?sslmode=bogus"],
        ["status", "--url", "postgresql://app:Tr0ub/ador@db.example.com:99999/shop?password=a&password=hunter2"],
    ])
    func userTextIsShortened(arguments: [String]) throws {
        let p = try Project()
        try p.ok("upgrade")
        let r = try p.migsnap(arguments)
        #expect(r.status != 0)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count <= 2 && lines.first?.hasPrefix("Error: ") == true, "\(r.stderr.prefix(500))")
        #expect(r.stderr.count < 2_000, "\(r.stderr.count) characters on stderr")
        #expect(!r.output.contains("hunter2") && !r.output.contains("Tr0ub") && !r.output.contains("ador@"))
    }
}
