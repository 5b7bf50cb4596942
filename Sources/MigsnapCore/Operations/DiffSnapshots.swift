import Foundation

/// `migsnap diff A [B]`: snapshot A against snapshot B or the live database. Reads only: payloads
/// are fetched and checked into a scratch space that goes away with the run, no lock is taken,
/// and the live database is opened read-only.
public enum DiffSnapshots {
    /// One side of a comparison.
    public struct Side: Sendable, Equatable, Encodable {
        /// `snapshot` or `live`.
        public var kind: String
        /// The snapshot's id; null for the live database.
        @NullEncoded public var id: String?
        public var database: String
        public var revisions: [String]
    }

    public struct Report: Sendable, Equatable, Encodable {
        public var a: Side
        public var b: Side
        public var diff: DatabaseDiff

        enum CodingKeys: String, CodingKey {
            case a, b, tables
            case tablesOnlyInA = "tables_only_in_a", tablesOnlyInB = "tables_only_in_b"
        }

        /// `{"a", "b", "tables", "tables_only_in_a", "tables_only_in_b"}`: the README's shape.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(a, forKey: .a)
            try c.encode(b, forKey: .b)
            try c.encode(diff.tables, forKey: .tables)
            try c.encode(diff.tablesOnlyInA, forKey: .tablesOnlyInA)
            try c.encode(diff.tablesOnlyInB, forKey: .tablesOnlyInB)
        }
    }

    /// `engine` reads the payloads and, without `b`, is the live database's engine.
    public static func run(_ a: Manifest, with b: Manifest?, store: SnapshotStore, engine: DatabaseEngine,
                           versionTable: VersionTable, scope: DiffScope, progress: ProgressReporter) throws -> Report {
        defer { progress.finish() }
        for m in [a] + (b.map { [$0] } ?? []) where m.engine != engine.kind {
            let other = b == nil ? "the live database (\(engine.kind.rawValue))" : "a \(engine.kind.rawValue) snapshot"
            throw MigsnapError.invalidInput("Snapshot \(m.id) is of a \(m.engine.rawValue) database; it cannot be compared with \(other).",
                                            hint: "Compare snapshots of the same database, or point --url at it.")
        }
        let live: Side?
        if b == nil {
            guard try engine.databaseExists() else {
                throw MigsnapError.invalidInput("There is no database at \(engine.redactedLocation) to compare with.",
                                                hint: "Name a second snapshot: `migsnap diff A B`.")
            }
            live = Side(kind: "live", id: nil, database: engine.redactedLocation,
                        revisions: try engine.currentRevisions(versionTable: versionTable))
        } else {
            live = nil
        }
        let scratch = try store.makeScratch()
        let payloadA = try store.localPayload(a, scratch: scratch, progress: progress)
        // A snapshot compared with itself is fetched once: the scratch space holds one file per name.
        let payloadB = try b.map { $0.id == a.id ? payloadA : try store.localPayload($0, scratch: scratch, progress: progress) }
        let diff = try engine.diff(payloadA, with: payloadB, scratch: scratch, scope: scope, progress: progress)
        return Report(a: side(a), b: b.map(side) ?? live!, diff: diff)
    }

    private static func side(_ m: Manifest) -> Side {
        Side(kind: "snapshot", id: m.id, database: m.database, revisions: m.revisions)
    }
}
