import Foundation
import Testing
@testable import MigsnapCore

/// Histories whose revision files take every value from a module of constants (as neutron's
/// `branch_labels = (cli.CONTRACT_BRANCH,)`): the static reader cannot read them, so migsnap plans
/// from Alembic's own map, asked from the driver. The map must equal what the static reader finds
/// in the same history written with literals (which "Alembic conformance" compares with Alembic),
/// so the plans are Alembic's.
@Suite("Alembic conformance: histories with imported constants")
struct ComputedRevisionMapTests {
    static let graphCount = 24

    /// Appends assignments from `migrations/consts.py` to every revision file: Python's last
    /// assignment wins, with the same values, and none of them is a literal any more.
    func rewriteWithConstants(_ generated: GeneratedProject, in directory: TemporaryDirectory) throws {
        func python(_ values: [String]) -> String {
            "(" + values.map { "\"\($0)\"" }.joined(separator: ", ") + (values.count == 1 ? ",)" : ")")
        }
        var constants = ""
        for (index, revision) in generated.revisions.enumerated() {
            constants += "REVISION_\(index) = \"\(revision.id)\"\n"
            constants += "DOWN_\(index) = \(revision.down.isEmpty ? "None" : python(revision.down))\n"
            constants += "LABELS_\(index) = \(revision.labels.isEmpty ? "None" : python(revision.labels))\n"
            constants += "DEPENDS_\(index) = \(revision.dependsOn.isEmpty ? "None" : python(revision.dependsOn))\n"
            let path = directory.sub("migrations/versions/\(revision.fileName)")
            let source = try String(contentsOfFile: path, encoding: .utf8)
            try (source + """

                from migrations import consts
                revision = consts.REVISION_\(index)
                down_revision = consts.DOWN_\(index)
                branch_labels = consts.LABELS_\(index)
                depends_on = consts.DEPENDS_\(index)

                """).write(toFile: path, atomically: false, encoding: .utf8)
        }
        try directory.write("migrations/consts.py", constants)
        let ini = directory.sub("alembic.ini")
        try (try String(contentsOfFile: ini, encoding: .utf8)).replacingOccurrences(of: "[alembic]\n", with: "[alembic]\nprepend_sys_path = .\n")
            .write(toFile: ini, atomically: false, encoding: .utf8)
    }

    @Test func alembicsMapEqualsTheLiteralReading() throws {
        let venvBin = ((try AlembicVenv.python()) as NSString).deletingLastPathComponent
        let root = try TemporaryDirectory()
        defer { root.remove() }
        var compared = 0
        for index in 0..<Self.graphCount {
            let generated = GeneratedProject(seed: UInt64(index) &* 104_729 &+ 5)
            let directory = try TemporaryDirectory(path: root.path + "/p\(index)")
            try generated.write(to: directory)
            let locations = [directory.sub("migrations/versions")]
            let literal = try RevisionFileReader.load(versionLocations: locations, recursive: generated.recursive)
            try rewriteWithConstants(generated, in: directory)
            #expect(throws: RevisionFileReader.ComputedValue.self) {
                try RevisionFileReader.load(versionLocations: locations, recursive: generated.recursive)
            }

            let configuration = try Configuration.resolve(ConfigurationInputs(
                configPath: directory.sub("alembic.ini"), environment: ["PATH": venvBin + ":/usr/bin:/bin"], workingDirectory: directory.path))
            var notices: [String] = []
            let graph = try configuration.revisionGraph(log: { notices.append($0) })
            #expect(notices.count == 1 && notices[0].contains("Alembic's own revision map"), "seed \(generated.seed): \(notices)")

            let fromAlembic = try AlembicRunner(configuration: configuration, databaseURLOverride: nil).revisionMap()
            #expect(fromAlembic.count == generated.revisions.count, "seed \(generated.seed)")
            let planning = { (s: RevisionScript) in [s.revision, s.path] + s.downRevisions + ["|"] + s.branchLabels + ["|"] + s.dependsOn }
            #expect(fromAlembic.map(planning) == literal.map(planning), "seed \(generated.seed)")
            let literalGraph = try RevisionGraph(literal)
            #expect(graph.heads == literalGraph.heads && graph.bases == literalGraph.bases, "seed \(generated.seed)")
            for query in AlembicConformanceTests.queries(for: generated) where query.kind == "upgrade" {
                let ours = Result { try graph.upgradeSteps(current: [], target: query.target) }
                let theirs = Result { try literalGraph.upgradeSteps(current: [], target: query.target) }
                #expect((try? ours.get()) == (try? theirs.get()), "seed \(generated.seed), upgrade \(query.target)")
            }
            compared += 1
        }
        #expect(compared == Self.graphCount)
    }
}
