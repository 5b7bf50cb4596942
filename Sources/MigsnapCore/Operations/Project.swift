import Foundation

extension Configuration {
    /// The project's revision graph, read from its migration files without running Python. Where
    /// a file computes a value (an imported constant), Alembic's own revision map instead, from
    /// `alembic` when it is running (else a driver started for it), saying so on `log`.
    public func revisionGraph(using alembic: AlembicRunner? = nil,
                              log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) throws -> RevisionGraph {
        let locations = try requireVersionLocations()
        do {
            return try RevisionGraph(RevisionFileReader.load(versionLocations: locations, recursive: recursiveVersionLocations))
        } catch let computed as RevisionFileReader.ComputedValue {
            let scripts: [RevisionScript]
            do {
                scripts = try (alembic ?? AlembicRunner(configuration: self, databaseURLOverride: nil)).revisionMap()
            } catch let error as MigsnapError {
                throw MigsnapError.invalidInput("\(computed.error.message), and Alembic's own revision map is not available either: \(error.message)",
                                                hint: computed.error.hint)
            }
            log("Notice: \(computed.path):\(computed.line) computes \(computed.name); planning from Alembic's own revision map (the project's Python).")
            return try RevisionGraph(scripts)
        }
    }
}

extension RevisionGraph {
    /// `undone(from:to:)` when the project's migration files could be read; without them, the
    /// revisions that going to `target` takes away.
    public static func undone(_ graph: RevisionGraph?, from current: [String], to target: [String]) -> [String] {
        graph?.undone(from: current, to: target) ?? current.filter { !target.contains($0) }
    }

    /// The migrations undone going from `current` to `target` (any revision sets), newest first.
    public func undone(from current: [String], to target: [String]) -> [String] {
        let known = current.filter { script($0) != nil }
        let gone = ancestors(of: known).subtracting(ancestors(of: target.filter { script($0) != nil }))
        return (try? topologicalSort(gone, heads: known)) ?? sortedByLoadOrder(gone).reversed()
    }
}

/// One run against an Alembic project's database: what `upgrade` and `rollback` both need.
/// The caller holds the store lock for the whole run.
public struct MigrationRun {
    public var engine: DatabaseEngine
    public var store: SnapshotStore
    public var graph: RevisionGraph
    public var versionTable: VersionTable
    public var alembic: AlembicRunner
    /// Human progress lines ("step 1/3: …"), for stderr.
    public var log: (String) -> Void
    /// How many hot copies the policy keeps (`keep_hot`); pre-upgrade snapshots are hot when it is above 0.
    public var keepHot = 0

    public init(engine: DatabaseEngine, store: SnapshotStore, graph: RevisionGraph, versionTable: VersionTable,
                alembic: AlembicRunner, log: @escaping (String) -> Void) {
        self.engine = engine
        self.store = store
        self.graph = graph
        self.versionTable = versionTable
        self.alembic = alembic
        self.log = log
    }
}
