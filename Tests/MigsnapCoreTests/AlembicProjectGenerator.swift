import Foundation

/// A random Alembic project: linear runs, branches, merges, branch labels, depends_on, several id
/// styles (hex, short ids sharing prefixes, date-time ids), several file styles, subdirectories and
/// files Alembic ignores.
struct GeneratedProject {
    struct Revision {
        var id: String
        var down: [String]
        var labels: [String]
        /// As written in the file: a revision id or a branch label.
        var dependsOn: [String]
        var fileName: String
        var style: Int
    }

    var seed: UInt64
    var revisions: [Revision]
    var recursive: Bool

    init(seed: UInt64) {
        self.seed = seed
        var rng = SplitMix64(seed: seed)
        let count = Int.random(in: 1...16, using: &rng)
        let idStyle = Int.random(in: 0..<4, using: &rng)
        recursive = Bool.random(using: &rng)
        var revisions: [Revision] = []
        var used = Set<String>()
        for index in 0..<count {
            var id: String
            repeat {
                id = Self.makeID(style: idStyle == 3 ? Int.random(in: 0..<3, using: &rng) : idStyle, index: index, rng: &rng)
            } while used.contains(id)
            used.insert(id)

            let referenced = Set(revisions.flatMap(\.down))
            let heads = revisions.map(\.id).filter { !referenced.contains($0) }
            let roll = Double.random(in: 0..<1, using: &rng)
            var down: [String]
            if index == 0 || roll < 0.07 {
                down = []
            } else if roll < 0.22 && heads.count >= 2 {
                down = Array(heads.shuffled(using: &rng).prefix(Int.random(in: 2...3, using: &rng)))
            } else if roll < 0.55 {
                down = [revisions[index - 1].id]
            } else if roll < 0.75 {
                down = [heads.randomElement(using: &rng)!]
            } else {
                down = [revisions.randomElement(using: &rng)!.id]
            }

            var labels: [String] = []
            if Double.random(in: 0..<1, using: &rng) < 0.14 {
                labels = Double.random(in: 0..<1, using: &rng) < 0.2 ? ["lbl\(index)", "extra\(index)"] : ["lbl\(index)"]
            }
            // One dependency at most: with two, Alembic's order depends on Python's string hashing.
            var dependsOn: [String] = []
            if index > 1, Double.random(in: 0..<1, using: &rng) < 0.16 {
                let target = revisions.randomElement(using: &rng)!
                if !down.contains(target.id) {
                    let byLabel = !target.labels.isEmpty && Bool.random(using: &rng)
                    dependsOn = [byLabel ? target.labels[0] : target.id]
                }
            }

            let slug = ["add_users", "drop_column", "merge", "index", "backfill"].randomElement(using: &rng)!
            var fileName = Bool.random(using: &rng) ? "\(id)_\(slug).py" : "\(slug)_\(index)_\(id).py"
            if recursive, Double.random(in: 0..<1, using: &rng) < 0.35 {
                fileName = ["v1", "v2", "2024/q1", "2024/q2"].randomElement(using: &rng)! + "/" + fileName
            }
            revisions.append(
                Revision(
                    id: id, down: down, labels: labels, dependsOn: dependsOn, fileName: fileName,
                    style: Int.random(in: 0..<3, using: &rng)))
        }
        self.revisions = revisions
    }

    private static func makeID(style: Int, index: Int, rng: inout SplitMix64) -> String {
        switch style {
        case 0:
            return String((0..<12).map { _ in "0123456789abcdef".randomElement(using: &rng)! })
        case 1:
            return String((0..<Int.random(in: 2...6, using: &rng)).map { _ in "ab12".randomElement(using: &rng)! })
        default:
            return String(format: "20250128_14%02d%02d", Int.random(in: 0..<6, using: &rng), Int.random(in: 0..<60, using: &rng))
        }
    }

    var ids: [String] { revisions.map(\.id) }
    var labels: [String] { revisions.flatMap(\.labels) }

    /// Ancestors (with depends_on), including the revision itself.
    func ancestors(_ id: String) -> Set<String> {
        let byID = Dictionary(uniqueKeysWithValues: revisions.map { ($0.id, $0) })
        let labelOwner = Dictionary(uniqueKeysWithValues: revisions.flatMap { r in r.labels.map { ($0, r.id) } })
        var seen = Set<String>()
        var todo = [id]
        while let next = todo.popLast() {
            guard seen.insert(next).inserted, let revision = byID[next] else { continue }
            todo += revision.down + revision.dependsOn.map { labelOwner[$0] ?? $0 }
        }
        return seen
    }

