import Foundation

/// A PostgreSQL server and database, decoded from a SQLAlchemy URL. The password is held here
/// only to be handed to libpq and child processes through their environment.
public struct PostgresTarget: Sendable, Equatable {
    public var user: String?
    public var password: String?
    /// A host name, an IP address (IPv6 without brackets), or a socket directory; nil for libpq's default.
    public var host: String?
    public var port: Int?
    public var database: String?
    public var sslmode: String?

    public init(user: String? = nil, password: String? = nil, host: String? = nil, port: Int? = nil,
                database: String? = nil, sslmode: String? = nil) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.sslmode = sslmode
    }

    /// libpq connection keywords (for PQconnectdbParams), password included; never print them.
    public var connectionParameters: [(String, String)] {
        var p: [(String, String)] = []
        if let host { p.append(("host", host)) }
        if let port { p.append(("port", String(port))) }
        if let user { p.append(("user", user)) }
        if let password { p.append(("password", password)) }
        if let database { p.append(("dbname", database)) }
        if let sslmode { p.append(("sslmode", sslmode)) }
        p.append(("application_name", "migsnap"))
        return p
    }

    /// The same target with another database name (for scratch databases and `--to`).
    public func with(database name: String) -> PostgresTarget {
        var copy = self
        copy.database = name
        return copy
    }

    /// The environment that points libpq-based child processes (pg_dump, pg_restore, psql) here.
    public var environment: [String: String] {
        var env: [String: String] = [:]
        if let host { env["PGHOST"] = host }
        if let port { env["PGPORT"] = String(port) }
        if let user { env["PGUSER"] = user }
        if let password { env["PGPASSWORD"] = password }
        if let database { env["PGDATABASE"] = database }
        if let sslmode { env["PGSSLMODE"] = sslmode }
        return env
    }

    /// `user@host:port/dbname`, with what is unknown left out. Never the password.
    public var redacted: String {
        var s = ""
        if let user { s += "\(user)@" }
        if let host {
            s += host.contains(":") ? "[\(host)]" : host
        } else {
            s += "localhost"
        }
        s += ":\(port ?? 5432)"
        s += "/\(database ?? user ?? "")"
        return s
    }
}

public enum DatabaseURL: Sendable, Equatable {
    /// An absolute path to a SQLite file.
    case sqlite(path: String)
    case postgresql(PostgresTarget)

    public var engine: EngineKind {
        switch self {
        case .sqlite: return .sqlite
        case .postgresql: return .postgresql
        }
    }

    /// For manifests, logs and errors: never a password.
    public var redacted: String {
        switch self {
        case .sqlite(let path): return path
        case .postgresql(let t): return t.redacted
        }
    }

