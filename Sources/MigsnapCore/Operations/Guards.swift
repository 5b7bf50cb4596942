import Foundation

/// A migration that lost data, undone by a restore or rollback. `upgrade` refuses to apply the
/// same file again (same content hash) unless forced; an edited file passes.
public struct Guard: Codable, Equatable, Sendable {
    public var revision: String
    public var file: String
    public var sha256: String
    public var recordedAt: Date
    /// What undid it: `restore <id>` or `rollback <target>`.
    public var by: String
    /// What the migration removed ("dropped column customers.phone; 3 rows fewer in customers"),
    /// or why migsnap cannot tell. Absent in guards recorded by older versions.
    public var removed: String?

    public init(revision: String, file: String, sha256: String, recordedAt: Date, by: String, removed: String?) {
        self.revision = revision
        self.file = file
        self.sha256 = sha256
        self.recordedAt = recordedAt
        self.by = by
        self.removed = removed
    }

    enum CodingKeys: String, CodingKey {
        case revision, file, sha256, by, removed
        case recordedAt = "recorded_at"
    }

    /// For messages: what the migration removed, and what undid it.
    public var summary: String {
        "\(removed ?? "it was undone before migsnap recorded what migrations remove"); undone by `\(by)` on \(RFC3339.human(recordedAt))"
    }
}

/// What an undone migration removed, as far as the snapshots around its step show.
public enum Loss: Equatable, Sendable {
    /// It only added things (or changed nothing that counts): no guard.
    case nothing
    /// Tables, columns or rows it removed, in words.
    case removed([String])
    /// migsnap cannot tell, and why: guarded all the same.
    case unknown(String)

    /// The guard's `removed` text, or nil when nothing was removed.
    public var description: String? {
        switch self {
        case .nothing: return nil
        case .removed(let what): return what.joined(separator: "; ")
        case .unknown(let why): return "migsnap cannot tell what it removed (\(why))"
        }
    }
}

/// Tells what a migration removed by comparing the shape recorded before its step (the
/// pre-upgrade snapshot whose `target_revision` is the step) with the state after it (the live
/// database when the step is among the current revisions, else the first snapshot taken at it).
public struct LossJudge {
    /// The snapshots of this database, oldest first.
    public var manifests: [Manifest]
    public var current: [String]
    /// The live database now (what a pre-restore or pre-downgrade snapshot captured).
    public var live: DatabaseShape?
    public var versionTable: VersionTable

    public init(manifests: [Manifest], current: [String], live: DatabaseShape?, versionTable: VersionTable) {
        self.manifests = manifests
        self.current = current
        self.live = live
        self.versionTable = versionTable
    }

    /// The judge for undoing migrations of `engine`'s database, now at `current`. `safety` is the
    /// snapshot just taken of it, if any; without one the live database is read.
    public static func of(_ engine: DatabaseEngine, store: SnapshotStore, current: [String], safety: Manifest?,
                          versionTable: VersionTable) throws -> LossJudge {
        LossJudge(manifests: try store.manifests().filter { $0.engine == engine.kind && $0.database == engine.redactedLocation },
                  current: current, live: safety?.shape ?? (try? engine.shape()), versionTable: versionTable)
    }

    public func loss(of revision: String) -> Loss {
        guard let index = manifests.lastIndex(where: { $0.reason == .preUpgrade && $0.targetRevision == revision }) else {
            return .unknown("no snapshot was taken right before it")
        }
        let before = manifests[index]
        guard let shapeBefore = before.shape else {
            return .unknown("snapshot \(before.id), taken before it, records no tables")
        }
        let shapeAfter: DatabaseShape
        if current.contains(revision) {
            guard let live else { return .unknown("the database's tables could not be read") }
            shapeAfter = live
        } else {
            guard let after = manifests[(index + 1)...].first(where: { $0.revisions.contains(revision) }) else {
                return .unknown("no snapshot was taken right after it")
            }
            guard let shape = after.shape else {
                return .unknown("snapshot \(after.id), taken after it, records no tables")
            }
            shapeAfter = shape
        }
        // Alembic's own bookkeeping changes with every step (a merge leaves fewer rows in it).
        let removed = shapeBefore.removals(comparedWith: shapeAfter, skip: versionTable.names)
        return removed.isEmpty ? .nothing : .removed(removed)
    }
}

