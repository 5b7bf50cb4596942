import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct PruneCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune",
            abstract: "Apply the retention policy: print every snapshot with keep or remove and the rule that decided.",
            discussion: """
            A snapshot is kept if any rule keeps it (keep_last, keep_hourly/daily/weekly/monthly/\
            yearly, keep_within, keep_per_revision, keep_tags); pinned snapshots, the newest one \
            and future-dated ones are always kept; then max_total_size removes the oldest until \
            the store fits. The policy is --retention FILE, else retention.json beside the config \
            file, else the built-in default (see the README).
            """)

        @OptionGroup var location: StoreOptions
        @OptionGroup var retention: RetentionOptions
        @OptionGroup var confirm: ConfirmOptions
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(location, retention)
                try context.config.requireProjectOrNamedStore()
                let policy = try context.config.retentionPolicy()
                let lock = confirm.dryRun ? nil : try context.store.lock(purpose: "prune")
                // A prune killed between a manifest and its payload left the payload behind.
                if lock != nil { try context.store.cleanDebris() }
                let manifests = try context.store.manifests()
                let decisions = Prune.plan(manifests, policy: policy)
                let removing = decisions.filter { $0.action == .remove }
                if output.json {
                    Terminal.printJSON(bytes: ListingJSON.prettyArray(decisions))
                } else {
                    Terminal.out(Render.decisions(decisions))
                    if policy.isEmpty {
                        Terminal.out("The retention policy is empty (every rule is zero): nothing is removed.")
                    }
                }
                if let over = Prune.sizeOverCap(decisions, manifests: manifests, policy: policy), let cap = policy.maxTotalSize {
                    Terminal.warn("The kept snapshots take \(Format.bytes(over)), over max_total_size \(cap): the rest are pinned, the newest or future-dated, which are never removed.")
                }
                guard !confirm.dryRun, !removing.isEmpty else {
                    if !output.json {
                        Terminal.out(confirm.dryRun ? "Dry run: \(UserText.count(removing.count, "snapshot")) would be removed; nothing was changed." : "Nothing to remove.")
                    }
                    return
                }
                try Terminal.confirm("Remove \(UserText.count(removing.count, "snapshot"))?", yes: confirm.yes)
                let removed = try Prune.apply(decisions, to: manifests, store: context.store, engine: try? context.liveEngine())
                withExtendedLifetime(lock) {}
                let freed = removed.reduce(Int64(0)) { $0 + $1.storedBytes }
                Terminal.err("Removed \(UserText.count(removed.count, "snapshot")), \(Format.bytes(freed)) freed.")
            }
        }
    }
}

extension Render {
    static func decisions(_ decisions: [RetentionDecision]) -> String {
        guard !decisions.isEmpty else { return "No snapshots." }
        return Format.table(["ID", "ACTION", "REASONS"], decisions.map { [$0.id, $0.action.rawValue, $0.reasons.joined(separator: "; ")] })
    }
}
