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

    /// MIGSNAP_TIMINGS=1 (the README's way to take a figure apart): each phase with its time on
    /// stderr, in order, and nothing of the kind without it.
    @Test func timingsNameEachPhaseOnlyWhenAskedFor() throws {
        let p = try Project().seeded()
        let snapshot = try p.migsnap(["snapshot", "--quiet"], env: ["MIGSNAP_TIMINGS": "1"])
        #expect(snapshot.status == 0, "\(snapshot.output)")
        let id = snapshot.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let timed = try p.migsnap(["restore", id, "--yes", "--no-safety-snapshot"], env: ["MIGSNAP_TIMINGS": "1"])
        #expect(timed.status == 0, "\(timed.output)")
        let lines = (snapshot.stderr + timed.stderr).split(separator: "\n").filter { $0.hasPrefix("[") }
        let phases = lines.compactMap { line -> String? in
            guard let end = line.range(of: " s] ") else { return nil }
            #expect(Double(line[line.index(after: line.startIndex)..<end.lowerBound].trimmingCharacters(in: .whitespaces)) != nil, "\(line)")
            return String(line[end.upperBound...])
        }
        for phase in ["decompressing", "checking integrity", "comparing with the database", "restoring"] {
            #expect(phases.contains(phase), "no \(phase) in \(phases)")
        }
        let order = ["decompressing", "checking integrity", "comparing with the database"].compactMap { phases.firstIndex(of: $0) }
        #expect(order == order.sorted(), "\(phases)")
        // Each phase ends once, and only a phase that began ends.
        let ends = phases.filter { $0.hasPrefix("(") }
        #expect(ends.count == Set(ends).count && !ends.contains("( done)"), "\(phases)")
        #expect(ends.allSatisfy { end in phases.contains(String(end.dropFirst().dropLast(" done)".count))) }, "\(phases)")
        let plain = try p.ok("restore", id, "--yes", "--no-safety-snapshot")
        #expect(!plain.stderr.contains(" s] "), "\(plain.stderr)")
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

extension OutputTests {
    @Test func termDumbGetsNoEscapeSequences() throws {
        let p = try Project().seeded()
        let escape = "\u{1B}["
        let xterm = try onATerminal(p, "snapshot", answer: "", env: ["TERM": "xterm"])
        #expect(xterm.status == 0 && xterm.output.contains(escape + "2K"), "the progress line is drawn: \(xterm.output)")
        #expect(xterm.output.contains(/copying: \d+ pages? \/ \d+ pages? \(\d+%\)  \d+ pages\/s/), "SQLite's copy counts pages: \(xterm.output)")
        #expect(!xterm.output.contains(/copying: \d+ B/), "\(xterm.output)")
        let red = try onATerminal(p, "show nosuch", answer: "", env: ["TERM": "xterm", "NO_COLOR": ""])
        #expect(red.output.contains(escape + "31mError:"), "\(red.output)")

        let dumb = try onATerminal(p, "snapshot", answer: "", env: ["TERM": "dumb"])
        #expect(dumb.status == 0 && !dumb.output.contains("\u{1B}"), "\(dumb.output)")
        let plain = try onATerminal(p, "show nosuch", answer: "", env: ["TERM": "dumb"])
        #expect(plain.output.contains("Error:") && !plain.output.contains("\u{1B}"), "\(plain.output)")

        let noColour = try onATerminal(p, "show nosuch", answer: "", env: ["TERM": "xterm", "NO_COLOR": "1"])
        #expect(noColour.output.contains("Error:") && !noColour.output.contains("\u{1B}"), "\(noColour.output)")
    }
}

extension OutputTests {
    @Test func verifyNamesADamagedManifestByItsFileAndEveryJSONEntryHasTheSameKeys() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let copy = "20200101-000000-000"
        try FileManager.default.copyItem(atPath: "\(p.store)/\(id).json", toPath: "\(p.store)/\(copy).json")

        let human = try p.migsnap("verify")
        #expect(human.status == 3)
        let lines = human.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("FAILED  \(copy)  ") == true, "the id column: \(human.stdout)")
        #expect(lines.first?.contains("Move the manifest out of the store") == true, "the README's advice: \(human.stdout)")
        #expect(lines.last?.hasPrefix("ok      \(id)  ") == true, "\(human.stdout)")

        let json = try p.migsnap("verify", "--json")
        #expect(json.status == 3)
        let entries = try #require(try p.json(json.stdout) as? [[String: Any]])
        let keys: Set = ["id", "ok", "error", "checked", "hot_copy", "hot_copy_problem"]
        #expect(entries.map { Set($0.keys) } == [keys, keys])
        #expect(entries.map { $0["id"] as? String } == [copy, id])
        #expect(entries[0]["error"] is String && entries[1]["error"] is NSNull)
    }
}

