import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct ShowCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one snapshot's manifest and where its file is.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The snapshot id, or a unique prefix of it.")
        var id: String
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(global)
                let m = try context.store.resolve(id)
                if output.json {
                    try Terminal.printJSON(m)
                    return
                }
                let rows: [(String, String)] = [
                    ("id", m.id),
                    ("created", RFC3339.string(from: m.createdAt)),
                    ("engine", m.engine.rawValue),
                    ("database", m.database),
                    ("revisions", Revisions.describe(m.revisions)),
                    ("reason", m.reason.rawValue),
                    ("target revision", m.targetRevision ?? "-"),
                    ("raw size", "\(Format.bytes(m.rawBytes)) (\(m.rawBytes) bytes)"),
                    ("stored size", "\(Format.bytes(m.storedBytes)) (\(m.storedBytes) bytes)"),
                    ("sha256", m.sha256),
                    ("pinned", m.pinned ? "yes" : "no"),
                    ("tags", m.tags.isEmpty ? "-" : m.tags.joined(separator: ", ")),
                    ("note", m.note ?? "-"),
                    ("file", context.store.payloadPath(m)),
                    ("format version", String(m.formatVersion)),
                ]
                let width = rows.map(\.0.count).max() ?? 0
                for (k, v) in rows {
                    Terminal.out("\(k.padding(toLength: width, withPad: " ", startingAt: 0))  \(v)")
                }
                Terminal.out(m.engine == .sqlite
                    ? "By hand: gunzip -c \(context.store.payloadPath(m)) > restored.db"
                    : "By hand: pg_restore --list \(context.store.payloadPath(m)) (see the README)")
            }
        }
    }
}
