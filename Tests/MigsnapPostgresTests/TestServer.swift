import Foundation
import MigsnapCore
@testable import MigsnapPostgres
import Testing

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
}

/// The private server started by scripts/pg-cluster; the tests never run without one.
enum TestServer {
    static func target(_ variable: String = "MIGSNAP_TEST_PG_URL") throws -> PostgresTarget {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw TestSetupError(description: """
                \(variable) is unset. The PostgreSQL tests need a real server: run
                eval "$(scripts/pg-cluster start /tmp/migsnap-pg)" && swift test --filter MigsnapPostgresTests
                """)
        }
        guard case .postgresql(let target) = try DatabaseURL.parse(url) else {
            throw TestSetupError(description: "\(variable) is not a postgresql:// URL")
        }
        return target
    }

    /// A PostgreSQL client program (psql, pg_dump) of the test server's installation.
    static func tool(_ name: String) throws -> String {
        guard let dir = ProcessInfo.processInfo.environment["MIGSNAP_TEST_PG_BINDIR"], !dir.isEmpty else {
            throw TestSetupError(description: "MIGSNAP_TEST_PG_BINDIR is unset; start the server with scripts/pg-cluster")
        }
        return dir + "/" + name
    }
}

/// A database of its own for one test, dropped when the test ends.
final class TestDatabase {
    let server: PostgresTarget
    let name: String
    let target: PostgresTarget
    let directory: URL

    init(server variable: String = "MIGSNAP_TEST_PG_URL") throws {
        server = try TestServer.target(variable)
        name = "mt_" + UUID().uuidString.prefix(8).lowercased()
        target = server.with(database: name)
        try Connection(server).execute("CREATE DATABASE \(quoteIdentifier(name))")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-pgtest-\(name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    deinit {
        _ = try? Connection(server).execute("DROP DATABASE IF EXISTS \(quoteIdentifier(name)) WITH (FORCE)")
        try? FileManager.default.removeItem(at: directory)
    }

    var engine: PostgresEngine { PostgresEngine(target: target) }

    func payload(_ name: String = "snap") -> URL { directory.appendingPathComponent("\(name).pgdump") }

    @discardableResult
    func sql(_ script: String) throws -> [String] {
        let result = try Connection(target).execute(script)
        return (0..<result.rowCount).map { result.value(row: $0, column: 0) ?? "NULL" }
    }

    /// Runs a client program against this database; the password travels in the environment.
    func runTool(_ name: String, _ arguments: [String]) throws -> String {
        let output = try ChildProcess.run(TestServer.tool(name), arguments,
                                          environment: target.environment, captureOutput: true)
        guard output.status == 0 else { throw TestSetupError(description: "\(name) failed: \(output.stderr)") }
        return String(decoding: output.stdout, as: UTF8.self)
    }

    /// Everything a restore must bring back: DDL, every table's rows, every sequence's position.
    func state() throws -> DatabaseState {
        let schema = try runTool("pg_dump", ["--schema-only", "--no-password"])
            .split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
        let connection = try Connection(target)
        let tables = try connection.execute("""
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%'
            """)
        var contents: [String: String] = [:]
        for row in 0..<tables.rowCount {
            let table = tables.value(row: row, column: 0)!
            let sql = tables.value(row: row, column: 1) == "S"
                ? "SELECT last_value::text || '/' || is_called::text FROM \(table)"
                : "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) || '/' || count(*) FROM \(table) t"
            contents[table] = try connection.scalar(sql)
        }
        return DatabaseState(schema: schema, contents: contents)
    }
}

struct DatabaseState: Equatable {
    let schema: String
    /// "schema.table" → md5 of its rows and their count; sequences → last_value/is_called.
    let contents: [String: String]
}
