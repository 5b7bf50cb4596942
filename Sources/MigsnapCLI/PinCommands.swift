import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct PinCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pin", abstract: "Pin a snapshot: prune never removes it.")

        @OptionGroup var location: StoreOptions
        @Argument(help: "The snapshot id, or a unique prefix of it.")
        var id: String

        func run() throws {
            try runReportingErrors { try setPinned(location: location, id: id, to: true) }
        }
    }

    struct UnpinCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unpin", abstract: "Unpin a snapshot: the retention policy decides again.")

        @OptionGroup var location: StoreOptions
        @Argument(help: "The snapshot id, or a unique prefix of it.")
        var id: String

        func run() throws {
            try runReportingErrors { try setPinned(location: location, id: id, to: false) }
        }
    }
}

private func setPinned(location: StoreOptions, id: String, to pinned: Bool) throws {
    let context = try Context(location)
    let lock = try context.store.lock(purpose: pinned ? "pin" : "unpin")
    var manifest = try context.store.resolve(id)
    let verb = pinned ? "pinned" : "unpinned"
    if manifest.pinned == pinned {
        Terminal.out("Snapshot \(manifest.id) is already \(verb).")
        return
    }
    manifest.pinned = pinned
    try context.store.write(manifest)
    withExtendedLifetime(lock) {}
    Terminal.out("Snapshot \(manifest.id) \(verb).")
}
