import CSQLite
import Foundation
import MigsnapCompression
import MigsnapCore

/// A SQLite database file. Snapshots are the blocked gzip of a plain copy of the database
/// (independent members of 1 MiB, compressed and decompressed on `threads` threads), so
/// `gunzip` alone still gives a working database.
public final class SQLiteEngine: DatabaseEngine {
    /// The database file, absolute.
    public let path: String
    /// Threads that compress and decompress the payload.
    public let threads: Int

    public init(path: String, threads: Int = Parallelism.cores) {
        self.path = path
        self.threads = max(1, threads)
    }

    /// `MIGSNAP_THREADS` if set, else all cores; a message for an invalid value.
    public static func configuredThreads() -> Result<Int, ParallelismError> {
        Parallelism.fromEnvironment()
    }

    public var kind: EngineKind { .sqlite }
    public var redactedLocation: String { path }

    /// Set while a restore stages the payload for a plan: the comparison with the live database
    /// that follows runs beside the integrity check instead of after it (see `stage`).
    private var stagingForPlan = false

    public func stagingForPlan<T>(_ body: () throws -> T) throws -> T {
        stagingForPlan = true
        defer { stagingForPlan = false }
        return try body()
    }

    /// Pages copied per backup step while snapshotting: a few MiB, so progress moves smoothly.
    private static let snapshotPagesPerStep: Int32 = 1024