/// The guards of one store, kept in `guards.json` beside the snapshots, written atomically.
public struct GuardBook {
    public let store: SnapshotStore

    public init(store: SnapshotStore) {
        self.store = store
    }

    public func load() throws -> [Guard] {
        guard try store.backend.isInitialized(), let data = try store.readSmallObject(ObjectName.guards) else { return [] }
        do {
            return try JSON.decoder().decode([Guard].self, from: data)
        } catch {
            throw MigsnapError.invalidInput("The guard file \(ObjectName.guards) in \(store.location) is damaged.",
                                            hint: "Remove it to forget the guards (upgrade will no longer refuse undone migrations).")
        }
    }

    /// Before a restore or rollback to `target`: guards the undone revisions that lost data (as
    /// `judge` tells) with their current file contents, and drops the guards that the database
    /// at `target` outlives (`target` and its ancestors are applied again). Returns the guards as
    /// they were before, for `restore(_:)` should the change not happen after all.
    @discardableResult
    public func record(undone: [String], target: [String], graph: RevisionGraph?, judge: LossJudge, by: String,
                       now: Date = Date()) throws -> [Guard] {
        let before = try load()
        let settled = Set(Self.reached(target, graph: graph))
        var guards = before.filter { !undone.contains($0.revision) && !settled.contains($0.revision) }
        if let graph {
            for revision in undone {
                guard let script = graph.script(revision), let removed = judge.loss(of: revision).description else { continue }
                guards.append(Guard(revision: revision, file: script.path, sha256: script.contentSHA256, recordedAt: now, by: by,
                                    removed: removed))
            }
        }
        if guards != before { try save(guards) }
        return before
    }

    /// Puts back the guards `record` returned (its restore or rollback did not happen).
    public func restore(_ guards: [Guard]) throws {
        try save(guards)
    }

    private func save(_ guards: [Guard]) throws {
        try store.create()
        try store.writeSmallObject(ObjectName.guards, data: try JSON.encoder().encode(guards))
    }

    /// Forgets the guards of `revisions` (`unguard`); returns those it forgot.
    @discardableResult
    public func clear(_ revisions: [String]) throws -> [Guard] {
        let guards = try load()
        let (cleared, kept) = (guards.filter { revisions.contains($0.revision) }, guards.filter { !revisions.contains($0.revision) })
        if !cleared.isEmpty { try save(kept) }
        return cleared
    }

    /// `unguard REV… | --all` (`revisions` nil): the guards to forget, each named by its revision
    /// or a unique prefix of it. A name that matches no guard is an error, and then none is forgotten.
    public func matching(_ revisions: [String]?) throws -> [Guard] {
        let guards = try load()
        guard let revisions else { return guards }
        var chosen: [String] = []
        for name in revisions {
            let revisions = Set(guards.map(\.revision))
            let matches = revisions.contains(name) ? [name] : revisions.filter { $0.hasPrefix(name) }
            guard matches.count == 1, let revision = matches.first else {
                throw MigsnapError.invalidInput(
                    matches.isEmpty ? "No guard on \(name)." : "'\(name)' matches the guards on \(matches.sorted().joined(separator: ", ")).",
                    hint: matches.isEmpty ? "`migsnap status` lists the open guards." : "Name one of them in full.")
            }
            chosen.append(revision)
        }
        return guards.filter { chosen.contains($0.revision) }
    }

    /// The database reached `revisions` (an upgrade step, a restore): the guards of those
    /// revisions and their ancestors have lost their meaning. Returns those it forgot.
    @discardableResult
    public func settle(at revisions: [String], graph: RevisionGraph?) throws -> [Guard] {
        try clear(Self.reached(revisions, graph: graph))
    }

    /// The guards that still hold: the migration file is unchanged since it was undone, and the
    /// database (at `current`) is not at or after it.
    public func open(graph: RevisionGraph, current: [String] = []) throws -> [Guard] {
        let reached = Set(Self.reached(current, graph: graph))
        return try load().filter { g in !reached.contains(g.revision) && graph.script(g.revision)?.contentSHA256 == g.sha256 }
    }

    /// `revisions` and everything they imply.
    private static func reached(_ revisions: [String], graph: RevisionGraph?) -> [String] {
        guard let graph else { return revisions }
        return Array(graph.ancestors(of: revisions.filter { graph.script($0) != nil }).union(revisions))
    }
}
