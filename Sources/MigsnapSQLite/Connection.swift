import CSQLite

/// A SQLite result code with its message, as the library reported it. The engine turns it into a
/// `MigsnapError` that says which database it was about.
struct SQLiteFailure: Error {
    /// The primary result code (SQLITE_BUSY, SQLITE_NOTADB, …).
    let code: Int32
    let message: String
}

/// One sqlite3 connection, closed in deinit. Statements never outlive the call that prepared them.
final class Connection {
    /// How long a connection waits for another one's lock before giving up.
    static let busyTimeoutMilliseconds: Int32 = 5000

    private let handle: OpaquePointer

    enum Mode {
        case readOnly
        case readWrite
        case create
        /// An empty in-memory database that reads others through `ATTACH 'file:…?mode=ro'`.
        case memoryAttachingURIs
        /// A database file to write, that reads others through `ATTACH 'file:…?mode=ro'`.
        case readWriteAttachingURIs
    }

    init(path: String, mode: Mode) throws {
        let flags: Int32 = switch mode {
        case .readOnly: SQLITE_OPEN_READONLY
        case .readWrite: SQLITE_OPEN_READWRITE
        case .create: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .memoryAttachingURIs: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY | SQLITE_OPEN_URI
        case .readWriteAttachingURIs: SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(db)
            throw SQLiteFailure(code: rc & 0xff, message: message)
        }
        handle = db
        sqlite3_busy_timeout(db, Connection.busyTimeoutMilliseconds)
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    private func failure(_ rc: Int32) -> SQLiteFailure {
        SQLiteFailure(code: rc & 0xff, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Runs one or more statements that return nothing the caller needs.
    func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        defer { sqlite3_free(error) }
        guard rc == SQLITE_OK else {
            throw SQLiteFailure(code: rc & 0xff, message: error.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc)))
        }
    }

    /// Runs one statement and returns its rows as text (NULL as nil). For small results only.
    func rows(_ sql: String, _ parameters: [String] = []) throws -> [[String?]] {
        var prepared: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &prepared, nil)
        guard rc == SQLITE_OK, let statement = prepared else { throw failure(rc) }
        defer { sqlite3_finalize(statement) }
        for (index, value) in parameters.enumerated() {
            let bound = migsnap_bind_text(statement, Int32(index + 1), value)
            guard bound == SQLITE_OK else { throw failure(bound) }
        }
        var result: [[String?]] = []
        let columns = sqlite3_column_count(statement)
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { return result }
            guard step == SQLITE_ROW else { throw failure(step) }
            result.append((0..<columns).map { column in
                sqlite3_column_text(statement, column).map { String(cString: $0) }
            })
        }
    }

    /// The first column of the first row.
    func scalar(_ sql: String) throws -> String? {
        try rows(sql).first?.first ?? nil
    }

    /// Copies `source` over this connection's main database with SQLite's online backup.
    /// `pagesPerStep` -1 copies everything in one step, which SQLite does as one write transaction.
    /// `progress` receives (pages done, pages total) after each step.
    func backup(from source: Connection, pagesPerStep: Int32, progress: (Int64, Int64) -> Void) throws {
        guard let backup = sqlite3_backup_init(handle, "main", source.handle, "main") else {
            throw failure(sqlite3_errcode(handle))
        }
        var rc: Int32
        repeat {
            rc = sqlite3_backup_step(backup, pagesPerStep)
            let total = Int64(sqlite3_backup_pagecount(backup))
            progress(total - Int64(sqlite3_backup_remaining(backup)), total)
        } while rc == SQLITE_OK
        // finish records the step's error on the destination connection, where failure() reads it.
        let finished = sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else { throw failure(rc) }
        guard finished == SQLITE_OK else { throw failure(finished) }
    }
}
