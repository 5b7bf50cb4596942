import Foundation
import Testing

/// Finds what the end-to-end tests run: the built binary, the repository, the Python venv.
enum Paths {
    static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var binary: String {
        if let bin = ProcessInfo.processInfo.environment["MIGSNAP_BIN"], !bin.isEmpty { return bin }
        return repository + "/.build/debug/migsnap"
    }

    /// The venv with Alembic; a missing one fails the test loudly instead of skipping it.
    static func venv() throws -> String {
        let venv = ProcessInfo.processInfo.environment["MIGSNAP_TEST_VENV"] ?? repository + "/.venv"
        try #require(FileManager.default.isExecutableFile(atPath: venv + "/bin/alembic"),
                     "No Alembic at \(venv)/bin/alembic: run the tests through scripts/test, which installs it.")
        return venv
    }
}

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + stderr }
}

/// Runs a program to completion and captures its output. stdin is /dev/null: never a TTY.
@discardableResult
func run(_ executable: String, _ arguments: [String], in directory: String, environment: [String: String] = [:]) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "DATABASE_URL")
    env.removeValue(forKey: "MIGSNAP_STORE")
    env.removeValue(forKey: "ALEMBIC_CONFIG")
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("out-\(UUID().uuidString)")
    let err = FileManager.default.temporaryDirectory.appendingPathComponent("err-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    FileManager.default.createFile(atPath: err.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: out)
        try? FileManager.default.removeItem(at: err)
    }
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return RunResult(status: process.terminationStatus,
                     stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                     stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
}

/// A copy of the example Alembic project in a temporary directory, with helpers to drive it.
final class Project {
    let dir: String
    let venv: String
    var environment: [String: String]

    init(template: String = "shop") throws {
        venv = try Paths.venv()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-e2e-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: Paths.repository + "/examples/\(template)", toPath: dir)
        let binDir = (Paths.binary as NSString).deletingLastPathComponent
        environment = ["PATH": venv + "/bin:" + binDir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    var database: String { dir + "/shop.db" }
    var store: String { dir + "/.migsnap" }

    @discardableResult
    func migsnap(_ arguments: String..., env: [String: String] = [:]) throws -> RunResult {
        try migsnap(arguments, env: env)
    }

    @discardableResult
    func migsnap(_ arguments: [String], env: [String: String] = [:]) throws -> RunResult {
        try run(Paths.binary, arguments, in: dir, environment: environment.merging(env) { $1 })
    }

    /// Runs a command that must succeed; its output is attached to the failure otherwise.
    @discardableResult
    func ok(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> RunResult {
        let r = try migsnap(arguments)
        #expect(r.status == 0, "migsnap \(arguments.joined(separator: " ")) exited \(r.status): \(r.output)", sourceLocation: sourceLocation)
        return r
    }

    @discardableResult
    func alembic(_ arguments: String...) throws -> RunResult {
        let r = try run(venv + "/bin/alembic", arguments, in: dir, environment: environment)
        #expect(r.status == 0, "alembic \(arguments.joined(separator: " ")) exited \(r.status): \(r.output)")
        return r
    }

    func python(_ arguments: String...) throws {
        let r = try run(venv + "/bin/python", arguments, in: dir, environment: environment)
        #expect(r.status == 0, "python \(arguments.joined(separator: " ")): \(r.output)")
    }

    func sqlite(_ sql: String, database: String? = nil) throws -> String {
        let r = try run("/usr/bin/sqlite3", [database ?? self.database, sql], in: dir)
        #expect(r.status == 0, "sqlite3: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The full logical content: `.dump` is schema and rows, comparable across page layouts.
    func dump(_ database: String? = nil) throws -> String {
        try sqlite(".dump", database: database)
    }

    /// The example at revision 0002 with application data in it.
    func seeded() throws -> Project {
        try alembic("upgrade", "0002")
        try python("seed.py", database)
        return self
    }

    /// A snapshot of the database as it is, then Alembic's own upgrade to head past it: the id,
    /// and the dump that a refused or failed restore must leave untouched.
    func snapshotThenMigrate() throws -> (id: String, after: String) {
        let id = try ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try alembic("upgrade", "head")
        return (id, try dump())
    }

    func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    func manifests() throws -> [[String: Any]] {
        let r = try migsnap("list", "--json")
        #expect(r.status == 0)
        return try #require(try json(r.stdout) as? [[String: Any]])
    }
}

func fileBytes(_ path: String) -> Data? {
    FileManager.default.contents(atPath: path)
}
