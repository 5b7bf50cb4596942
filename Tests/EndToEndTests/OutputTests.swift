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

extension OutputTests {
    /// Answers a confirmation on a real TTY: `script` gives migsnap a pseudo-terminal fed from `answer`.
    func onATerminal(_ p: Project, _ arguments: String, answer: String, env: [String: String] = [:]) throws -> RunResult {
        let command = "printf '\(answer)\\n' | /usr/bin/script -qec '\(Paths.binary) \(arguments)' /dev/null"
        return try run("/bin/sh", ["-c", command], in: p.dir, environment: p.environment.merging(env) { $1 })
    }

    @Test func decliningAConfirmationIsNotAnError() throws {
        let p = try Project().seeded()
        try "{\"keep_last\": 1}".write(toFile: p.dir + "/retention.json", atomically: true, encoding: .utf8)
        try p.ok("snapshot")
        try p.ok("snapshot")
        let before = try p.manifests().count
        let declined = try onATerminal(p, "prune", answer: "n")
        #expect(declined.status == 1, "\(declined.output)")
        #expect(declined.output.contains("Remove 1 snapshot? [y/N]"), "\(declined.output)")
        #expect(declined.output.contains("Nothing was changed."), "\(declined.output)")
        #expect(!declined.output.contains("Error"), "\(declined.output)")
        #expect(try p.manifests().count == before)

        let accepted = try onATerminal(p, "prune", answer: "y")
        #expect(accepted.status == 0, "\(accepted.output)")
        #expect(try p.manifests().count == 1)
    }
}
