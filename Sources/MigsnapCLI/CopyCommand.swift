import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct CopyCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy",
            abstract: "Copy snapshots to another store (e.g. local snapshots to a bucket), verified.",
            discussion: """
            Each payload is checked against its manifest before it leaves and read back and checked \
            after it arrived; the manifest is written last, so an interrupted copy lists nothing and \
            can simply be run again (snapshots already there are skipped). With age recipients \
            configured (MIGSNAP_AGE_RECIPIENTS), plain payloads are encrypted on the way; encrypted \
            ones travel as they are.

            Example: migsnap copy --all --to s3://acme-backups/shop
            """)

        @OptionGroup var location: StoreOptions
        @Argument(help: "Snapshot ids (or unique prefixes) to copy.")
        var ids: [String] = []
        @Flag(help: "Copy every snapshot of the store.")
        var all = false
        @Option(help: ArgumentHelp("The destination store: a directory or s3://BUCKET/PREFIX.", valueName: "store"))
        var to: String
        @Flag(help: "Print what would be copied and change nothing.")
        var dryRun = false
        @OptionGroup var output: JSONOption

        func validate() throws {
            if all == !ids.isEmpty {
                throw ValidationError("Name the snapshots to copy, or pass --all.")
            }
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(location)
                let destination = try context.store(at: to)
                guard destination.location != context.store.location else {
                    throw MigsnapError.invalidInput("The destination \(destination.location) is the store itself.")
                }
                let manifests = all ? context.reportingDamage(try context.store.scan()) : try ids.map(context.store.resolve)
                let lock = dryRun ? nil : try destination.lock(purpose: "copy")
                let outcomes = try CopySnapshots.run(manifests, from: context.store, to: destination, dryRun: dryRun,
                                                     progress: context.progress(), log: Terminal.err)
                withExtendedLifetime(lock) {}
                if output.json {
                    try Terminal.printJSON(outcomes)
                    return
                }
                for outcome in outcomes {
                    Terminal.out("\(outcome.id)  \(outcome.action.rawValue)\(outcome.encrypted ? "  (encrypted)" : "")")
                }
                let copied = outcomes.filter { $0.action == .copied }.count
                Terminal.out(dryRun ? "Dry run: \(UserText.count(outcomes.filter { $0.action == .wouldCopy }.count, "snapshot")) would be copied to \(destination.location); nothing was changed."
                                    : "Copied \(UserText.count(copied, "snapshot")) to \(destination.location); \(outcomes.count - copied) already there.")
            }
        }
    }
}
