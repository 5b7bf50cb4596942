import Foundation
import Testing

/// What people read: wording, counts, colour and prompts (issue 8, "Output").
@Suite("Output end to end")
struct OutputTests {
    @Test func aFilterMatchingNothingSaysSo() throws {
        let p = try Project().seeded()
        let empty = try p.ok("list", "--tag", "nosuch")
        #expect(empty.stdout.contains("No snapshots in "), "an empty store says it is empty: \(empty.stdout)")

        try p.ok("snapshot", "--tag", "release")
        let tagged = try p.ok("list", "--tag", "nosuch")
        #expect(tagged.stdout == "No snapshot matches the filter (--tag nosuch) among the 1 snapshot in \(p.store).\n")
        let both = try p.ok("list", "--revision", "0001", "--tag", "release")
        #expect(both.stdout.hasPrefix("No snapshot matches the filter (--revision 0001 --tag release)"), "\(both.stdout)")
        #expect(try p.ok("list", "--tag", "release").stdout.contains("release"))
    }
}
