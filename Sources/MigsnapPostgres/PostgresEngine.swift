import Foundation
import MigsnapCore

/// PostgreSQL through libpq, pg_dump and pg_restore.
///
/// Snapshots are pg_dump custom-format archives (zlib level 6), taken in an exported
/// REPEATABLE READ snapshot in which the version table is read too, so data and revision agree.
///
/// Restore is "a verified copy swapped in": the archive is restored with pg_restore into a new
/// scratch database created from template0, the scratch copy's version table is checked, and then
/// one transaction on the maintenance database renames the live database away and the copy into
/// its place (ALTER DATABASE … RENAME is transactional). The old database is dropped afterwards.
/// Why this and not one big transaction in the live database:
/// - Exactness for free: the copy starts empty, so objects created after the snapshot (tables,
///   schemas, enums, extensions, event triggers, …) cannot survive, which `pg_restore --clean`
///   does not guarantee, and DDL that cannot run in a transaction block is no obstacle.
/// - The live database is untouched until the swap commits: a kill -9 of migsnap at any moment
///   leaves either the old database (plus a scratch copy that the next restore drops) or the new
///   one (plus the renamed old one, likewise dropped later).
/// - The live database holds no long locks while the copy loads; pg_restore runs in parallel.
/// What it costs, and what connected clients experience: the swap must end every session
/// connected to the live database (pg_terminate_backend); clients see their connection closed
/// and, when they reconnect, the restored database — never a half-restored one. The role needs
/// CREATEDB and ownership of the database (or superuser), and to end other roles' sessions,
/// superuser or pg_signal_backend. Disk space for a second copy is needed while it loads.
/// Database-level settings that are not in the archive without `--create` (owner, encoding,
/// locale, connection limit, GRANTs on the database, ALTER DATABASE … SET, its comment) are
/// carried over from the live database: they belong to the deployment, not to a migration.
public final class PostgresEngine: DatabaseEngine {
    public let target: PostgresTarget
    /// Set while a restore whose copy is compared with the live database is staged.
    private var stagingForPlan = false

    public init(target: PostgresTarget) {
        self.target = target
    }

    public var kind: EngineKind { .postgresql }
    public var redactedLocation: String { target.redacted }

    /// libpq's default: the database named like the user, who defaults to the OS user.
    var databaseName: String {
        target.database ?? target.user ?? ProcessInfo.processInfo.userName
    }

    /// Where migsnap connects to create, rename and drop databases, and to hold its lock.
    var maintenanceTarget: PostgresTarget {
        target.with(database: databaseName == "postgres" ? "template1" : "postgres")
    }

    // MARK: Reading the live database

    public func databaseExists() throws -> Bool {
        do {
            _ = try Connection(target)
            return true
        } catch let error as MigsnapError where error == Connection.classify(
            connectionError: "database \"\(databaseName)\" does not exist", target: target) {
            return false
        }
    }

    public func currentRevisions(versionTable: VersionTable) throws -> [String] {
        try readRevisions(Connection(target), versionTable)
    }

    public func rowCounts() throws -> [String: Int64] {
        try shape(Connection(target), columns: false).shape.tables.mapValues(\.rows)
    }

    public func rowCountsForPlan() throws -> (counts: [String: Int64], unknown: [String: String]) {
        let (shape, unknown) = try shape(Connection(target), columns: false, tolerateUnreadable: true)
        return (shape.tables.mapValues(\.rows), unknown)
    }

    public func shape() throws -> DatabaseShape {
        let connection = try Connection(target)
        // One REPEATABLE READ transaction, so the counts are of one moment.
        _ = try query(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "Could not start a read")
        let shape = try shape(connection).shape
        _ = try query(connection, "COMMIT", "Could not end a read")
        return shape
    }

    /// Top-level user tables with their columns (information_schema order) and row counts;
    /// partitions are counted in their parent, extension tables are not ours.
    /// With `tolerateUnreadable`, a table the role may not read is left out and named with why.
    private func shape(_ connection: Connection, columns: Bool = true,
                       tolerateUnreadable: Bool = false) throws -> (shape: DatabaseShape, unknown: [String: String]) {
        let tables = try connection.execute(Self.userTables)
        var shape = DatabaseShape(tables: [:])
        var unknown: [String: String] = [:]
        for row in 0..<tables.rowCount {
            guard let schema = tables.value(row: row, column: 0), let name = tables.value(row: row, column: 1) else { continue }
            let sql = "SELECT count(*) FROM \(quoteIdentifier(schema)).\(quoteIdentifier(name))"
            let count: Int64
            do {
                count = Int64(try connection.scalar(sql) ?? "0") ?? 0
            } catch let error as QueryError where tolerateUnreadable && error.sqlState == "42501" {
                unknown["\(schema).\(name)"] = error.message
                continue
            } catch let error as QueryError {
                throw error.migsnap("Could not count the rows of \(schema).\(name) in \(target.redacted)")
            }
            let names = columns ? try query(connection, """
                SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
                ORDER BY ordinal_position
                """, "Could not read the columns of \(schema).\(name)", [schema, name]) : []
            shape.tables["\(schema).\(name)"] = DatabaseShape.Table(columns: names, rows: count)
        }
        return (shape, unknown)
    }

