import ArgumentParser
import MigsnapCore

extension Migsnap {
    struct PinCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pin", abstract: "Pin a snapshot: prune never removes it.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The snapshot id, or a unique prefix of it.")
        var id: String

        func run() throws {
            try runReportingErrors { try setPinned(global: global, id: id, to: true) }
        }
    }

    struct UnpinCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unpin", abstract: "Unpin a snapshot: the retention policy decides again.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The snapshot id, or a unique prefix of it.")
        var id: String

        func run() throws {
            try runReportingErrors { try setPinned(global: global, id: id, to: false) }
        }
    }
}

private func setPinned(global: GlobalOptions, id: String, to pinned: Bool) throws {
    let context = try Context(global)
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
