import ArgumentParser
import Foundation
import MigsnapCore

extension Migsnap {
    struct VerifyCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Verify snapshots: checksum, full decompression and a content check.",
            discussion: """
            SQLite: the file is decompressed and PRAGMA integrity_check must say ok; PostgreSQL: \
            pg_restore must read the archive. Either way the revisions inside must match the \
            manifest. Exits 3 if any snapshot fails.
            """)

        @OptionGroup var global: GlobalOptions
        @Argument(help: "Snapshot ids or unique prefixes (default: all).")
        var ids: [String] = []
        @OptionGroup var output: JSONOption

        struct Result: Encodable {
            var id: String
            var ok: Bool
            var error: String?
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(global)
                try context.config.requireProjectOrNamedStore()
                let scan = try context.store.scan(thorough: true)
                let manifests = ids.isEmpty ? scan.manifests : try ids.map(context.store.resolve)
                var results: [Result] = []
                if ids.isEmpty {
                    for damaged in scan.damaged {
                        results.append(Result(id: (damaged.file as NSString).lastPathComponent, ok: false, error: damaged.problem))
                        if !output.json { Terminal.out("FAILED  \(damaged.problem)") }
                    }
                }
                for m in manifests {
                    do {
                        try VerifySnapshot.run(m, store: context.store, engine: context.engineForReading(m),
                                               versionTable: context.config.versionTable, progress: context.progress())
                        results.append(Result(id: m.id, ok: true))
                        if !output.json { Terminal.out("ok      \(m.id)  \(Revisions.describe(m.revisions))") }
                    } catch let error as MigsnapError {
                        results.append(Result(id: m.id, ok: false, error: error.message))
                        if !output.json { Terminal.out("FAILED  \(m.id)  \(error.message)") }
                    }
                }
                if output.json {
                    try Terminal.printJSON(results)
                } else if results.isEmpty {
                    Terminal.out("No snapshots to verify in \(context.store.location).")
                }
                let failed = results.filter { !$0.ok }.count
                if failed > 0 {
                    throw MigsnapError.verificationFailed("\(failed) of \(results.count) snapshot(s) failed verification.",
                                                          hint: "Do not restore a failed snapshot; take a new one with `migsnap snapshot`.")
                }
            }
        }
    }
}

extension Context {
    /// An engine able to read a snapshot's payload: the live one when it is of the same kind, else
    /// one for the snapshot's own kind (reading a payload needs no live database).
    func engineForReading(_ manifest: Manifest) -> DatabaseEngine {
        if let url = try? config.databaseURL(), url.engine == manifest.engine {
            return Self.engine(for: url)
        }
        switch manifest.engine {
        case .sqlite: return Self.engine(for: .sqlite(path: manifest.database))
        case .postgresql: return Self.engine(for: .postgresql(PostgresTarget()))
        }
    }
}
