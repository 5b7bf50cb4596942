import Foundation
import MigsnapCore
import Testing

@Suite("Alembic revision files")
struct AlembicRevisionFileTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var source: String
        var revision: String
        var down: [String]
        var labels: [String] = []
        var depends: [String] = []
        var message: String? = nil
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "classic template",
            source: """
                \"\"\"create users

                Revision ID: ae1027a6acf
                Revises:
                Create Date: 2024-01-01 10:00:00

                \"\"\"
                from alembic import op

                # revision identifiers, used by Alembic.
                revision = 'ae1027a6acf'
                down_revision = None
                branch_labels = None
                depends_on = None

                def upgrade():
                    op.create_table("users")
                """,
            revision: "ae1027a6acf", down: [], message: "create users"),
        Case(
            name: "typed template with Union annotations",
            source: """
                \"\"\"add email\"\"\"
                from typing import Sequence, Union

                revision: str = "1975ea83b712"
                down_revision: Union[str, None] = "ae1027a6acf"
                branch_labels: Union[str, Sequence[str], None] = None
                depends_on: Union[str, Sequence[str], None] = None
                """,
            revision: "1975ea83b712", down: ["ae1027a6acf"], message: "add email"),
        Case(
            name: "PEP 604 annotations, merge tuple over several lines with comments",
            source: """
                from collections.abc import Sequence
                revision: str = "m3rge"
                down_revision: str | Sequence[str] | None = (
                    "aaaa",  # the users branch
                    # a comment line inside the tuple
                    "bbbb",
                )
                """,
            revision: "m3rge", down: ["aaaa", "bbbb"]),
        Case(
            name: "list values, one-element tuple label, string dependency",
            source: """
                revision = "c0ffee"
                down_revision = ["a1", 'b2']
                branch_labels = ('billing',)
                depends_on = 'ae10'
                """,
            revision: "c0ffee", down: ["a1", "b2"], labels: ["billing"], depends: ["ae10"]),
        Case(
            name: "single-string label, tuple and list dependencies",
            source: """
                revision = 'x1'
                down_revision = 'x0'
                branch_labels = 'reports'
                depends_on = ['d1', "d2"]
                """,
            revision: "x1", down: ["x0"], labels: ["reports"], depends: ["d1", "d2"]),
        Case(
            name: "docstring and comments that mention revision",
            source: """
                '''revision = "fake" in the first line

                down_revision = 'also fake'
                '''
                # revision = 'commented'
                revision = "real"  # revision = "trailing comment"
                down_revision = None
                """,
            revision: "real", down: [], message: "revision = \"fake\" in the first line"),
        Case(
            name: "triple-quoted, implicit concatenation, parenthesised and raw strings",
            source: """
                revision = \"\"\"tq1\"\"\"
                down_revision = ("par" "ent")
                depends_on = (r'raw\\id',)
                branch_labels = ()
                """,
            revision: "tq1", down: ["parent"], depends: ["raw\\id"]),
        Case(
            name: "semicolons and backslash continuation",
            source: """
                revision = "s1"; down_revision = \\
                    "s0"
                """,
            revision: "s1", down: ["s0"]),
        Case(
            name: "indented assignments and bare annotations are not module values; the last assignment wins",
            source: """
                revision: str
                revision = "first"
                down_revision = None

                def upgrade():
                    revision = "inside"
                    down_revision = "inside"

                if False:
                    revision = "conditional"
                revision = "last"
                """,
            revision: "last", down: []),
        Case(
            name: "empty tuple and bare tuple",
            source: """
                revision = 'bt'
                down_revision = 'p1', 'p2'
                depends_on = []
                """,
            revision: "bt", down: ["p1", "p2"]),
    ]

    @Test(arguments: cases)
    func readsLiteralValues(_ c: Case) throws {
        let script = try RevisionFileReader.parse(source: c.source, path: "versions/x.py")
        #expect(script.revision == c.revision)
        #expect(script.downRevisions == c.down)
        #expect(script.branchLabels == c.labels)
        #expect(script.dependsOn == c.depends)
        #expect(script.message == c.message)
        #expect(script.path == "versions/x.py")
    }

    @Test(arguments: [
        ("revision = 'a'\ndown_revision = get_parent()\n", 2, "down_revision"),
        ("revision = REVISION_ID\ndown_revision = None\n", 1, "revision"),
        ("revision = f'a{1}'\ndown_revision = None\n", 1, "revision"),
        ("revision = 'a'\ndown_revision = None\n\n\ndepends_on = ('x', other)\n", 5, "depends_on"),
        ("revision = 'a'\ndown_revision = ('x' +\n  'y')\n", 2, "down_revision"),
        ("revision = 'a'\nbranch_labels = b'bytes'\ndown_revision = None\n", 2, "branch_labels"),
    ])
    func unreadableValuesNameFileAndLine(source: String, line: Int, name: String) {
        let error = #expect(throws: MigsnapError.self) {
            try RevisionFileReader.parse(source: source, path: "versions/bad.py")
        }
        guard case .invalidInput(let message, let hint)? = error else {
            Issue.record("expected invalidInput, got \(String(describing: error))")
            return
        }
        #expect(message.contains("versions/bad.py:\(line)"))
        #expect(message.contains(name))
        #expect(hint != nil)
    }

    @Test func missingValuesAndBrokenSyntaxAreInvalidInput() {
        for (source, path, fragment) in [
            ("revision = 'a'\n", "v/a.py", "no down_revision"),
            ("down_revision = None\n", "v/add_users.py", "could not determine revision id"),
            ("revision = 'a\ndown_revision = None\n", "v/a.py", "v/a.py:1: unterminated string"),
            ("revision = ('a', 'b')\ndown_revision = None\n", "v/a.py", "revision must be a single string"),
        ] {
            let error = #expect(throws: MigsnapError.self) { try RevisionFileReader.parse(source: source, path: path) }
            #expect(error?.message.contains(fragment) == true, "\(source): \(String(describing: error))")
        }
    }

    @Test func legacyFileNameGivesTheRevisionWhenTheFileHasNone() throws {
        let script = try RevisionFileReader.parse(source: "down_revision = None\n", path: "versions/3f2a.py")
        #expect(script.revision == "3f2a")
    }

    @Test func loadsLikeAlembicAndHashesTheBytes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = { (id: String, down: String) in "revision = '\(id)'\ndown_revision = \(down)\n" }
        try dir.write("v/b_second.py", file("b", "'a'"))
        try dir.write("v/a_first.py", file("a", "None"))
        try dir.write("v/__init__.py", "")
        try dir.write("v/__init__extra.py", "this would not parse")
        try dir.write("v/.#a_first.py", "editor lock, not python")
        try dir.write("v/notes.txt", "revision = 'no'")
        try dir.write("v/__pycache__/a_first.cpython-311.py", "this would not parse")
        try dir.write("v/sub/c_third.py", file("c", "'b'"))
        try dir.write("v/sub/deeper/d_fourth.py", file("d", "'c'"))
        try dir.write("v/Z_upper.py", file("z", "'a'"))

        let flat = try RevisionFileReader.load(versionLocations: [dir.path + "/v", dir.path + "/missing"], recursive: false)
        #expect(flat.map(\.revision) == ["z", "a", "b"])

        let deep = try RevisionFileReader.load(versionLocations: [dir.path + "/v"], recursive: true)
        #expect(deep.map(\.revision) == ["z", "a", "b", "c", "d"])

        let twice = try RevisionFileReader.load(versionLocations: [dir.path + "/v", dir.path + "/v/sub"], recursive: false)
        #expect(twice.map(\.revision) == ["z", "a", "b", "c"])

        let expected = try String(decoding: runTool("/usr/bin/sha256sum", [dir.path + "/v/a_first.py"]), as: UTF8.self)
            .split(separator: " ").first.map(String.init)
        #expect(deep.first { $0.revision == "a" }?.contentSHA256 == expected)
        #expect(deep.allSatisfy { $0.contentSHA256.count == 64 })
    }

    private func runTool(_ path: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data
    }
}
