import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct UnguardCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unguard",
            abstract: "Clear guards, so that upgrade applies those migrations again as they are.",
            discussion: """
            A guard is set on a migration that lost data and was undone by a restore or rollback; \
            `upgrade` refuses to apply it again while its file is unchanged. Clear it once you know \
            the migration is safe to run again (for a migration inside an installed package, where \
            editing the file is no answer). `migsnap status` lists the open guards. A guard is also \
            cleared when the database is brought to its revision or later again.
            """)

        @OptionGroup var location: StoreOptions
        @Argument(help: ArgumentHelp("The guarded revisions (full ids or unique prefixes).", valueName: "rev"))
        var revisions: [String] = []
        @Flag(help: "Clear every guard.")
        var all = false
        @Flag(help: "Print what would be cleared and change nothing.")
        var dryRun = false

        func validate() throws {
            if all == !revisions.isEmpty {
                throw ValidationError("Name the guarded revisions, or pass --all.")
            }
        }

        func run() throws {
            try runReportingErrors {
                let context = try Context(location)
                let book = GuardBook(store: context.store)
                let cleared = try book.matching(all ? nil : revisions)
                guard !cleared.isEmpty else {
                    Terminal.out("No guards to clear in \(context.store.location).")
                    return
                }
                if !dryRun {
                    let lock = try context.store.lock(purpose: "unguard")
                    try book.clear(cleared.map(\.revision))
                    withExtendedLifetime(lock) {}
                }
                for g in cleared {
                    Terminal.out("\(dryRun ? "Would clear" : "Cleared") the guard on \(g.revision) (\(g.file)): \(g.summary).")
                }
                if dryRun { Terminal.out("Dry run: nothing was changed.") }
            }
        }
    }
}
