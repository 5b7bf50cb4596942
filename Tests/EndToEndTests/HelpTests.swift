import Foundation
import Testing

/// `--help` is what a person reads to learn a command: it lists the options the command acts on,
/// and no option that it would accept and ignore (issue 8, "Output").
@Suite("Help end to end")
struct HelpTests {
    /// The options that say where things are and how to run, shared by several commands.
    static let shared = ["--config", "--store", "--url", "--version-table", "--version-table-schema", "--alembic", "--retention", "--threads"]

    static let store = ["--config", "--store"]
    static let database = ["--url", "--version-table", "--version-table-schema"]

    struct Command: Sendable, CustomTestStringConvertible {
        var name: String
        /// What it must be given besides the option under test, so that only that option is wrong.
        var required: [String]
        /// The shared options it uses.
        var uses: [String]
        var testDescription: String { name }
    }

    static let commands: [Command] = [
        Command(name: "upgrade", required: [], uses: store + database + ["--alembic", "--retention", "--threads"]),
        Command(name: "rollback", required: [], uses: store + database + ["--alembic", "--threads"]),
        Command(name: "restore", required: ["x"], uses: store + database + ["--alembic", "--threads"]),
        Command(name: "snapshot", required: [], uses: store + database + ["--threads"]),
        Command(name: "verify", required: [], uses: store + database + ["--threads"]),
        Command(name: "diff", required: ["x"], uses: store + database + ["--threads"]),
        Command(name: "status", required: [], uses: store + database + ["--alembic"]),
        Command(name: "prune", required: [], uses: store + ["--retention"]),
        Command(name: "list", required: [], uses: store),
        Command(name: "show", required: ["x"], uses: store),
        Command(name: "pin", required: ["x"], uses: store),
        Command(name: "unpin", required: ["x"], uses: store),
        Command(name: "unguard", required: ["--all"], uses: store),
        Command(name: "copy", required: ["--all", "--to", "elsewhere"], uses: store),
        Command(name: "hook", required: [], uses: []),
    ]

    static func migsnap(_ arguments: [String]) throws -> RunResult {
        try run(Paths.binary, arguments, in: FileManager.default.temporaryDirectory.path)
    }

    /// The long options the help's option lines start with (`  -c, --config <file>  …`).
    static func listedOptions(_ help: String) -> Set<String> {
        Set(help.split(separator: "\n").compactMap { line in
            line.firstMatch(of: /^  (?:-[A-Za-z], )?(--[a-z][a-z-]*)/).map { String($0.1) }
        })
    }

    @Test("--help lists the shared options the command uses, and no other", arguments: commands)
    func helpListsWhatTheCommandUses(_ c: Command) throws {
        let help = try Self.migsnap([c.name, "--help"])
        #expect(help.status == 0, "\(help.output)")
        let listed = Self.listedOptions(help.stdout)
        for option in Self.shared {
            #expect(listed.contains(option) == c.uses.contains(option),
                    "`migsnap \(c.name) --help` \(listed.contains(option) ? "lists" : "does not list") \(option):\n\(help.stdout)")
        }
        #expect(listed.contains("--help"), "the parsing above found the option lines: \(help.stdout)")
    }

    /// An option the command would ignore is refused rather than silently accepted.
    @Test("a shared option the command does not use is a usage error", arguments: commands)
    func anUnusedOptionIsRefused(_ c: Command) throws {
        // Without a value: a command with an array of arguments would take the value as one.
        for option in Self.shared where !c.uses.contains(option) {
            let r = try Self.migsnap([c.name] + c.required + [option])
            #expect(r.status == 64 && r.stderr.contains("Unknown option '\(option)'"),
                    "migsnap \(c.name) \(option) exited \(r.status): \(r.stderr)")
        }
    }

    @Test("rollback's usage shows one target, as upgrade's does", arguments: [
        ("rollback", "migsnap rollback [<options>] [<target>]"), ("upgrade", "migsnap upgrade [<options>] [<target>]"),
    ])
    func usageShowsOneTarget(command: String, usage: String) throws {
        let help = try Self.migsnap([command, "--help"])
        #expect(help.stdout.contains("\nUSAGE: \(usage)\n"), "\(help.stdout)")
        #expect(!help.stdout.contains("..."), "\(help.stdout)")
        let twoTargets = try Self.migsnap([command, "a", "b"])
        #expect(twoTargets.status == 64)
        #expect(twoTargets.stderr.contains("Usage: \(usage)\n"), "\(twoTargets.stderr)")
    }
}
