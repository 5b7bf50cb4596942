import Foundation
import MigsnapCore
import MigsnapSQLite
import Testing

/// A fresh directory, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-sqlite-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}

struct CommandFailed: Error, CustomStringConvertible {
    let description: String
}

/// Runs SQL through the sqlite3 command-line shell, as an operator would, and returns its output.
@discardableResult
func sqlite(_ database: String, _ sql: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    process.arguments = ["-batch", "-bail", database]
    let input = Pipe(), output = Pipe(), errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    input.fileHandleForWriting.write(Data((".timeout 5000\n" + sql + "\n").utf8))
    try input.fileHandleForWriting.close()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let problems = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailed(description: "sqlite3 \(database) failed: \(problems)")
    }
    return text
}

func dump(_ database: String) throws -> String {
    try sqlite(database, ".dump")
}

/// A database with the kinds of things real ones hold: several tables, an index, a view, a trigger,
/// text, blobs, NULLs, and Alembic's version table.
func makeDatabase(_ path: String, revision: String = "abc123", journalMode: String = "delete",
                  pageSize: Int = 4096, rows: Int = 2000) throws {
    try sqlite(path, """
        PRAGMA page_size = \(pageSize);
        PRAGMA journal_mode = \(journalMode);
        CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('\(revision)');
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, created TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), total REAL,
                             note TEXT, payload BLOB);
        CREATE INDEX orders_user ON orders(user_id);
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 500;
        CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
        CREATE TRIGGER orders_audit AFTER DELETE ON orders BEGIN INSERT INTO audit(what) VALUES ('deleted ' || old.id); END;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows))
        INSERT INTO users SELECT i, 'user' || i || '@example.com', 'Name ' || i, datetime(1700000000 + i, 'unixepoch') FROM n;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows * 2))
        INSERT INTO orders SELECT i, (i % \(rows)) + 1, (i * 37) % 1000 + 0.25,
               CASE WHEN i % 7 = 0 THEN NULL ELSE 'note ''quoted'' ' || i END, randomblob(i % 50) FROM n;
        """)
}

func fileBytes(_ path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
}

func attributes(_ path: String) throws -> (permissions: Int, inode: UInt64) {
    let a = try FileManager.default.attributesOfItem(atPath: path)
    return ((a[.posixPermissions] as! NSNumber).intValue, (a[.systemFileNumber] as! NSNumber).uint64Value)
}

/// A flag and a list shared between a test and the thread it started.
final class Shared<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withValue<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Runs `body` on its own thread until `stop()`; `stop()` waits for it to end.
final class Worker: @unchecked Sendable {
    private let stopping = Shared(false)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable (_ shouldStop: () -> Bool) -> Void) {
        let stopping = self.stopping
        let done = self.done
        Thread.detachNewThread {
            body { stopping.withValue { $0 } }
            done.signal()
        }
    }

    func stop() {
        stopping.withValue { $0 = true }
        done.wait()
    }
}

extension MigsnapError {
    var isVerificationFailure: Bool {
        if case .verificationFailed = self { return true }
        return false
    }

    var isInvalidInput: Bool {
        if case .invalidInput = self { return true }
        return false
    }

    var isFailure: Bool {
        if case .failed = self { return true }
        return false
    }
}
