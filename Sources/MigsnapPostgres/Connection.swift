import CLibPQ
import Foundation
import MigsnapCore

/// One libpq connection, closed when the object goes away.
/// A killed process drops its socket, so the server rolls back whatever transaction was open.
final class Connection {
    private let conn: OpaquePointer
    let target: PostgresTarget

    /// Connects, mapping libpq's failures to messages that say what to do; never the password.
    init(_ target: PostgresTarget) throws {
        self.target = target
        var parameters = target.connectionParameters
        if !parameters.contains(where: { $0.0 == "connect_timeout" }) {
            parameters.append(("connect_timeout", "10"))
        }
        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let kw = keywords.map { UnsafePointer<CChar>($0) } + [nil]
        let vs = values.map { UnsafePointer<CChar>($0) } + [nil]
        guard let conn = PQconnectdbParams(kw, vs, 0) else {
            throw MigsnapError.failed("Could not allocate a PostgreSQL connection (out of memory).")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn))
            PQfinish(conn)
            throw Connection.classify(connectionError: message, target: target)
        }
        // libpq prints NOTICEs (e.g. "does not exist, skipping") to stderr by default; they are not ours to show.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        self.conn = conn
    }

    deinit {
        PQfinish(conn)
    }

    static func classify(connectionError raw: String, target: PostgresTarget) -> MigsnapError {
        let detail = raw.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .last(where: { !$0.isEmpty }) ?? "unknown error"
        let server = "\(target.host ?? "localhost"):\(target.port ?? 5432)"
        let user = target.user ?? "the current user"
        let database = target.database ?? target.user ?? "the default database"
        if raw.contains("password authentication failed") || raw.contains("no password supplied") {
            return .invalidInput("PostgreSQL at \(server) rejected the password of \(user).",
                                 hint: "Check the password in the URL (percent-encode @ : / % # ? in it), or, for a URL without one, PGPASSWORD or ~/.pgpass (PGPASSFILE).")
        }
        if raw.contains("database \"") && raw.contains("does not exist") {
            return .invalidInput("The database \"\(database)\" does not exist on \(server).",
                                 hint: "Check the database name in the URL, or create it with createdb.")
        }
        if raw.contains("role \"") && raw.contains("does not exist") {
            return .invalidInput("The PostgreSQL role \"\(user)\" does not exist on \(server).",
                                 hint: "Check the user name in the URL.")
        }
        if raw.contains("Connection refused") || raw.contains("could not translate host name")
            || raw.contains("timeout expired") || raw.contains("No such file or directory")
            || raw.contains("Network is unreachable") || raw.contains("No route to host") {
            return .failed("Could not connect to PostgreSQL at \(server): \(detail)",
                           hint: "Is the server running at \(server)? Check the host and port in the URL.")
        }
        return .failed("Could not connect to PostgreSQL at \(server)/\(database): \(detail)")
    }

    /// Runs a statement with `parameters` sent out of line (so they need no quoting), or, without
    /// parameters, a script of several statements (the result is the last one's).
    @discardableResult
    func execute(_ sql: String, _ parameters: [String] = []) throws -> QueryResult {
        let copies = parameters.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let values = copies.map { UnsafePointer<CChar>($0) }
        let result = QueryResult(values.isEmpty
            ? PQexec(conn, sql)
            : PQexecParams(conn, sql, Int32(values.count), nil, values, nil, nil, 0))
        switch result.status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            return result
        default:
            throw QueryError(sqlState: result.sqlState,
                             message: result.errorMessage ?? String(cString: PQerrorMessage(conn)))
        }
    }

    /// The first column of every row; NULLs left out.
    func column(_ sql: String, _ parameters: [String] = []) throws -> [String] {
        let result = try execute(sql, parameters)
        return (0..<result.rowCount).compactMap { result.value(row: $0, column: 0) }
    }

    func scalar(_ sql: String, _ parameters: [String] = []) throws -> String? {
        try column(sql, parameters).first
    }

    /// Streams `copyOut` (a `COPY … TO STDOUT`) on this connection into `copyIn` (a
    /// `COPY … FROM STDIN`) on `destination`, one row at a time, so memory does not grow with the
    /// table. Returns the rows copied.
    @discardableResult
    func copy(_ copyOut: String, into destination: Connection, _ copyIn: String) throws -> Int64 {
        let out = QueryResult(PQexec(conn, copyOut))
        guard out.status == PGRES_COPY_OUT else {
            throw QueryError(sqlState: out.sqlState, message: out.errorMessage ?? String(cString: PQerrorMessage(conn)))
        }
        let into = QueryResult(PQexec(destination.conn, copyIn))
        var failure: QueryError?
        if into.status != PGRES_COPY_IN {
            failure = QueryError(sqlState: into.sqlState, message: into.errorMessage ?? String(cString: PQerrorMessage(destination.conn)))
        }
        var rows: Int64 = 0
        var buffer: UnsafeMutablePointer<CChar>?
        while true {
            let length = PQgetCopyData(conn, &buffer, 0)
            guard length > 0, let row = buffer else { break }
            if failure == nil && PQputCopyData(destination.conn, row, length) != 1 {
                failure = QueryError(sqlState: nil, message: String(cString: PQerrorMessage(destination.conn)))
            }
            PQfreemem(row)
            buffer = nil
            rows += 1
        }
        // The source's outcome first: a COPY cut short must not be committed as if whole.
        let sourceFailure = Self.drain(conn)
        if into.status == PGRES_COPY_IN {
            _ = PQputCopyEnd(destination.conn, sourceFailure.map { $0.message } ?? failure?.message)
            if let error = Self.drain(destination.conn), failure == nil { failure = error }
        }
        if let error = sourceFailure ?? failure { throw error }
        return rows
    }

    /// Runs `sqlA` on `a` and `sqlB` on `b` at the same time (both sent before either is
    /// awaited), so that the server works on both at once. One statement each, no parameters.
    static func concurrently(_ a: Connection, _ sqlA: String, _ b: Connection, _ sqlB: String) throws -> (QueryResult, QueryResult) {
        try a.send(sqlA)
        do {
            try b.send(sqlB)
        } catch {
            _ = try? a.awaitResult()
            throw error
        }
        let x = Result { try a.awaitResult() }
        let y = Result { try b.awaitResult() }
        return (try x.get(), try y.get())
    }

    private func send(_ sql: String) throws {
        guard PQsendQuery(conn, sql) == 1 else {
            throw QueryError(sqlState: nil, message: String(cString: PQerrorMessage(conn)))
        }
    }

    /// The result of the query `send` started: the last of its results, or its first error.
    private func awaitResult() throws -> QueryResult {
        var last: QueryResult?
        var failure: QueryError?
        while let raw = PQgetResult(conn) {
            let result = QueryResult(raw)
            switch result.status {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK: last = result
            default:
                if failure == nil {
                    failure = QueryError(sqlState: result.sqlState, message: result.errorMessage ?? String(cString: PQerrorMessage(conn)))
                }
            }
        }
        if let failure { throw failure }
        guard let last else { throw QueryError(sqlState: nil, message: String(cString: PQerrorMessage(conn))) }
        return last
    }

    /// Starts `COPY (query) TO STDOUT (FORMAT binary)`; `nextCopyRow` then reads it row by row.
    func startCopyOut(_ query: String) throws {
        let result = QueryResult(PQexec(conn, "COPY (\(query)) TO STDOUT (FORMAT binary)"))
        guard result.status == PGRES_COPY_OUT else {
            throw QueryError(sqlState: result.sqlState, message: result.errorMessage ?? String(cString: PQerrorMessage(conn)))
        }
    }

    /// A CopyData message `nextCopyMessage` gave.
    static func freeCopyMessage(_ message: UnsafeMutablePointer<CChar>) {
        PQfreemem(message)
    }

    /// The next CopyData message of a COPY OUT (libpq's buffer: give it back with `freeCopyMessage`), or nil
    /// at its end, after which the COPY's outcome has been read (and thrown if it failed).
    func nextCopyMessage() throws -> (UnsafeMutablePointer<CChar>, Int)? {
        var buffer: UnsafeMutablePointer<CChar>?
        let length = PQgetCopyData(conn, &buffer, 0)
        if length > 0, let buffer { return (buffer, Int(length)) }
        if let buffer { PQfreemem(buffer) }
        if let error = Self.drain(conn) { throw error }
        if length == -2 { throw QueryError(sqlState: nil, message: String(cString: PQerrorMessage(conn))) }
        return nil
    }

    /// Reads the results left after a COPY; the first error among them.
    private static func drain(_ conn: OpaquePointer) -> QueryError? {
        var first: QueryError?
        while let raw = PQgetResult(conn) {
            let result = QueryResult(raw)
            if first == nil && result.status != PGRES_COMMAND_OK && result.status != PGRES_TUPLES_OK {
                first = QueryError(sqlState: result.sqlState, message: result.errorMessage ?? String(cString: PQerrorMessage(conn)))
            }
        }
        return first
    }

    var serverVersionNumber: Int { Int(PQserverVersion(conn)) }
    var backendPID: Int32 { PQbackendPID(conn) }
}

