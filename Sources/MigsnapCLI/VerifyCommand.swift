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

        /// Every entry has the same keys: `error` is null when `ok`.
        struct Result: Encodable {
            var id: String
            var ok: Bool
            @NullEncoded var error: String?
            /// False when the snapshot could not be checked at all (a full disk, a missing key):
            /// a failure of the machine or the setup, not of the snapshot.
            var checked: Bool = true
            /// The hot copy: null when the snapshot has none, else "ok", "damaged" or "unchecked",
            /// with why in `hot_copy_problem` (null when "ok").
            @NullEncoded var hotCopy: String?
            @NullEncoded var hotCopyProblem: String?

            enum CodingKeys: String, CodingKey {
                case id, ok, error, checked
                case hotCopy = "hot_copy"
                case hotCopyProblem = "hot_copy_problem"
            }

            mutating func note(_ state: HotCopyState?) {
                switch state {
                case nil: (hotCopy, hotCopyProblem) = (nil, nil)
                case .sound: (hotCopy, hotCopyProblem) = ("ok", nil)
                case .damaged(let why): (hotCopy, hotCopyProblem) = ("damaged", why)
                case .unchecked(let why): (hotCopy, hotCopyProblem) = ("unchecked", why)
                }
            }

            /// The hot copy's part of the human line.
            var hotCopyText: String {
                switch hotCopy {
                case "ok": return "  hot copy: ok"
                case "damaged": return "  hot copy: damaged (\(hotCopyProblem ?? "")); a restore will not use it"
                case "unchecked": return "  hot copy: not checked (\(hotCopyProblem ?? ""))"
                default: return ""
                }
            }
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database)
                try context.config.requireProjectOrNamedStore()
                let scan = try context.store.scan(thorough: true)
                let manifests = ids.isEmpty ? scan.manifests : try ids.map(context.store.resolve)
                // Recording when a restore was proven writes manifests: under the store lock.
                let lock = restore ? try context.store.lock(purpose: "verify --restore") : nil
                var results: [Result] = []
                var unchecked: [MigsnapError] = []
                if ids.isEmpty {
                    for damaged in scan.damaged {
                        // The id its file name gives: the manifest's own may be what is damaged.
                        let id = ((damaged.file as NSString).lastPathComponent as NSString).deletingPathExtension
                        results.append(Result(id: id, ok: false, error: damaged.problem))
                        if !output.json {
                            Terminal.out("FAILED  \(UserText.line(id))  \(damaged.problem) Move the manifest out of the store: verify fails until it is; the other snapshots are not affected.")
                        }
                    }
                }
                for m in manifests {
                    let engine = context.engineForReading(m)
                    var result: Result
                    var line: String
                    do {
                        try VerifySnapshot.run(m, store: context.store, engine: engine,
                                               versionTable: context.config.versionTable, restore: restore, progress: context.progress())
                        result = Result(id: m.id, ok: true)
                        line = "ok      \(m.id)  \(Revisions.describe(m.revisions))\(restore ? "  (restored into a staged copy)" : "")"
                    } catch let error as MigsnapError {
                        if case .verificationFailed = error {
                            result = Result(id: m.id, ok: false, error: error.message)
                            line = "FAILED  \(m.id)  \(error.message)"
                        } else {
                            result = Result(id: m.id, ok: false, error: error.message, checked: false)
                            unchecked.append(error)
                            line = "ERROR   \(m.id)  could not be checked: \(error.message)"
                        }
                    }
                    do {
                        result.note(try context.store.checkHotCopy(m, engine: engine))
                    } catch let error as MigsnapError {
                        result.note(.unchecked(error.message))
                    }
                    results.append(result)
                    if !output.json { Terminal.out(line + result.hotCopyText) }
                }
                if output.json {
                    try Terminal.printJSON(results)
                } else if results.isEmpty {
                    Terminal.out("No snapshots to verify in \(context.store.location).")
                }
                withExtendedLifetime(lock) {}
                let failed = results.filter { !$0.ok && $0.checked }.count
                let damagedHot = results.filter { $0.hotCopy == "damaged" }.map(\.id)
                if failed == 0, damagedHot.isEmpty, let first = unchecked.first {
                    let message = "\(unchecked.count) of \(UserText.count(results.count, "snapshot")) could not be checked; that says nothing against the snapshots themselves: \(first.message)"
                    switch first {
                    case .invalidInput: throw MigsnapError.invalidInput(message, hint: first.hint)
                    default: throw MigsnapError.failed(message, hint: first.hint ?? "Free some disk space (or fix what the error names) and run verify again.")
                    }
                }
                if failed > 0 {
                    throw MigsnapError.verificationFailed("\(failed) of \(UserText.count(results.count, "snapshot")) failed verification.",
                                                          hint: "Do not restore a failed snapshot; take a new one with `migsnap snapshot`.")
                }
                if !damagedHot.isEmpty {
                    let message = damagedHot.count == 1
                        ? "The hot copy of snapshot \(damagedHot[0]) is damaged; a restore will not use it, and the compressed snapshot is sound."
                        : "The hot copies of snapshots \(damagedHot.joined(separator: ", ")) are damaged; a restore will not use them, and the compressed snapshots are sound."
                    throw MigsnapError.verificationFailed(message,
                                                          hint: "Nothing is lost. The next restore of it drops the damaged copy (on SQLite it rebuilds it), and the next upgrade makes a new one.")
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
