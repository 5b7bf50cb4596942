import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct ListCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the snapshots, oldest first.",
            discussion: """
            PIN says yes for a pinned snapshot (never pruned); HOT says yes where the snapshot also \
            has a hot copy (an uncompressed image, or a clone on the PostgreSQL server) that a \
            restore of it uses once checked; `migsnap verify` checks it.
            """)

        @OptionGroup var location: StoreOptions
        @Option(help: ArgumentHelp("Only snapshots taken at this revision (a full id or a prefix).", valueName: "rev"))
        var revision: String?
        @Option(help: ArgumentHelp("Only snapshots with this tag.", valueName: "tag"))
        var tag: String?
        @OptionGroup var output: JSONOption

        func run() throws {
            try runReportingErrors {
                let context = try Context(location)
                try context.config.requireProjectOrNamedStore()
                var manifests = try context.reportingDamage(context.store.scan())
                let stored = manifests.count
                if let revision {
                    manifests = manifests.filter { $0.wasTaken(at: revision) }
                }
                if let tag {
                    manifests = manifests.filter { $0.tags.contains(tag) }
                }
                if output.json {
                    Terminal.printJSON(bytes: ListingJSON.prettyArray(manifests))
                    return
                }
                if manifests.isEmpty {
                    let filter = [revision.map { "--revision \(UserText.line($0))" }, tag.map { "--tag \(UserText.line($0))" }].compactMap { $0 }
                    Terminal.out(filter.isEmpty || stored == 0 ? "No snapshots in \(context.store.location)."
                                 : "No snapshot matches the filter (\(filter.joined(separator: " "))) among the \(UserText.count(stored, "snapshot")) in \(context.store.location).")
                    return
                }
                Terminal.out(Render.manifestTable(manifests))
            }
        }
    }
}

enum Render {
    static func manifestTable(_ manifests: [Manifest]) -> String {
        Format.table(
            ["ID", "CREATED (UTC)", "REVISION", "REASON", "RAW", "STORED", "PIN", "HOT", "RESTORE-VERIFIED", "TAGS"],
            manifests.map { m in
                [m.id, String(Format.time(m.createdAt)), Revisions.describe(m.revisions), m.reason.rawValue,
                 Format.bytes(m.rawBytes), Format.bytes(m.storedBytes), m.pinned ? "yes" : "", m.hot != nil ? "yes" : "",
                 m.restoreVerifiedAt.map { String(Format.time($0).prefix(10)) } ?? "", m.tags.joined(separator: ",")]
            })
    }
}