    public func databaseExists() throws -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return false }
        guard !isDirectory.boolValue else {
            throw MigsnapError.invalidInput("The SQLite database \(UserText.line(path, limit: 300)) is a directory, not a database file.",
                                            hint: "Point the URL at a file, e.g. sqlite:///app.db (check --url, DATABASE_URL or sqlalchemy.url).")
        }
        return true
    }

    public func currentRevisions(versionTable: VersionTable) throws -> [String] {
        try Self.checkSchema(versionTable)
        guard try databaseExists() else { return [] }
        return try onLive {
            try Self.revisions(in: Connection(path: path, mode: .readOnly), versionTable)
        }
    }

    public func rowCounts() throws -> [String: Int64] {
        guard try databaseExists() else { return [:] }
        return try onLive {
            try Self.rowCounts(in: Connection(path: path, mode: .readOnly))
        }
    }

    public func shape() throws -> DatabaseShape {
        guard try databaseExists() else { return DatabaseShape(tables: [:]) }
        return try onLive {
            try Self.shape(in: Connection(path: path, mode: .readOnly))
        }
    }

    public func snapshot(into payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> SnapshotCapture {
        try snapshot(into: payload, hotImage: nil, versionTable: versionTable, progress: progress)
    }

    public var hotTier: HotTier { .storeFile }

    /// The hot image is the backup copy the payload is compressed from, kept instead of deleted:
    /// it costs a rename and a header change, not another copy.
    public func snapshot(into payload: URL, hotImage: URL?, versionTable: VersionTable, progress: ProgressReporter) throws -> SnapshotCapture {
        defer { progress.finish() }
        try Self.checkSchema(versionTable)
        guard try databaseExists() else {
            throw MigsnapError.invalidInput(
                "no database at \(path)",
                hint: "Check the database URL; a database that does not exist yet has nothing to snapshot.")
        }
        let copy = Self.siblingPath(of: payload.path, prefix: ".tmp-", suffix: ".copy")
        defer { Self.removeDatabaseFiles(copy) }

        let (revisions, shape): ([String], DatabaseShape) = try onLive(writingTo: URL(fileURLWithPath: copy).deletingLastPathComponent().path) {
            let source = try Connection(path: path, mode: .readOnly)
            // A read transaction held across all backup steps pins one consistent view: without it
            // every step ends the read, and a write from another connection restarts the backup,
            // possibly forever under a steady writer. In WAL mode writers go on meanwhile.
            try source.execute("BEGIN; SELECT COUNT(*) FROM sqlite_master;")
            let image = try Connection(path: copy, mode: .create)
            // The copy is scratch until it is compressed and the gzip is fsynced: no journal needed.
            try image.execute("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;")
            try image.backup(from: source, pagesPerStep: Self.snapshotPagesPerStep) { done, total in
                progress.update(phase: "copying", done: done, total: total, unit: .pages)
            }
            try source.execute("COMMIT")
            // Read from the copy: by construction the revision, the shape and the data are one view.
            return (try Self.revisions(in: image, versionTable), try Self.shape(in: image))
        }

        // The copy is complete and consistent before compression starts: SQLite's backup rewrites
        // page 1 at every step, so blocks cannot be compressed while pages still arrive.
        let size = FileSystem.fileSize(copy)
        do {
            // The store makes durable what it keeps (a directory store fsyncs before its rename; a
            // bucket keeps no local copy), so the scratch payload is not synced here.
            let sizes = try Gzip.compressBlocked(file: copy, to: payload.path, threads: threads, fsync: false) { done in
                progress.update(phase: "compressing", done: done, total: size)
            }
            if let hotImage {
                try keepHotImage(copy, at: hotImage.path)
            }
            return SnapshotCapture(revisions: revisions, rawBytes: sizes.rawBytes, shape: shape)
        } catch let error as GzipError {
            throw MigsnapError.failed("Writing the snapshot failed: \(error.description).")
        }
    }

    public func inspect(payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> PayloadContent {
        defer { progress.finish() }
        try Self.checkSchema(versionTable)
        let imagePath = Self.siblingPath(of: payload.path, prefix: ".tmp-", suffix: ".inspect")
        defer { Self.removeDatabaseFiles(imagePath) }
        do {
            let image = try Self.verifiedImage(of: payload, at: imagePath, threads: threads, progress: progress)
            return try Self.onImage(payload) {
                PayloadContent(revisions: try Self.revisions(in: image, versionTable),
                               rowCounts: try Self.rowCounts(in: image))
            }
        } catch let error as MigsnapError {
            switch error {
            case .verificationFailed, .failed:
                // A failure of the machine (a full disk, an unreadable scratch file) is not a
                // failure of the snapshot: it stays `.failed`, exit 1, and says so.
                throw error
            case .invalidInput, .refused:
                throw MigsnapError.verificationFailed(error.message, hint: error.hint)
            }
        }
    }

    public func stageRestore(payload: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore {
        try stage(payload, arriving: nil, versionTable: versionTable, progress: progress)
    }

    /// Inflates the payload's blocks into the staging file as they arrive.
    public func stageRestore(arriving payload: ArrivingPayload, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore {
        try stage(payload.url, arriving: payload, versionTable: versionTable, progress: progress)
    }

    private func stage(_ payload: URL, arriving: ArrivingPayload?, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore {
        defer { progress.finish() }
        try Self.checkSchema(versionTable)
        let staging = Self.stagingPath(besideDatabase: path)
        var integrity: Background<Void>?
        do {
            // Everything about the payload is checked before the live database is written. For a
            // plan, the check (most of the cores for most of a restore's time) runs on while the
            // comparison reads the image and the live database; the staged restore waits for it
            // before it answers the comparison or copies anything.
            let image = try Self.inflatedImage(of: payload, at: staging, threads: threads, arriving: arriving, progress: progress)
            progress.update(phase: "checking integrity", done: 0, total: nil)
            if stagingForPlan && threads > 1 {
                let threads = threads
                integrity = Background { try Self.checkIntegrity(of: payload, at: staging, connection: nil, threads: threads) }
            } else {
                try Self.checkIntegrity(of: payload, at: staging, connection: image, threads: threads)
            }
            let content: PayloadContent
            do {
                content = try Self.onImage(payload) {
                    PayloadContent(revisions: try Self.revisions(in: image, versionTable), rowCounts: try Self.rowCounts(in: image))
                }
            } catch {
                // A damaged image is reported by the check, which says what is wrong with it.
                try integrity?.wait()
                throw error
            }
            return SQLiteStagedRestore(engine: self, staging: staging, hotImage: nil, image: image, content: content, integrity: integrity)
        } catch {
            _ = try? integrity?.wait()
            Self.removeDatabaseFiles(staging)
            throw error
        }
    }

    /// The hot image is opened read-only where it lies (the store's file, linked into the run's
    /// scratch space) and copied into the live database by the same transaction a restore uses.
    /// Its checksum stands for the integrity check: it holds the bytes SQLite's backup wrote.
    public func stageRestore(hotImage: URL, versionTable: VersionTable, progress: ProgressReporter) throws -> StagedRestore {
        defer { progress.finish() }
        try Self.checkSchema(versionTable)
        let image = try Self.onImage(hotImage) { try Connection(path: hotImage.path, mode: .readOnly) }
        let content = try Self.onImage(hotImage) {
            PayloadContent(revisions: try Self.revisions(in: image, versionTable), rowCounts: try Self.rowCounts(in: image))
        }
        if try databaseExists() {
            // Into a WAL database of another page size the image would have to be rebuilt (see
            // `copy`), which a read-only image cannot be: the compressed payload serves instead.
            let (liveMode, livePageSize) = try onLive {
                let live = try Connection(path: path, mode: .readOnly)
                return (try live.scalar("PRAGMA journal_mode")?.lowercased(), try live.scalar("PRAGMA page_size"))
            }
            let imagePageSize = try Self.onImage(hotImage) { try image.scalar("PRAGMA page_size") }
            if liveMode == "wal", livePageSize != imagePageSize {
                throw MigsnapError.failed("the database's page size is now \(livePageSize ?? "?"), the hot copy's \(imagePageSize ?? "?")")
            }
        }
        return SQLiteStagedRestore(engine: self, staging: nil, hotImage: hotImage.path, image: image, content: content)
    }

    /// Makes the backup copy a hot image: in rollback-journal mode (the backup copied the live
    /// database's WAL flag), so that it opens read-only as it is, then moved to `hot`.
    private func keepHotImage(_ copy: String, at hot: String) throws {
        do {
            let image = try Connection(path: copy, mode: .readWrite)
            try image.execute("PRAGMA journal_mode=DELETE")
        } catch let failure as SQLiteFailure {
            throw MigsnapError.failed("Keeping the hot copy failed: \(failure.message)")
        }
        for suffix in ["-wal", "-shm", "-journal"] {
            unlink(copy + suffix)
        }
        try FileSystem.rename(copy, to: hot)
    }

    /// A verified image, ready to go into the live database: in a staging file beside it (which is
    /// then the restore's own), or a hot image that is only read.
    final class SQLiteStagedRestore: StagedRestore {
        let engine: SQLiteEngine
        let staging: String?
        let hotImage: String?
        private var image: Connection?
        let content: PayloadContent
        /// The integrity check of a staging file, where it runs beside the comparison.
        private let integrity: Background<Void>?
        /// The staging file went into the live database by a copy, and is still there to keep.
        private var copiedIntoLive = false

        init(engine: SQLiteEngine, staging: String?, hotImage: String?, image: Connection, content: PayloadContent,
             integrity: Background<Void>? = nil) {
            self.engine = engine
            self.staging = staging
            self.hotImage = hotImage
            self.image = image
            self.content = content
            self.integrity = integrity
        }

        func compareWithLive(scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff {
            // The image is a staging file, or the hot image where it lies; either is only read here.
            progress.update(phase: "comparing with the database", done: 0, total: nil)
            defer { progress.finish() }
            let diff = Result { try engine.compare((staging ?? hotImage)!, payload: nil, with: engine.path, payload: nil, scope: scope) }
            // A damaged image fails as such, whatever the comparison made of it.
            try integrity?.wait()
            return try diff.get()
        }

        func commit(progress: ProgressReporter) throws {
            defer { progress.finish() }
            try integrity?.wait()
            guard let image else { return }
            if try engine.databaseExists() {
                try engine.copy(image, intoLiveDatabase: progress)
                self.image = nil
                copiedIntoLive = staging != nil
            } else if let staging {
                self.image = nil
                try engine.moveIntoPlace(staging)
            } else if let hotImage {
                // A hot image is the store's file: a missing database gets a copy of it, made
                // beside the database and renamed into place like a staging file.
                self.image = nil
                let staging = SQLiteEngine.stagingPath(besideDatabase: engine.path)
                defer { SQLiteEngine.removeDatabaseFiles(staging) }
                try FileSystem.copyFile(hotImage, to: staging)
                try engine.moveIntoPlace(staging)
            }
        }

        /// The copy left the staging file in rollback-journal mode (see `copy`), so it opens
        /// read-only as it is; a VACUUM for the live page size may have rewritten it, which is why
        /// the store hashes the file as kept.
        func keepImage(at path: String) throws -> Bool {
            guard copiedIntoLive, let staging else { return false }
            copiedIntoLive = false
            for suffix in ["-wal", "-shm", "-journal"] {
                unlink(staging + suffix)
            }
            // The store's scratch space may lie on another file system than the database.
            if rename(staging, path) != 0 {
                guard errno == EXDEV else { throw FileSystem.osError("move the restored image to \(path)") }
                try FileSystem.copyFile(staging, to: path)
            }
            return true
        }

        deinit {
            // The check's readers would leave a -shm behind if the files went first.
            _ = try? integrity?.wait()
            image = nil
            if let staging { SQLiteEngine.removeDatabaseFiles(staging) }
        }
    }

    /// Removes staging files a killed restore left beside the database. Call it only when no
    /// restore of this database is running (under the store's lock).
    /// SQLite has no lock of its own across migsnap runs: the store lock serializes them.
    public func withDatabaseLock<T>(wait: TimeInterval, _ body: () throws -> T) throws -> T {
        try body()
    }

    public func cleanRestoreDebris() {
        Self.cleanDebris(besideDatabase: path)
    }

    public static func cleanDebris(besideDatabase path: String) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let prefix = ".\(url.lastPathComponent).migsnap-staging-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            unlink(directory + "/" + name)
        }
    }

    // MARK: - Restore steps

    /// Copies the verified image over the live database in one write transaction: SQLite's journal
    /// or WAL makes it atomic and crash-safe, and other connections see all-old or all-new.
    /// Writing into the existing file keeps its inode, permissions and owner.
    fileprivate func copy(_ image: Connection, intoLiveDatabase progress: ProgressReporter) throws {
        try onLive {
            let live = try Connection(path: path, mode: .readWrite)
            let liveMode = try live.scalar("PRAGMA journal_mode")?.lowercased()
            let livePageSize = try live.scalar("PRAGMA page_size")
            try Self.onImage(nil) {
                // The backup copies the image's header bytes 18-19 (the WAL flag) into a rollback-mode
                // database, so the image must be in rollback mode not to switch the live database to
                // WAL behind its other connections' backs; into a WAL database SQLite sets them itself.
                try image.execute("PRAGMA journal_mode=DELETE")
                let imagePageSize = try image.scalar("PRAGMA page_size")
                if liveMode == "wal", let livePageSize, livePageSize != imagePageSize {
                    // SQLite cannot change the page size of a WAL database, so a backup into one from a
                    // database with another page size fails with SQLITE_READONLY. Rebuilding the
                    // image at the live page size (VACUUM; scratch file, so no journal) makes the
                    // sizes equal; the pages' content is the same rows.
                    try image.execute("PRAGMA journal_mode=OFF; PRAGMA page_size=\(livePageSize); VACUUM;")
                }
            }
            // In steps, for the progress line: the backup holds the live database's write
            // transaction from its first step to its last (SQLite commits only when all pages
            // are copied), so a run killed between steps leaves the old database, as in one step.
            try live.backup(from: image, pagesPerStep: Self.snapshotPagesPerStep) { done, total in
                progress.update(phase: "restoring", done: done, total: total, unit: .pages)
            }
        }
    }

    /// Puts the image where there is no database (a deleted file is one of the losses to undo).
    fileprivate func moveIntoPlace(_ staging: String) throws {
        // A -wal or -journal left by the deleted database would be replayed into the new file.
        for suffix in ["-wal", "-shm", "-journal"] {
            unlink(path + suffix)
        }
        // Staging files are 0600; a new database gets the mode SQLite would create it with.
        chmod(staging, 0o644 & ~Self.processUmask())
        do {
            try FileSystem.syncFile(staging)
            try FileSystem.rename(staging, to: path)
        } catch let error as MigsnapError {
            throw MigsnapError.failed("Cannot put the restored database at \(path): \(error.message)",
                                      hint: "Check the permissions of \(URL(fileURLWithPath: path).deletingLastPathComponent().path).")
        }
    }

    // MARK: - Reading databases

    /// Decompresses `payload` to `imagePath` and opens it after SQLite's integrity check passed.
    /// A blocked payload is inflated straight into `imagePath` on `threads` threads, every block's
    /// CRC checked; an old single-stream payload is read as one stream.
    /// With `arriving`, the payload may still be arriving: its bytes are checked against the
    /// manifest before the image is opened, and a damaged block is reported as the checksum
    /// mismatch it then is.
    static func verifiedImage(of payload: URL, at imagePath: String, threads: Int, arriving: ArrivingPayload? = nil,
                              progress: ProgressReporter) throws -> Connection {
        let image = try inflatedImage(of: payload, at: imagePath, threads: threads, arriving: arriving, progress: progress)
        progress.update(phase: "checking integrity", done: 0, total: nil)
        try checkIntegrity(of: payload, at: imagePath, connection: image, threads: threads)
        return image
    }

    /// The payload decompressed to `imagePath` (see `verifiedImage`) and opened, not yet checked.
    static func inflatedImage(of payload: URL, at imagePath: String, threads: Int, arriving: ArrivingPayload?,
                              progress: ProgressReporter) throws -> Connection {
        do {
            let input = arriving.map { arriving in
                ArrivingInput(size: arriving.file.size) { offset, length in try arriving.file.wait(offset: offset, length: length) }
            }
            // Scratch until proven sound; moveIntoPlace fsyncs it if it becomes the database.
            _ = try Gzip.decompress(file: payload.path, to: imagePath, fsync: false, threads: threads, arriving: input) { done in
                progress.update(phase: "decompressing", done: done, total: nil)
            }
            try arriving?.verify()
        } catch let error as GzipError {
            try arriving?.verify()
            switch error.kind {
            case .corrupt:
                throw MigsnapError.verificationFailed("the snapshot \(payload.lastPathComponent) is damaged: \(error.description)")
            case .io:
                throw MigsnapError.failed(
                    "cannot decompress the snapshot \(payload.lastPathComponent): \(error.description); the database was not touched")
            }
        }
        return try onImage(payload) {
            let image = try Connection(path: imagePath, mode: .readWrite)
            // A bigger page cache makes integrity_check markedly faster; 8 MiB keeps memory flat.
            try image.execute("PRAGMA cache_size = -8192")
            return image
        }
    }

    /// SQLite's integrity check of the image at `imagePath`, on `connection` or, without one, on
    /// read-only connections of its own; a verification failure naming the first problems.
    static func checkIntegrity(of payload: URL, at imagePath: String, connection: Connection?, threads: Int) throws {
        try onImage(payload) {
            let connection = try connection ?? Connection(path: imagePath, mode: .readOnly)
            let problems = try IntegrityCheck.problems(path: imagePath, connection: connection, threads: threads)
            guard problems == ["ok"] else {
                throw MigsnapError.verificationFailed(
                    "the snapshot \(payload.lastPathComponent) fails SQLite's integrity check: "
                        + problems.prefix(3).joined(separator: "; "))
            }
        }
    }

    static func revisions(in connection: Connection, _ table: VersionTable) throws -> [String] {
        let schema = quote(table.schema ?? "main")
        let exists = try connection.rows(
            "SELECT 1 FROM \(schema).sqlite_master WHERE type = 'table' AND name = ?", [table.name])
        guard !exists.isEmpty else { return [] }
        return try connection.rows("SELECT version_num FROM \(schema).\(quote(table.name))")
            .compactMap { $0.first ?? nil }
            .sorted()
    }

    static func rowCounts(in connection: Connection) throws -> [String: Int64] {
        try shape(in: connection, columns: false).tables.mapValues(\.rows)
    }

    private static func shape(in connection: Connection, columns: Bool = true) throws -> DatabaseShape {
        // One read transaction, so the counts are of one moment.
        try connection.execute("BEGIN")
        defer { try? connection.execute("COMMIT") }
        // Virtual tables are left out: counting them needs their module, their shadow tables count.
        let tables = try connection.rows("""
            SELECT name FROM main.sqlite_master
            WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
              AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'
            ORDER BY name
            """).compactMap { $0.first ?? nil }
        var shape = DatabaseShape(tables: [:])
        for table in tables {
            let rows = Int64(try connection.scalar("SELECT COUNT(*) FROM main.\(quote(table))") ?? "0") ?? 0
            let names = columns
                ? try connection.rows("SELECT name FROM pragma_table_info(?, 'main') ORDER BY cid", [table]).compactMap { $0.first ?? nil }
                : []
            shape.tables[table] = DatabaseShape.Table(columns: names, rows: rows)
        }
        return shape
    }

    /// Attached databases are SQLite's only schemas; a version table lives in the main one.
    static func checkSchema(_ table: VersionTable) throws {
        guard table.schema == nil || table.schema == "main" else {
            throw MigsnapError.invalidInput(
                "SQLite has no schema '\(table.schema!)' for the version table",
                hint: "Leave out --version-table-schema for SQLite (or use 'main').")
        }
    }

    static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: - Errors

    /// Runs `body` against the live database and says what a SQLite failure means for it.
    /// `place` is where the writes go, if not into the database itself.
    func onLive<T>(writingTo place: String? = nil, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as SQLiteFailure {
            switch failure.code {
            case SQLITE_NOTADB:
                throw MigsnapError.invalidInput("\(path) is not a SQLite database", hint: "Check the database URL.")
            case SQLITE_CANTOPEN:
                throw MigsnapError.invalidInput("cannot open the database at \(path): \(failure.message)",
                                                hint: "Check the database URL and the file's permissions.")
            case SQLITE_BUSY, SQLITE_LOCKED:
                throw MigsnapError.failed(
                    "the database at \(path) is locked by another connection; it was not changed",
                    hint: "Wait for the other connection to finish (or stop the application), then retry.")
            case SQLITE_FULL:
                throw MigsnapError.failed("No space left on device while writing to \(place ?? path); the database was not changed",
                                          hint: "Free some disk space, then retry.")
            default:
                throw MigsnapError.failed("SQLite failed on \(path): \(failure.message)")
            }
        }
    }

    /// Runs `body` against a payload's image: any SQLite failure means the payload is not sound.
    static func onImage<T>(_ payload: URL?, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as SQLiteFailure {
            if failure.code == SQLITE_FULL {
                throw MigsnapError.failed("No space left on device while checking the snapshot",
                                          hint: "Free some disk space, then retry.")
            }
            let name = payload.map { "the snapshot \($0.lastPathComponent)" } ?? "the snapshot"
            throw MigsnapError.verificationFailed("\(name) is not a usable SQLite database: \(failure.message)")
        }
    }

    // MARK: - Files

    /// A new name in the directory of `file`, unique enough not to collide with a concurrent run.
    private static func siblingPath(of file: String, prefix: String, suffix: String) -> String {
        let url = URL(fileURLWithPath: file)
        return url.deletingLastPathComponent().path + "/" + prefix + url.lastPathComponent + "-" + randomTag() + suffix
    }

    /// `.<dbname>.migsnap-staging-XXXXXXXX` in the database's own directory, so that the final
    /// rename cannot cross file systems and `cleanDebris` can recognise it.
    static func stagingPath(besideDatabase path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().path + "/.\(url.lastPathComponent).migsnap-staging-" + randomTag()
    }

    private static func randomTag() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// A scratch database and the files SQLite may have made beside it.
    static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            unlink(path + suffix)
        }
    }

    /// The umask without changing it (umask(2) can only set it, which races with other threads).
    private static func processUmask() -> mode_t {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }),
           let value = mode_t(line.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8) {
            return value
        }
        return 0o022
    }
}