    /// A database state: the tips of the revisions implied by a few random ones.
    func randomState(rng: inout SplitMix64) -> [String] {
        let picked = (0..<Int.random(in: 1...3, using: &rng)).map { _ in ids.randomElement(using: &rng)! }
        let applied = picked.reduce(into: Set<String>()) { $0.formUnion(ancestors($1)) }
        return ids.filter { id in applied.contains(id) && !applied.contains { $0 != id && ancestors($0).contains(id) } }
    }

    func write(to directory: TemporaryDirectory) throws {
        try directory.write(
            "alembic.ini",
            """
            [alembic]
            script_location = %(here)s/migrations
            recursive_version_locations = \(recursive)
            sqlalchemy.url = sqlite:///unused.db

            """)
        try directory.write(
            "migrations/env.py",
            """
            from alembic import context

            context.configure(url=context.config.get_main_option("sqlalchemy.url"))
            with context.begin_transaction():
                context.run_migrations()

            """)
        for revision in revisions {
            try directory.write("migrations/versions/\(revision.fileName)", source(of: revision))
        }
        // Files Alembic skips: a package marker, an editor lock file, a README, compiled leftovers,
        // and (when not recursive) revision files in a subdirectory.
        try directory.write("migrations/versions/__init__.py", "")
        try directory.write("migrations/versions/.#lock.py", "this is not python\n")
        try directory.write("migrations/versions/README", "revisions live here\n")
        try directory.write("migrations/versions/__pycache__/stale.cpython-311.py", "revision = 'stale'\ndown_revision = None\n")
        if !recursive {
            try directory.write("migrations/versions/archive/old.py", "revision = 'archived'\ndown_revision = 'missing'\n")
        }
    }

    private func literal(_ values: [String], quote: String, list: Bool) -> String {
        switch values.count {
        case 0: return "None"
        case 1 where !list: return quote + values[0] + quote
        default:
            let items = values.map { quote + $0 + quote }.joined(separator: ", ")
            return list ? "[\(items)]" : "(\(items)\(values.count == 1 ? "," : ""))"
        }
    }

    func source(of revision: Revision) -> String {
        let quote = revision.style == 0 ? "'" : "\""
        let list = revision.style == 2
        let down = literal(revision.down, quote: quote, list: list)
        let labels = literal(revision.labels, quote: quote, list: list)
        let depends = literal(revision.dependsOn, quote: quote, list: list)
        let header = """
            Revision ID: \(revision.id)
            Revises: \(revision.down.joined(separator: ", "))
            Create Date: 2025-01-28 14:00:00.000000
            """
        switch revision.style {
        case 0:
            return """
                \"\"\"change \(revision.id)

                \(header)

                \"\"\"
                from alembic import op
                import sqlalchemy as sa


                # revision identifiers, used by Alembic.
                revision = '\(revision.id)'
                down_revision = \(down)
                branch_labels = \(labels)
                depends_on = \(depends)


                def upgrade():
                    pass


                def downgrade():
                    pass

                """
        case 1:
            return """
                \"\"\"change \(revision.id)

                \(header)

                \"\"\"
                from typing import Sequence, Union

                from alembic import op
                import sqlalchemy as sa


                # revision identifiers, used by Alembic.
                revision: str = "\(revision.id)"
                down_revision: Union[str, Sequence[str], None] = \(down)
                branch_labels: Union[str, Sequence[str], None] = \(labels)
                depends_on: Union[str, Sequence[str], None] = \(depends)


                def upgrade() -> None:
                    \"\"\"Upgrade schema.\"\"\"
                    pass


                def downgrade() -> None:
                    \"\"\"Downgrade schema.\"\"\"
                    pass

                """
        default:
            let optional = revision.labels.isEmpty ? "" : "branch_labels: str | Sequence[str] | None = \(labels)\n"
            let dependencies = revision.dependsOn.isEmpty ? "" : "depends_on = \(depends)  # revision = \"no\"\n"
            return """
                '''change \(revision.id): revision = "decoy" inside the docstring

                \(header)
                '''
                from __future__ import annotations

                from collections.abc import Sequence

                revision: str = (
                    "\(revision.id)"  # revision = "not this one"
                )
                down_revision: str | Sequence[str] | None = \(down)
                \(optional)\(dependencies)

                def upgrade() -> None:
                    revision = "inner"
                    pass


                def downgrade() -> None:
                    pass

                """
        }
    }
}
