import CSQLite
import Foundation

/// SQLite's integrity check of a staged image, on several cores.
///
/// `PRAGMA integrity_check` runs on one core and is most of a restore's time once decompression is
/// parallel. It does two kinds of work: walking every b-tree and accounting for every page of the
/// file (which `PRAGMA quick_check` does too), and checking each table's rows against its indexes
/// and constraints (which `PRAGMA integrity_check(TABLE)`, SQLite 3.33 and later, does for one
/// table). Run side by side, `quick_check` and one `integrity_check(TABLE)` per table check what
/// the single pragma checks, and the wall time is that of the largest part.
enum IntegrityCheck {
    /// The problems SQLite reports, or `["ok"]`. `connection` is open on `path`; the parts run on
    /// connections of their own, read-only, so nothing writes the image meanwhile.
    static func problems(path: String, connection: Connection, threads: Int) throws -> [String] {
        let tables = threads > 1 && sqlite3_libversion_number() >= 3_033_000
            ? try connection.rows("""
                SELECT name FROM sqlite_master WHERE type = 'table' AND rootpage > 0 ORDER BY name
                """).compactMap { $0.first ?? nil }
            : []
        guard tables.count > 0 else {
            return try connection.rows("PRAGMA integrity_check").compactMap { $0.first ?? nil }
        }
        let parts = ["PRAGMA quick_check"] + tables.map { "PRAGMA integrity_check(\(SQLiteEngine.quote($0)))" }
        let results = Results(count: parts.count)
        let workers = min(threads, parts.count)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let part = results.next() {
                do {
                    let reader = try Connection(path: path, mode: .readOnly)
                    // As for the single pragma, a bigger page cache makes the check faster; the 8 MiB
                    // are shared out, so that memory stays flat in the number of threads.
                    try reader.execute("PRAGMA cache_size = -\(max(2048, 8192 / workers))")
                    results.store(part, .success(try reader.rows(parts[part]).compactMap { $0.first ?? nil }))
                } catch {
                    results.store(part, .failure(error))
                }
            }
        }
        var problems: [String] = []
        for result in results.all() {
            problems += try result.get().filter { $0 != "ok" }
        }
        return problems.isEmpty ? ["ok"] : problems
    }

    /// The parts not yet started and what each finished one found; shared by the workers.
    private final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var started = 0
        private var results: [Result<[String], Error>?]

        init(count: Int) {
            results = Array(repeating: nil, count: count)
        }

        func next() -> Int? {
            lock.withLock {
                guard started < results.count else { return nil }
                started += 1
                return started - 1
            }
        }

        func store(_ part: Int, _ result: Result<[String], Error>) {
            lock.withLock { results[part] = result }
        }

        func all() -> [Result<[String], Error>] {
            lock.withLock { results.map { $0! } }
        }
    }
}
