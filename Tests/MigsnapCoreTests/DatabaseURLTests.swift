import Foundation
import Testing
@testable import MigsnapCore

@Suite("Database URLs")
struct DatabaseURLTests {
    @Test("SQLite forms", arguments: [
        ("sqlite:///app.db", "/work/proj/app.db"),
        ("sqlite:///./data/app.db", "/work/proj/data/app.db"),
        ("sqlite:///../app.db", "/work/app.db"),
        ("sqlite:////var/lib/app.db", "/var/lib/app.db"),
        ("sqlite+pysqlite:///app.db", "/work/proj/app.db"),
        ("sqlite+aiosqlite:////abs/app.db", "/abs/app.db"),
        ("SQLITE:///app.db", "/work/proj/app.db"),
        ("sqlite:///app.db?check_same_thread=false", "/work/proj/app.db"),
        ("sqlite:///my%20app.db", "/work/proj/my app.db"),
    ])
    func sqlite(raw: String, path: String) throws {
        #expect(try DatabaseURL.parse(raw, workingDirectory: "/work/proj") == .sqlite(path: path))
    }

    @Test("PostgreSQL forms", arguments: [
        ("postgresql://u:p@db.example:5433/app", PostgresTarget(user: "u", password: "p", host: "db.example", port: 5433, database: "app")),
        ("postgres://u@db/app", PostgresTarget(user: "u", host: "db", database: "app")),
        ("postgresql+psycopg2://u:p%40ss%2Fw%25rd@h/app", PostgresTarget(user: "u", password: "p@ss/w%rd", host: "h", database: "app")),
        ("postgresql+psycopg://u:p@h/app", PostgresTarget(user: "u", password: "p", host: "h", database: "app")),
        ("postgresql+asyncpg://u:p@h/app?ssl=require", PostgresTarget(user: "u", password: "p", host: "h", database: "app", sslmode: "require")),
        ("postgresql+asyncpg://u:p@h/app?ssl=true", PostgresTarget(user: "u", password: "p", host: "h", database: "app", sslmode: "require")),
        ("postgresql://u:p@h/app?sslmode=verify-full", PostgresTarget(user: "u", password: "p", host: "h", database: "app", sslmode: "verify-full")),
        ("postgresql://u@/app?host=/var/run/postgresql", PostgresTarget(user: "u", host: "/var/run/postgresql", database: "app")),
        ("postgresql://u:p@[::1]:6543/app", PostgresTarget(user: "u", password: "p", host: "::1", port: 6543, database: "app")),
        ("postgresql://u:p@[2001:db8::5]/app", PostgresTarget(user: "u", password: "p", host: "2001:db8::5", database: "app")),
        ("postgresql:///app", PostgresTarget(database: "app")),
        ("postgresql://u:p@h/app?connect_timeout=5", PostgresTarget(user: "u", password: "p", host: "h", database: "app")),
        ("postgresql://u:p@ss@h/app", PostgresTarget(user: "u", password: "p@ss", host: "h", database: "app")),
        // SQLAlchemy takes an unencoded '/' in a password too.
        ("postgresql://app:Tr0ub/ador@db.example.com:5432/shop",
         PostgresTarget(user: "app", password: "Tr0ub/ador", host: "db.example.com", port: 5432, database: "shop")),
        ("postgresql://app:a/b@c@h/db", PostgresTarget(user: "app", password: "a/b@c", host: "h", database: "db")),
        ("postgresql://h/db@archive", PostgresTarget(host: "h", database: "db@archive")),
    ])
    func postgres(raw: String, target: PostgresTarget) throws {
        #expect(try DatabaseURL.parse(raw) == .postgresql(target))
    }

    @Test("Malformed or unsupported URLs are bad input naming the problem", arguments: [
        ("app.db", "no scheme"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:app.db", "no scheme"),
        ("sqlite://app.db", "three slashes"),
        ("mysql://u:p@h/db", "not supported"),
        ("sqlite+pysqlcipher:///x.db", "driver"),
        ("postgresql+nope://h/db", "driver"),
        ("postgresql://u:p@h:99999/db", "port"),
        ("postgresql://u:p@h:abc/db", "port"),
        ("postgresql://u:p@[::1/db", "IPv6"),
        ("postgresql://u:p@h/db?sslmode=sometimes", "sslmode"),
        ("postgresql://a,b/db", "several hosts"),
    ])
    func malformed(raw: String, fragment: String) {
        #expect {
            try DatabaseURL.parse(raw, workingDirectory: "/w")
        } throws: { error in
            guard case .invalidInput(let message, _) = error as? MigsnapError else { return false }
            return message.contains(fragment)
        }
    }

    @Test("No password in the redacted form or in any error", arguments: [
        "postgresql://admin:hunter2@db:5432/app",
        "postgresql://admin:hunter2@db:99999/app",
        "postgresql://admin:hunter2@db/app?sslmode=nope",
        "postgresql://admin@db/app?password=hunter2&sslmode=nope",
        "oracle://admin:hunter2@db/app",
        "postgresql://admin:hun/ter2hunter2@db:99999/app",
        "postgresql://admin:hunter2/x@db/app?sslmode=nope",
        "postgresql://admin@db/app?password=a&password=hunter2&sslmode=nope",
        "postgresql://admin@db:99999/app?password=a&password=hunter2",
        "admin:hunter2@db/app",
        "postgresql://admin:hunter2\n@db/app?sslmode=nope",
    ])
    func passwordNeverShown(raw: String) {
        #expect(!DatabaseURL.redact(raw).contains("hunter2"))
        do {
            let url = try DatabaseURL.parse(raw)
            #expect(!url.redacted.contains("hunter2"))
        } catch let error as MigsnapError {
            #expect(!error.message.contains("hunter2"))
            #expect(error.message.contains("***") || !raw.contains(":hunter2@") || !raw.contains("://"))
        } catch {
            Issue.record("unexpected error type \(error)")
        }
    }

    @Test("Echoed user text is one line and short")
    func userTextIsShortened() throws {
        let long = String(repeating: "x", count: 100_000)
        #expect(UserText.line(long).count < 200)
        #expect(UserText.line("a\nb\u{1B}[31m") == "a\\nb\\u{1b}[31m")
        let message = UserText.message("No snapshot \(long)\nhere: try again")
        #expect(!message.contains("\n"))
        #expect(message.count < 400)
        #expect(message.hasPrefix("No snapshot x") && message.hasSuffix("here: try again"))
        #expect {
            try DatabaseURL.parse("postgresql://u@h/db?sslmode=\(long)")
        } throws: { error in
            ((error as? MigsnapError)?.message.count ?? .max) < 400
        }
    }

    @Test func postgresEnvironmentCarriesThePassword() throws {
        guard case .postgresql(let t) = try DatabaseURL.parse("postgresql://u:s%23cret@h:5433/app?sslmode=require") else {
            Issue.record("not postgres")
            return
        }
        #expect(t.environment == ["PGHOST": "h", "PGPORT": "5433", "PGUSER": "u", "PGPASSWORD": "s#cret", "PGDATABASE": "app", "PGSSLMODE": "require"])
        #expect(t.redacted == "u@h:5433/app")
    }
}