    /// Parses a SQLAlchemy URL. Relative SQLite paths are resolved against `workingDirectory`,
    /// as SQLAlchemy resolves them against the process's working directory.
    public static func parse(_ raw: String, workingDirectory: String = FileManager.default.currentDirectoryPath) throws -> DatabaseURL {
        let text = raw.trimmingCharacters(in: .whitespaces)
        guard let schemeEnd = text.range(of: "://") else {
            throw bad(text, "it has no scheme (expected e.g. sqlite:///app.db or postgresql://user@host/db)")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let rest = String(text[schemeEnd.upperBound...])
        let dialect = scheme.split(separator: "+", maxSplits: 1).first.map(String.init) ?? scheme
        let driver = scheme.contains("+") ? String(scheme.split(separator: "+", maxSplits: 1)[1]) : nil
        switch dialect {
        case "sqlite":
            if let driver, !["pysqlite", "aiosqlite"].contains(driver) {
                throw bad(text, "the SQLite driver \(UserText.quoted(driver, limit: 40)) is not supported (use sqlite://, sqlite+pysqlite:// or sqlite+aiosqlite://)")
            }
            return try parseSQLite(rest, original: text, workingDirectory: workingDirectory)
        case "postgresql", "postgres":
            if let driver, !["psycopg2", "psycopg", "asyncpg", "pg8000", "psycopg2cffi"].contains(driver) {
                throw bad(text, "the PostgreSQL driver \(UserText.quoted(driver, limit: 40)) is not known")
            }
            return .postgresql(try parsePostgres(rest, original: text))
        case "":
            throw bad(text, "the scheme is empty")
        default:
            throw MigsnapError.invalidInput(
                "The database engine \(UserText.quoted(dialect, limit: 40)) in \(redact(text)) is not supported.",
                hint: "migsnap works with SQLite (sqlite:///file.db) and PostgreSQL (postgresql://…).")
        }
    }

    private static func parseSQLite(_ rest: String, original: String, workingDirectory: String) throws -> DatabaseURL {
        // sqlite:// + "/" + path: the path is everything after the third slash, query dropped.
        var body = rest
        if let q = body.firstIndex(of: "?") { body = String(body[..<q]) }
        guard body.hasPrefix("/") else {
            if body.isEmpty {
                throw bad(original, "it names no file: an in-memory database cannot be snapshotted")
            }
            throw bad(original, "a SQLite URL has three slashes before a relative path (sqlite:///app.db) and four before an absolute one (sqlite:////var/app.db)")
        }
        let path = String(body.dropFirst())
        if path.isEmpty || path == ":memory:" || path.hasPrefix("file::memory:") {
            throw bad(original, "it names an in-memory database, which cannot be snapshotted")
        }
        let decoded = path.removingPercentEncoding ?? path
        let absolute = decoded.hasPrefix("/")
            ? decoded
            : URL(fileURLWithPath: workingDirectory).appendingPathComponent(decoded).path
        return .sqlite(path: URL(fileURLWithPath: absolute).standardizedFileURL.path)
    }

    private static func parsePostgres(_ rest: String, original: String) throws -> PostgresTarget {
        var target = PostgresTarget()
        var body = rest
        var query = ""
        if let q = body.firstIndex(of: "?") {
            query = String(body[body.index(after: q)...])
            body = String(body[..<q])
        }
        // Credentials end at the last '@': SQLAlchemy takes an unencoded '@' or '/' in a password.
        if let (credentials, afterCredentials) = splitCredentials(body) {
            body = afterCredentials
            if let colon = credentials.firstIndex(of: ":") {
                target.user = try decode(String(credentials[..<colon]), what: "user name", original)
                target.password = try decode(String(credentials[credentials.index(after: colon)...]), what: "password", original)
            } else {
                target.user = try decode(credentials, what: "user name", original)
            }
            if target.user?.isEmpty == true { target.user = nil }
        }
        var authority = body
        var path = ""
        if let slash = body.firstIndex(of: "/") {
            authority = String(body[..<slash])
            path = String(body[body.index(after: slash)...])
        }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw bad(original, "an IPv6 host opened with '[' is not closed with ']'")
            }
            target.host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                target.port = try port(String(after.dropFirst()), original)
            } else if !after.isEmpty {
                throw bad(original, "unexpected text after the IPv6 host")
            }
        } else if !authority.isEmpty {
            if authority.contains(",") {
                throw bad(original, "several hosts in one URL are not supported")
            }
            if let colon = authority.lastIndex(of: ":") {
                target.host = String(authority[..<colon])
                target.port = try port(String(authority[authority.index(after: colon)...]), original)
            } else {
                target.host = authority
            }
            if target.host?.isEmpty == true { target.host = nil }
        }
        if !path.isEmpty {
            target.database = try decode(path, what: "database name", original)
        }
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let key = try decode(parts[0], what: "query key", original)
            let value = parts.count > 1 ? try decode(parts[1], what: "query value", original) : ""
            switch key {
            case "host":
                target.host = value
            case "port":
                target.port = try port(value, original)
            case "user":
                target.user = value
            case "password":
                target.password = value
            case "dbname", "database":
                target.database = value
            case "sslmode":
                target.sslmode = try sslmode(value, original)
            case "ssl":
                // asyncpg spells it ?ssl=…; true/false are its booleans.
                switch value.lowercased() {
                case "true", "1": target.sslmode = "require"
                case "false", "0": target.sslmode = "disable"
                default: target.sslmode = try sslmode(value, original)
                }
            default:
                // Driver options (connect_timeout, application_name, …) do not change where the data is.
                continue
            }
        }
        return target
    }

    private static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    private static func sslmode(_ value: String, _ original: String) throws -> String {
        guard sslModes.contains(value) else {
            throw bad(original, "sslmode \(UserText.quoted(value, limit: 40)) is not one of \(sslModes.joined(separator: ", "))")
        }
        return value
    }

    private static func port(_ text: String, _ original: String) throws -> Int? {
        if text.isEmpty { return nil }
        guard let p = Int(text), (1...65535).contains(p) else {
            // A port that is not digits may be a misplaced password: not echoed.
            let shown = text.allSatisfy(\.isASCII) && text.allSatisfy(\.isNumber) ? "'\(UserText.line(text, limit: 20))' " : ""
            throw bad(original, "the port \(shown)is not a number from 1 to 65535")
        }
        return p
    }

    private static func decode(_ text: String, what: String, _ original: String) throws -> String {
        guard let d = text.removingPercentEncoding else {
            throw bad(original, "the \(what) has a malformed percent-encoding")
        }
        return d
    }

    private static func bad(_ original: String, _ why: String) -> MigsnapError {
        .invalidInput("The database URL \(redact(original)) is malformed: \(why).",
                      hint: "Check --url, DATABASE_URL or sqlalchemy.url in the config file.")
    }

    /// `user:password` and what follows the '@', when `text` (after the scheme, before any query)
    /// has credentials. The user name (SQLAlchemy's `[^:/]*`) cannot hold '/', so an '@' after
    /// one is part of the path; the password runs to the last '@'.
    static func splitCredentials(_ text: String) -> (credentials: String, rest: String)? {
        guard let at = text.lastIndex(of: "@") else { return nil }
        let credentials = String(text[..<at])
        let user = credentials.prefix { $0 != ":" }
        guard !user.contains("/") else { return nil }
        return (credentials, String(text[text.index(after: at)...]))
    }

    /// A URL-shaped string as messages may show it when it might not parse: no credentials (they
    /// become `***@`), no query (it may hold a password; it becomes `?…`), on one line and short.
    /// When in doubt it shows less: text without a scheme that holds '@' is not shown at all.
    public static func redact(_ text: String) -> String {
        var body = text
        var query = ""
        if let q = body.firstIndex(of: "?") {
            query = "?…"
            body = String(body[..<q])
        }
        guard let schemeEnd = body.range(of: "://") else {
            return body.contains("@") ? "(a URL that is not shown: it may hold a password)" : UserText.quoted(body + query)
        }
        let scheme = String(body[..<schemeEnd.upperBound])
        var rest = String(body[schemeEnd.upperBound...])
        if let (_, afterCredentials) = splitCredentials(rest) {
            rest = "***@" + afterCredentials
        }
        return UserText.quoted(scheme + rest + query)
    }
}

extension DatabaseURL {
    /// A SQLite file that does not exist yet is a first deploy: an empty database at base. It is
    /// created empty (a 0-byte file is an empty SQLite database) so that the snapshot before the
    /// first step can bring it back with `rollback base`. Returns the path when it created one.
    public func createForFirstDeploy() throws -> String? {
        guard case .sqlite(let path) = self, !FileManager.default.fileExists(atPath: path) else { return nil }
        guard FileManager.default.createFile(atPath: path, contents: Data()) else {
            throw MigsnapError.failed("Cannot create \(path).", hint: "Check that its directory exists and is writable.")
        }
        return path
    }
}