extension OutputTests {
    @Test("A mistyped command gets a suggestion, exit 64", arguments: [
        (["rolback"], "rollback"), (["upgarde", "head"], "upgrade"), (["help", "lst"], "list"), (["Verify"], "verify"), (["lsit"], "list"),
    ])
    func aMistypedCommandGetsASuggestion(arguments: [String], meant: String) throws {
        let p = try Project()
        let r = try p.migsnap(arguments)
        #expect(r.status == 64, "\(r.output)")
        #expect(r.stderr.contains("Did you mean `\(meant)`?"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func aCommandFarFromAnyGetsTheListOnly() throws {
        let r = try Project().migsnap("frobnicate")
        #expect(r.status == 64)
        #expect(!r.stderr.contains("Did you mean") && r.stderr.contains("lists the commands: upgrade, rollback"), "\(r.stderr)")
    }
}

extension OutputTests {
    /// The example builds migsnap, so it is not run here (scripts/example runs it whole); what it
    /// prints is what it passes to `run`: the command as a person types it, found on PATH.
    @Test func theExamplePrintsMigsnapNotABuildPath() throws {
        let script = try String(contentsOfFile: Paths.repository + "/scripts/example", encoding: .utf8)
        let runs = script.split(separator: "\n").filter { $0.hasPrefix("run ") }
        #expect(runs.count >= 8)
        #expect(runs.allSatisfy { $0.hasPrefix("run migsnap ") || $0.hasPrefix("run python ") || $0.hasPrefix("run alembic ") }, "\(runs)")
        #expect(script.contains(#"export PATH="$(dirname "$MIGSNAP"):$ROOT/.venv/bin:$PATH""#))
        let readme = try String(contentsOfFile: Paths.repository + "/README.md", encoding: .utf8)
        #expect(readme.contains("put the virtual environment's `bin` on PATH") && readme.contains("--alembic .venv/bin/alembic"))
    }
}

@Suite("Human output: one time format, no trailing spaces")
struct HumanFormatTests {
    @Test func everyLineEndsCleanAndEveryTimeReadsTheSame() throws {
        let p = try Project().seeded()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.ok("upgrade")
        try p.ok("rollback", "--yes")
        var texts: [String] = []
        for command in [["list"], ["show", id], ["status"], ["rollback", "--dry-run"], ["upgrade", "--dry-run", "--force"], ["prune", "--dry-run"]] {
            let r = try p.migsnap(command)
            texts.append(r.stdout + r.stderr)
        }
        let all = texts.joined(separator: "\n")
        let trailing = all.split(separator: "\n").filter { $0.hasSuffix(" ") }
        #expect(trailing.isEmpty, "lines ending in spaces: \(trailing)")
        // Human output shows times one way (2026-11-27 07:16:22Z), never RFC 3339's T and milliseconds.
        #expect(all.range(of: #"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"#, options: .regularExpression) == nil, "\(all)")
        #expect(all.range(of: #"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z"#, options: .regularExpression) != nil)
    }
}
