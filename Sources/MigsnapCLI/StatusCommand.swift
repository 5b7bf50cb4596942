import ArgumentParser
import Foundation
import MigsnapCore

extension Migsnap {
    struct StatusCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show the database, its revision, the snapshots and the store.")

        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: JSONOption

        struct Status: Encodable {
            var engine: String
            var database: String
            var exists: Bool
            var current: [String]
            @NullEncoded var newestSnapshot: Manifest?
            var snapshots: Int
            var storeBytes: Int64
            var store: String
            @NullEncoded var config: String?
            @NullEncoded var heads: [String]?
            @NullEncoded var pending: [String]?
            var guards: [Guard]

            enum CodingKeys: String, CodingKey {
                case engine, database, exists, current, snapshots, store, config, heads, pending, guards
                case newestSnapshot = "newest_snapshot"
                case storeBytes = "store_bytes"
            }
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(global)
                let url = try context.config.databaseURL()
                let engine = Context.engine(for: url)
                let exists = try engine.databaseExists()
                let manifests = try context.reportingDamage(context.store.scan())
                let current = exists ? try engine.currentRevisions(versionTable: context.config.versionTable) : []
                // Without migration files (only --url and --store), status still reports the rest.
                let graph = context.config.scriptLocation == nil ? nil : try context.config.revisionGraph()
                // Status must still report when the database is at a revision the files do not know.
                var pending: [String]?
                do {
                    pending = try graph.map { g in try g.upgradeSteps(current: current, targets: g.heads).map(\.to) }
                } catch let error as MigsnapError {
                    Terminal.warn("Cannot tell the pending migrations: \(error.message)")
                }
                let status = Status(
                    engine: url.engine.rawValue, database: url.redacted, exists: exists,
                    current: current,
                    newestSnapshot: manifests.last, snapshots: manifests.count,
                    storeBytes: manifests.reduce(0) { $0 + $1.storedBytes }, store: context.store.directory,
                    config: context.config.configFile, heads: graph?.heads, pending: pending,
                    guards: try graph.map { try GuardBook(store: context.store).open(graph: $0) } ?? [])
                if output.json {
                    try Terminal.printJSON(status)
                    return
                }
                Terminal.out("engine:     \(status.engine)")
                Terminal.out("database:   \(status.database)\(exists ? "" : " (does not exist yet)")")
                Terminal.out("current:    \(Revisions.describe(status.current))")
                if let heads = status.heads { Terminal.out("heads:      \(heads.isEmpty ? "none (no migration files)" : heads.joined(separator: ", "))") }
                if let pending = status.pending {
                    Terminal.out("pending:    \(pending.isEmpty ? "none" : pending.joined(separator: ", "))")
                }
                Terminal.out("snapshots:  \(status.snapshots) in \(status.store) (\(Format.bytes(status.storeBytes)))")
                if let newest = status.newestSnapshot {
                    Terminal.out("newest:     \(newest.id) at \(Revisions.describe(newest.revisions)) (\(newest.reason.rawValue))")
                }
                for g in status.guards {
                    Terminal.out("guard:      \(g.revision) (\(g.file)) was undone by `\(g.by)`; upgrade refuses it unchanged")
                }
            }
        }
    }
}
