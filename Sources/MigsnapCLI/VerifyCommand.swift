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
            manifest. A snapshot's hot copy, when it has one, is checked too (SQLite: its size and \
            SHA-256; PostgreSQL: the clone is on the server with the recorded oid, still closed to \
            connections); a damaged one is reported and not touched. Exits 3 if any snapshot or \
            hot copy fails.

            --restore proves more: each snapshot is restored into a staged copy (a scratch database \
            on the server for PostgreSQL, which needs CREATEDB), its revision and per-table row \
            counts are checked against what was recorded when it was taken, and the copy is \
            dropped. The manifest then records when (restore_verified_at; `list` and `show` say so).
            """)

        @OptionGroup var location: StoreOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var threads: ThreadsOptions
        @Argument(help: "Snapshot ids or unique prefixes (default: all).")
        var ids: [String] = []
        @Flag(help: "Restore each snapshot into a staged copy and check its revision and row counts (then drop it).")
        var restore = false
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database)
                try context.config.requireProjectOrNamedStore()
                let scan = try context.store.scan(thorough: true)
                let manifests = ids.isEmpty ? scan.manifests : try ids.map(context.store.resolve)
                // Recording when a restore was proven writes manifests: under the store lock.
                let lock = restore ? try context.store.lock(purpose: "verify --restore") : nil
                var results: [VerifyResult] = []
                var unchecked: [MigsnapError] = []
                if ids.isEmpty {
                    for damaged in scan.damaged {
                        // The id its file name gives: the manifest's own may be what is damaged.
                        let id = ((damaged.file as NSString).lastPathComponent as NSString).deletingPathExtension
                        results.append(VerifyResult(id: id, ok: false, error: damaged.problem))
                        if !output.json {
                            Terminal.out("FAILED  \(UserText.line(id))  \(damaged.problem) Move the manifest out of the store: verify fails until it is; the other snapshots are not affected.")
                        }
                    }
                }
                for m in manifests {
                    let (result, error) = VerifySnapshot.check(m, store: context.store, engine: context.engineForReading(m),
                                                               versionTable: context.config.versionTable, restore: restore,
                                                               progress: context.progress())
                    results.append(result)
                    if let error { unchecked.append(error) }
                    if !output.json { Terminal.out(Self.line(result, m, restore: restore)) }
                }
                if output.json {
                    try Terminal.printJSON(results)
                } else if results.isEmpty {
                    Terminal.out("No snapshots to verify in \(context.store.location).")
                }
                withExtendedLifetime(lock) {}
                if let failure = VerifySnapshot.verdict(results, unchecked: unchecked) { throw failure }
            }
        }

        /// One snapshot's human line, with its hot copy's part.
        static func line(_ result: VerifyResult, _ m: Manifest, restore: Bool) -> String {
            let head = result.ok
                ? "ok      \(m.id)  \(Revisions.describe(m.revisions))\(restore ? "  (restored into a staged copy)" : "")"
                : result.checked
                ? "FAILED  \(m.id)  \(result.error ?? "")"
                : "ERROR   \(m.id)  could not be checked: \(result.error ?? "")"
            switch result.hotCopy {
            case "ok": return head + "  hot copy: ok"
            case "damaged": return head + "  hot copy: damaged (\(result.hotCopyProblem ?? "")); a restore will not use it"
            case "unchecked": return head + "  hot copy: not checked (\(result.hotCopyProblem ?? ""))"
            default: return head
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
