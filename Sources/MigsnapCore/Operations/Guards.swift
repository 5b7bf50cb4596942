import Foundation

/// A migration undone by a restore or rollback: the one that lost data. `upgrade` refuses to
/// apply the same file again (same content hash) unless forced; an edited file passes.
public struct Guard: Codable, Equatable, Sendable {
    public var revision: String
    public var file: String
    public var sha256: String
    public var recordedAt: Date
    /// What undid it: `restore <id>` or `rollback <target>`.
    public var by: String

    enum CodingKeys: String, CodingKey {
        case revision, file, sha256, by
        case recordedAt = "recorded_at"
    }
}

/// The guards of one store, kept in `guards.json` beside the snapshots, written atomically.
public struct GuardBook {
    public let store: SnapshotStore

    public init(store: SnapshotStore) {
        self.store = store
    }

    public func load() throws -> [Guard] {
        guard try store.backend.isInitialized(), let data = try store.backend.read(ObjectName.guards) else { return [] }
        do {
            return try JSON.decoder().decode([Guard].self, from: data)
        } catch {
            throw MigsnapError.invalidInput("The guard file \(ObjectName.guards) in \(store.location) is damaged.",
                                            hint: "Remove it to forget the guards (upgrade will no longer refuse undone migrations).")
        }
    }

    /// Remembers the undone revisions with their current file contents. Returns the guards as they
    /// were before, for `restore(_:)` should the change they record not happen after all.
    @discardableResult
    public func record(undone: [String], graph: RevisionGraph?, by: String, now: Date = Date()) throws -> [Guard] {
        let before = try load()
        guard let graph, !undone.isEmpty else { return before }
        var guards = before.filter { !undone.contains($0.revision) }
        for revision in undone {
            guard let script = graph.script(revision) else { continue }
            guards.append(Guard(revision: revision, file: script.path, sha256: script.contentSHA256, recordedAt: now, by: by))
        }
        try save(guards)
        return before
    }

    /// Puts back the guards `record` returned (its restore or rollback did not happen).
    public func restore(_ guards: [Guard]) throws {
        try save(guards)
    }

    private func save(_ guards: [Guard]) throws {
        try store.create()
        try store.backend.write(ObjectName.guards, data: try JSON.encoder().encode(guards))
    }

    /// Forgets the guards of revisions that were applied again (edited, or forced).
    public func clear(_ revisions: [String]) throws {
        let guards = try load()
        let kept = guards.filter { !revisions.contains($0.revision) }
        if kept.count != guards.count {
            try save(kept)
        }
    }

    /// The guards that still hold: the migration file is unchanged since it was undone.
    public func open(graph: RevisionGraph) throws -> [Guard] {
        try load().filter { g in graph.script(g.revision)?.contentSHA256 == g.sha256 }
    }
}
