import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct ShowCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one snapshot's manifest and where its file is.")

        @OptionGroup var location: StoreOptions
        @Argument(help: "The snapshot id, or a unique prefix of it.")
        var id: String
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(location)
                let m = try context.store.resolve(id)
                if output.json {
                    try Terminal.printJSON(m)
                    return
                }
                var rows: [(String, String)] = [
                    ("id", m.id),
                    ("created", Format.time(m.createdAt)),
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
                    ("file", context.store.payloadLocation(m)),
                    ("encryption", m.encryption.map { "\($0.format) to \($0.recipients.joined(separator: ", "))" } ?? "none"),
                    ("restore verified", m.restoreVerifiedAt.map(Format.time) ?? "never (`migsnap verify --restore`)"),
                    ("format version", String(m.formatVersion)),
                ]
                if let hot = m.hot {
                    // Only where there is one, so that the lines of other snapshots stay as they were.
                    rows.insert(("hot", "yes: an uncompressed copy of \(Format.bytes(hot.bytes)) for an instant rollback"),
                                at: rows.firstIndex { $0.0 == "file" }! + 1)
                }
                let width = rows.map(\.0.count).max() ?? 0
                for (k, v) in rows {
                    Terminal.out("\(k.padding(toLength: width, withPad: " ", startingAt: 0))  \(v)")
                }
                Terminal.out(Render.byHand(m, file: context.store.payloadLocation(m)))
            }
        }
    }
}

extension Render {
    /// How to restore the snapshot without migsnap: the README's recipe for this payload.
    static func byHand(_ m: Manifest, file: String) -> String {
        var steps: [String] = []
        var local = file
        if file.hasPrefix("s3://") {
            steps.append("aws s3 cp \(file) \(m.file)")
            local = m.file
        }
        let plain = "\(m.id).\(m.engine.payloadExtension)"
        if m.encryption != nil {
            steps.append("age -d -i KEY.txt -o \(plain) \(local)")
            local = plain
        }
        switch m.engine {
        case .sqlite: steps.append("gunzip -c \(local) > restored.db")
        case .postgresql: steps.append("pg_restore --list \(local) (see the README)")
        }
        return "By hand: " + steps.joined(separator: "; ")
    }
}
