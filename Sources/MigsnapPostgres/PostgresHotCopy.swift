import Foundation
import MigsnapCore

/// The hot tier on PostgreSQL (see HotCopies.swift in the core): at snapshot time the live
/// database is cloned on the server (`CREATE DATABASE … TEMPLATE live`, a file-level copy) and the
/// snapshot is dumped from the clone, so the clone and the compressed snapshot hold one state. The
/// clone is then closed to connections: nothing can change it unseen, and a clone that has been
/// opened, or another database under its name (another oid), is not trusted. A rollback to it is
/// the rename swap every restore ends with, without pg_restore.
///
/// PostgreSQL clones a database only while no other session is connected to it: when the
/// application is connected, the snapshot is taken as usual and no hot copy is kept, with a notice.
extension PostgresEngine {
    public var hotTier: HotTier { .server }

    /// `migsnap_hot_<hash of the live name>_<the id's digits>`: from a checked id only, and with a
    /// prefix the restore debris (`migsnap_<hash>_…`) never has.
    func hotCopyName(_ id: String) -> String {
        precondition(SnapshotID.isWellFormed(id), "hot copy name from an unchecked id")
        return hotCopyPrefix + id.filter(\.isNumber)
    }

    private var hotCopyPrefix: String {
        Self.hotCopyPrefix(forDatabase: databaseName)
    }

    /// What the names of the hot copies of database `name` start with.
    public static func hotCopyPrefix(forDatabase name: String) -> String {
        "migsnap_hot_" + String(stableHash(name), radix: 16) + "_"
    }

    public func snapshot(into payload: URL, serverHotCopyOf id: String, versionTable: VersionTable, progress: ProgressReporter,
                         notice: (String) -> Void) throws -> (SnapshotCapture, HotCopy?) {
        let admin = try Connection(maintenanceTarget)
        let name = hotCopyName(id)
        // FILE_COPY (15+) copies the files instead of writing every page to the WAL: faster for big databases.
        let strategy = admin.serverVersionNumber >= 150_000 ? " STRATEGY FILE_COPY" : ""
        do {
            _ = try admin.execute("CREATE DATABASE \(quoteIdentifier(name)) TEMPLATE \(quoteIdentifier(databaseName))\(strategy)")
        } catch let error as QueryError {
            let why = error.sqlState == "55006"
                ? "other sessions are connected to \(databaseName), and PostgreSQL clones a database only without them"
                : UserText.line(error.message)
            notice("Notice: no hot copy this time (\(why)); the snapshot is taken as usual.")
            return (try snapshot(into: payload, versionTable: versionTable, progress: progress), nil)
        }
        do {
            let capture = try PostgresEngine(target: target.with(database: name)).snapshot(into: payload, versionTable: versionTable,
                                                                                           progress: progress)
            _ = try admin.execute("ALTER DATABASE \(quoteIdentifier(name)) ALLOW_CONNECTIONS false")
            let row = try admin.execute("SELECT oid::text, pg_database_size(oid)::text FROM pg_database WHERE datname = $1", [name])
            guard row.rowCount == 1, let oid = row.value(row: 0, column: 0) else {
                throw QueryError(sqlState: nil, message: "the clone \(name) is gone")
            }
            return (capture, HotCopy(bytes: Int64(row.value(row: 0, column: 1) ?? "0") ?? 0, oid: oid))
        } catch {
            _ = try? admin.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(name))\(forceDrop(admin))")
            if let error = error as? QueryError { throw error.migsnap("Could not keep the hot copy of \(target.redacted)") }
            throw error
        }
    }

    public func checkServerHotCopy(of id: String, record: HotCopy) throws {
        try checkServerHotCopy(of: id, record: record, on: try Connection(maintenanceTarget))
    }

    private func checkServerHotCopy(of id: String, record: HotCopy, on admin: Connection) throws {
        let name = hotCopyName(id)
        let row: QueryResult
        do {
            row = try admin.execute("SELECT oid::text, datallowconn FROM pg_database WHERE datname = $1", [name])
        } catch let error as QueryError {
            throw error.migsnap("Could not look for the hot copy on \(target.redacted)")
        }
        guard row.rowCount == 1 else { throw MigsnapError.verificationFailed("the clone \(name) is missing on the server") }
        guard row.value(row: 0, column: 0) == record.oid else {
            throw MigsnapError.verificationFailed("\(name) on the server is another database than the clone that was made")
        }
        guard row.value(row: 0, column: 1) == "f" else {
            throw MigsnapError.verificationFailed("\(name) was opened to connections since it was made, so it may have changed")
        }
    }

    public func stageRestore(serverHotCopyOf id: String, record: HotCopy, rows: [String: Int64]?, versionTable: VersionTable,
                             progress: ProgressReporter) throws -> StagedRestore {
        let admin = try Connection(maintenanceTarget)
        try checkServerHotCopy(of: id, record: record, on: admin)
        let name = hotCopyName(id)
        let quoted = quoteIdentifier(name)
        let close = { _ = try? admin.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS false") }
        do {
            _ = try admin.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS true")
            let revisions = try PostgresEngine(target: target.with(database: name)).currentRevisions(versionTable: versionTable)
            let swap = DatabaseSwap(admin: admin, live: databaseName, context: target.redacted, existing: name)
            // The old database a swap killed after its rename left (`…_old_<run>`), as a restore
            // from the dump drops it.
            try swap.dropDebris()
            try swap.adoptLiveSettings()
            return PostgresStagedRestore(swap: swap, content: PayloadContent(revisions: revisions, rowCounts: rows),
                                         live: target, copy: target.with(database: name), onRelease: close)
        } catch let error as QueryError {
            close()
            throw error.migsnap("Could not open the hot copy on \(target.redacted)")
        } catch {
            close()
            throw error
        }
    }

    public func dropServerHotCopy(of id: String) throws {
        let admin = try Connection(maintenanceTarget)
        do {
            _ = try admin.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(hotCopyName(id)))\(forceDrop(admin))")
        } catch let error as QueryError {
            throw error.migsnap("Could not drop the hot copy of snapshot \(id) on \(target.redacted)")
        }
    }

    public func dropServerHotCopies(except ids: Set<String>) throws {
        let admin = try Connection(maintenanceTarget)
        let keep = Set(ids.filter(SnapshotID.isWellFormed).map(hotCopyName))
        do {
            let names = try admin.execute("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", [hotCopyPrefix])
            for row in 0..<names.rowCount {
                guard let name = names.value(row: row, column: 0), !keep.contains(name) else { continue }
                _ = try admin.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(name))\(forceDrop(admin))")
            }
        } catch let error as QueryError {
            throw error.migsnap("Could not drop old hot copies on \(target.redacted)")
        }
    }

    private func forceDrop(_ admin: Connection) -> String {
        admin.serverVersionNumber >= 130_000 ? " WITH (FORCE)" : ""
    }
}
