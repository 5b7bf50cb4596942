import ArgumentParser
import Foundation
import MigsnapCore

extension Migsnap {
    struct StatusCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show the database, its revision, the snapshots and the store.")

        @OptionGroup var location: StoreOptions
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var alembic: AlembicOptions
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, database, alembic)
                let status = try ProjectStatus.read(configuration: context.config, store: context.store,
                                                    engine: try context.liveEngine())
                status.warnings.forEach(Terminal.warn)
                if output.json {
                    try Terminal.printJSON(status)
                    return
                }
                Terminal.out("engine:     \(status.engine.rawValue)")
                Terminal.out("database:   \(status.database)\(status.exists ? "" : " (does not exist yet)")")
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
                    Terminal.out("guard:      \(g.revision) (\(g.file)): \(g.summary); upgrade refuses it unchanged")
                }
            }
        }
    }
}