    /// Schema and name of the top-level user tables: partitions are read through their parent,
    /// extension tables are not ours.
    static let userTables = """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype = 'e')
        """

    private func readRevisions(_ connection: Connection, _ table: VersionTable) throws -> [String] {
        let exists = try query(connection, "SELECT to_regclass($1) IS NOT NULL", "Could not look up the version table",
                               [qualified(table)])
        guard exists.first == "t" else { return [] }
        return try query(connection, "SELECT version_num FROM \(qualified(table))",
                         "Could not read the version table \(qualified(table))").sorted()
    }

    private func query(_ connection: Connection, _ sql: String, _ context: String, _ parameters: [String] = []) throws -> [String] {
        do {
            return try connection.column(sql, parameters)
        } catch let error as QueryError {
            throw error.migsnap("\(context) in \(target.redacted)")
        }
    }

    // MARK: Snapshot

    @discardableResult
    public func snapshot(into payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> SnapshotCapture {
        let connection = try Connection(target)
        let tools = try ClientTools.find(serverVersion: connection.serverVersionNumber)
        // pg_dump imports this transaction's snapshot, so the revisions read here match the dump.
        _ = try query(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "Could not start the snapshot")
        guard let snapshotID = try query(connection, "SELECT pg_export_snapshot()", "Could not export a snapshot").first else {
            throw MigsnapError.failed("PostgreSQL returned no snapshot id for \(target.redacted).")
        }
        let revisions = try readRevisions(connection, versionTable)
        guard FileManager.default.createFile(atPath: payload.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw MigsnapError.failed("Could not create \(payload.path).")
        }
        // The rows are counted in the dump's own MVCC snapshot while pg_dump runs, on a connection
        // of their own (an error there must not end the transaction pg_dump imports its snapshot
        // from). A table the role cannot count leaves the shape out (guards then say they cannot
        // tell), not the snapshot.
        let counting = Background { [target] () -> DatabaseShape? in
            guard let counter = try? Connection(target),
                  (try? counter.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '\(snapshotID)'")) != nil
            else { return nil }
            defer { _ = try? counter.execute("ROLLBACK") }
            return try? self.shape(counter).shape
        }
        let output: ChildOutput
        do {
            output = try ChildProcess.run(
                tools.pgDump, ["--format=custom", "--compress=6", "--no-password", "--snapshot=\(snapshotID)", "--file=\(payload.path)"],
                environment: childEnvironment(target), captureOutput: false,
                poll: { progress.update(phase: "pg_dump", done: Self.size(of: payload), total: nil) })
        } catch {
            _ = try? counting.wait()
            throw error
        }
        progress.finish()
        let shape = try counting.wait()
        guard output.status == 0 else {
            throw MigsnapError.failed("pg_dump of \(target.redacted) failed: \(output.reason)",
                                      hint: "The database was not changed; no snapshot was taken.")
        }
        _ = try query(connection, "COMMIT", "Could not end the snapshot transaction")
        return SnapshotCapture(revisions: revisions, rawBytes: Self.size(of: payload), shape: shape)
    }

    private static func size(of file: URL) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: file.path)[.size]) as? NSNumber)?.int64Value ?? 0
    }

    private func childEnvironment(_ target: PostgresTarget) -> [String: String] {
        target.environment.merging(["PGAPPNAME": "migsnap", "PGCONNECT_TIMEOUT": "10"]) { $1 }
    }

    // MARK: Inspect

    public func inspect(payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> PayloadContent {
        try inspect(payload: payload, versionTable: versionTable, tools: ClientTools.find(serverVersion: nil), progress: progress)
    }

    private func inspect(payload: URL, versionTable: VersionTable, tools: ClientTools, progress: ProgressReporter) throws -> PayloadContent {
        progress.update(phase: "pg_restore (reading)", done: 0, total: nil)
        defer { progress.finish() }
        // Writing the whole script to /dev/null reads and inflates every block, not just the table of contents.
        let full = try ChildProcess.run(tools.pgRestore, ["--file=/dev/null", payload.path], environment: [:], captureOutput: false)
        guard full.status == 0 else {
            throw MigsnapError.verificationFailed("pg_restore cannot read \(payload.lastPathComponent): \(full.reason)",
                                                  hint: "This snapshot is damaged; restore another one (migsnap list).")
        }
        var arguments = ["--file=-", "--data-only", "--table=\(versionTable.name)"]
        if let schema = versionTable.schema { arguments.append("--schema=\(schema)") }
        let data = try ChildProcess.run(tools.pgRestore, arguments + [payload.path], environment: [:], captureOutput: true)
        guard data.status == 0 else {
            throw MigsnapError.verificationFailed("pg_restore cannot read the version table in \(payload.lastPathComponent): \(data.reason)")
        }
        let revisions = CopyBlock.revisions(in: String(decoding: data.stdout, as: UTF8.self), table: versionTable)
        return PayloadContent(revisions: revisions, rowCounts: nil)
    }

    // MARK: Restore

    public func stageRestore(payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore {
        // For a plan, the live database (where there is one) is read while pg_restore runs.
        try stage(payload: payload, versionTable: versionTable, progress: progress,
                  live: stagingForPlan ? try? LiveSide(target) : nil)
    }

    public func stagingForPlan<T>(_ body: () throws -> T) throws -> T {
        stagingForPlan = true
        defer { stagingForPlan = false }
        return try body()
    }

    /// The payload checked and restored into a scratch database, dropped when the result is released uncommitted.
    func stage(payload: URL, versionTable: VersionTable, progress: ProgressReporter, live: LiveSide? = nil) throws -> PostgresStagedRestore {
        let admin = try Connection(maintenanceTarget)
        let tools = try ClientTools.find(serverVersion: admin.serverVersionNumber)
        // The restore into the scratch database reads the whole payload: a separate read first
        // would only repeat it. Where that restore fails, `inspect` tells a damaged payload
        // (exit 3) from a failing server.
        let swap = DatabaseSwap(admin: admin, live: databaseName, context: target.redacted)
        try swap.dropDebris()
        try swap.createScratch()
        do {
            progress.update(phase: "pg_restore", done: 0, total: nil)
            let jobs = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
            let output = try ChildProcess.run(
                tools.pgRestore, ["--dbname=\(swap.scratch)", "--exit-on-error", "--no-password", "--jobs=\(jobs)", payload.path],
                environment: childEnvironment(target.with(database: swap.scratch)), captureOutput: false, poll: {})
            progress.finish()
            guard output.status == 0 else {
                if output.diskFull {
                    throw MigsnapError.failed(
                        "pg_restore into a scratch copy failed: the PostgreSQL server ran out of disk space (\(output.reason)).",
                        hint: "Free space on the server's disk: a restore needs room for a second copy of the database while it loads. The database \(target.redacted) was not changed.")
                }
                _ = try inspect(payload: payload, versionTable: versionTable, tools: tools, progress: progress)
                throw MigsnapError.failed("pg_restore into a scratch copy failed: \(output.reason)",
                                          hint: "The database \(target.redacted) was not changed.")
            }
            let copy = PostgresEngine(target: target.with(database: swap.scratch))
            let content = PayloadContent(revisions: try copy.currentRevisions(versionTable: versionTable), rowCounts: try copy.rowCounts())
            let staged = PostgresStagedRestore(swap: swap, content: content, live: target, copy: copy.target)
            staged.liveSide = live
            return staged
        } catch {
            progress.finish()
            guard let left = swap.dropScratch(), let error = error as? MigsnapError else { throw error }
            throw error.appending("The scratch database \(swap.scratch) could not be dropped (\(left)); it is left on the server: drop it with DROP DATABASE \(quoteIdentifier(swap.scratch)), or the next restore drops it.")
        }
    }

    /// A verified copy in a scratch database, swapped in by renaming (see the type's comment).
    final class PostgresStagedRestore: StagedRestore {
        let swap: DatabaseSwap
        var content: PayloadContent
        /// The database the copy replaces, and the copy itself.
        let live: PostgresTarget
        let copy: PostgresTarget
        private var committed = false
        /// Instead of dropping the copy when released uncommitted (a hot copy stays for later).
        let onRelease: (() -> Void)?
        /// The live database's side of the comparison, opened before staging; used once.
        var liveSide: LiveSide?

        init(swap: DatabaseSwap, content: PayloadContent, live: PostgresTarget, copy: PostgresTarget, onRelease: (() -> Void)? = nil) {
            self.swap = swap
            self.content = content
            self.live = live
            self.copy = copy
            self.onRelease = onRelease
        }

        func compareWithLive(scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff {
            defer { liveSide = nil }
            if let liveSide {
                return try PostgresComparison(a: copy, live: liveSide, scope: scope, progress: progress).run()
            }
            return try PostgresComparison(a: copy, b: live, scope: scope, progress: progress).run()
        }

        func commit(progress: ProgressReporter) throws {
            guard !committed else { return }
            // Its connection to the database being swapped goes first.
            liveSide = nil
            try swap.swapIn()
            committed = true
            swap.dropOld()
        }

        deinit {
            guard !committed else { return }
            if let onRelease { onRelease() } else { swap.dropScratch() }
        }
    }

    static func describe(_ revisions: [String]) -> String {
        revisions.isEmpty ? "base" : revisions.joined(separator: ", ")
    }

    // MARK: Lock

    public func withDatabaseLock<T>(wait: TimeInterval, _ body: () throws -> T) throws -> T {
        try withAdvisoryLock(wait: wait, body)
    }

    /// Nothing beside the database: scratch databases of dead runs are dropped by `stageRestore`,
    /// under the advisory lock, and only where no live run holds theirs.
    public func cleanRestoreDebris() {}

    /// Runs `body` while holding a session advisory lock for this database, taken on the maintenance
    /// database (the swap cannot rename a database that migsnap itself is connected to). The lock
    /// dies with the connection, so a killed run never leaves it behind. Waits up to `wait` seconds,
    /// then refuses, naming the holder.
    @discardableResult
    public func withAdvisoryLock<T>(wait: TimeInterval = 5, _ body: () throws -> T) throws -> T {
        let connection = try Connection(maintenanceTarget)
        let keys = [String(Self.lockClass), String(Int32(truncatingIfNeeded: stableHash(databaseName)))]
        let deadline = Date().addingTimeInterval(wait)
        while try query(connection, "SELECT pg_try_advisory_lock($1::int4, $2::int4)", "Could not take the migsnap lock", keys).first != "t" {
            guard Date() < deadline else {
                let holder = try query(connection, """
                    SELECT format('pid %s, application %L, user %s', a.pid, a.application_name, a.usename)
                    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                      AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid
                    """, "Could not find the holder of the migsnap lock", keys).first ?? "a session that just ended"
                throw MigsnapError.refused("Another migsnap run holds the lock on \(target.redacted) (\(holder)).",
                                           hint: "Wait for it to finish and try again.")
            }
            usleep(200_000)
        }
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock($1::int4, $2::int4)", keys) }
        return try body()
    }

    /// "migs" in ASCII: the first half of every migsnap advisory lock key.
    static let lockClass: Int32 = 0x6D69_6773
}

/// FNV-1a: a hash that is the same in every process (Swift's Hasher is seeded per run).
func stableHash(_ text: String) -> UInt64 {
    text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
}

/// Reads the rows of a version table from pg_restore's data-only script.
enum CopyBlock {
    /// Blocks look like `COPY schema.table (version_num) FROM stdin;`, rows, then `\.`.
    /// With no schema given, pg_restore matches the table in every schema; `public` wins, as in
    /// Alembic's default search path.
    static func revisions(in script: String, table: VersionTable) -> [String] {
        var blocks: [(header: String, rows: [String])] = []
        var current: (header: String, rows: [String])?
        for line in script.split(separator: "\n", omittingEmptySubsequences: false) {
            if var block = current {
                if line == "\\." {
                    blocks.append(block)
                    current = nil
                } else {
                    block.rows.append(String(line))
                    current = block
                }
            } else if line.hasPrefix("COPY "), line.hasSuffix(" FROM stdin;") {
                current = (String(line), [])
            }
        }
        let chosen = table.schema == nil
            ? blocks.first(where: { $0.header.hasPrefix("COPY public.") }) ?? blocks.first
            : blocks.first
        return (chosen?.rows ?? []).compactMap { row in
            let field = String(row.split(separator: "\t", omittingEmptySubsequences: false).first ?? "")
            return field == "\\N" ? nil : unescape(field)
        }.sorted()
    }

    /// COPY's text format escapes backslash and control characters.
    static func unescape(_ field: String) -> String {
        var out = ""
        var escaped = false
        for c in field {
            if escaped {
                switch c {
                case "t": out.append("\t")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "b": out.append("\u{8}")
                case "f": out.append("\u{c}")
                case "v": out.append("\u{b}")
                default: out.append(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}