/// A failed statement, with the server's SQLSTATE so callers can tell e.g. "in use" from others.
struct QueryError: Error {
    let sqlState: String?
    let message: String

    func migsnap(_ context: String) -> MigsnapError {
        .failed("\(context): \(message)")
    }
}

/// One PGresult, cleared when the object goes away.
final class QueryResult {
    private let result: OpaquePointer?

    init(_ result: OpaquePointer?) {
        self.result = result
    }

    deinit {
        PQclear(result)
    }

    var status: ExecStatusType { result.map(PQresultStatus) ?? PGRES_FATAL_ERROR }
    var rowCount: Int { result.map { Int(PQntuples($0)) } ?? 0 }
    var columnCount: Int { result.map { Int(PQnfields($0)) } ?? 0 }

    func value(row: Int, column: Int) -> String? {
        guard let result, PQgetisnull(result, Int32(row), Int32(column)) == 0 else { return nil }
        return String(cString: PQgetvalue(result, Int32(row), Int32(column)))
    }

    /// The value as libpq holds it, valid while this result lives; nil for NULL.
    func cString(row: Int, column: Int) -> UnsafePointer<CChar>? {
        guard let result, PQgetisnull(result, Int32(row), Int32(column)) == 0 else { return nil }
        return UnsafePointer(PQgetvalue(result, Int32(row), Int32(column)))
    }

    // libpq's PG_DIAG_* are character-literal macros, which Swift does not import.
    var sqlState: String? {
        guard let result, let p = PQresultErrorField(result, Int32(UInt8(ascii: "C"))) else { return nil }
        return String(cString: p)
    }

    var errorMessage: String? {
        guard let result, let p = PQresultErrorField(result, Int32(UInt8(ascii: "M"))) else { return nil }
        return String(cString: p)
    }
}

/// An identifier as SQL text: always double-quoted, so any name is safe.
func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

func qualified(_ table: VersionTable) -> String {
    (table.schema.map { quoteIdentifier($0) + "." } ?? "") + quoteIdentifier(table.name)
}
