import Foundation

/// What `migsnap status` reports. Reading it changes nothing, and it reports what it can: a
/// project without migration files, or a database at a revision the files do not know, still
/// gets the rest, with the problem among `warnings`.
public struct ProjectStatus: Encodable {
    public var engine: EngineKind
    public var database: String
    public var exists: Bool
    public var current: [String]
    @NullEncoded public var newestSnapshot: Manifest?
    public var snapshots: Int
    public var storeBytes: Int64
    public var store: String
    @NullEncoded public var config: String?
    @NullEncoded public var heads: [String]?
    @NullEncoded public var pending: [String]?
    public var guards: [Guard]
    /// Problems that did not stop the report; not part of the JSON document.
    public var warnings: [String] = []

    enum CodingKeys: String, CodingKey {
        case engine, database, exists, current, snapshots, store, config, heads, pending, guards
        case newestSnapshot = "newest_snapshot"
        case storeBytes = "store_bytes"
    }

    public static func read(configuration: Configuration, store: SnapshotStore, engine: DatabaseEngine) throws -> ProjectStatus {
        let exists = try engine.databaseExists()
        let scan = try store.scan()
        let current = exists ? try engine.currentRevisions(versionTable: configuration.versionTable) : []
        let graph = configuration.scriptLocation == nil ? nil : try configuration.revisionGraph()
        var warnings = scan.damaged.map(\.problem)
        var pending: [String]?
        do {
            pending = try graph.map { g in try g.upgradeSteps(current: current, targets: g.heads).map(\.to) }
        } catch let error as MigsnapError {
            warnings.append("Cannot tell the pending migrations: \(error.message)")
        }
        return ProjectStatus(
            engine: engine.kind, database: engine.redactedLocation, exists: exists, current: current,
            newestSnapshot: scan.manifests.last, snapshots: scan.manifests.count,
            storeBytes: scan.manifests.reduce(0) { $0 + $1.storedBytes }, store: store.location,
            config: configuration.configFile, heads: graph?.heads, pending: pending,
            guards: try graph.map { try GuardBook(store: store).open(graph: $0, current: current) } ?? [], warnings: warnings)
    }
}
