import Foundation
import Testing

extension Project {
    /// Every path under the project with its mode and content: what "byte-identical" compares.
    func tree() throws -> [String: String] {
        var entries: [String: String] = [:]
        let enumerator = try #require(FileManager.default.enumerator(atPath: dir))
        while let relative = enumerator.nextObject() as? String {
            let path = dir + "/" + relative
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
            let content = attributes[.type] as? FileAttributeType == .typeDirectory ? "dir" : (fileBytes(path)?.base64EncodedString() ?? "?")
            entries[relative] = "\(String(mode, radix: 8)) \(content)"
        }
        return entries
    }

    /// Runs each command and checks that the project directory is byte-identical afterwards.
    func expectNoChange(_ commands: [[String]], sourceLocation: SourceLocation = #_sourceLocation) throws {
        for command in commands {
            let before = try tree()
            let r = try migsnap(command)
            #expect([0, 4].contains(r.status), "migsnap \(command.joined(separator: " ")): \(r.output)", sourceLocation: sourceLocation)
            let after = try tree()
            let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
            #expect(changed.isEmpty, "migsnap \(command.joined(separator: " ")) changed \(changed)", sourceLocation: sourceLocation)
        }
    }
}

@Suite("Dry runs and reading commands change nothing")
struct DryRunTests {
    @Test func withoutAStoreNothingIsCreated() throws {
        let p = try Project().seeded()
        try p.alembic("upgrade", "head")
        try p.expectNoChange([
            ["rollback", "-1", "--dry-run"], ["rollback", "base", "--dry-run", "--json"], ["upgrade", "--dry-run"],
            ["upgrade", "0002", "--dry-run"], ["prune", "--dry-run"], ["list"], ["list", "--json"], ["status"],
            ["status", "--json"], ["verify"], ["unguard", "--all", "--dry-run"], ["upgrade"],
        ])
        #expect(!FileManager.default.fileExists(atPath: p.store))
    }

    @Test func withAStoreNothingChanges() throws {
        let p = try Project().upgradedWithSnapshots()
        try p.ok("rollback", "0001", "--yes")
        try p.ok("upgrade", "0002")
        let first = try #require(try p.manifests().first?["id"] as? String)
        try p.expectNoChange([
            ["restore", first, "--dry-run"], ["restore", "--revision", "0001", "--dry-run", "--json"],
            ["rollback", "--dry-run"], ["rollback", "base", "--dry-run", "--json"], ["upgrade", "--dry-run"],
            ["upgrade", "--dry-run", "--json"], ["prune", "--dry-run"], ["prune", "--dry-run", "--json"],
            ["list"], ["show", first], ["status"], ["verify"], ["verify", first, "--json"], ["unguard", "--all", "--dry-run"],
        ])
    }
}
