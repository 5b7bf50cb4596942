import Foundation
import MigsnapCore

/// pg_dump and pg_restore from one PostgreSQL installation. pg_dump refuses servers newer than
/// itself, so the pair is chosen to be at least as new as the server before anything runs.
struct ClientTools {
    let pgDump: String
    let pgRestore: String
    let major: Int

    /// `serverVersion` is libpq's number (150018); nil picks the newest installation (reading a file needs no server).
    static func find(serverVersion: Int?) throws -> ClientTools {
        let serverMajor = serverVersion.map { $0 >= 100_000 ? $0 / 10_000 : $0 / 100 }
        // Each candidate runs `pg_dump --version`: a directory reached twice (/bin and /usr/bin)
        // is asked once, and for a server the first suitable one ends the search.
        var seen = Set<String>()
        var found: [ClientTools] = []
        for directory in candidateDirectories() {
            let real = URL(fileURLWithPath: directory + "/pg_dump").resolvingSymlinksInPath().path
            guard seen.insert(real).inserted, let tools = installation(in: directory) else { continue }
            if let serverMajor, tools.major >= serverMajor { return tools }
            found.append(tools)
        }
        if serverMajor == nil, let newest = found.max(by: { $0.major < $1.major }) {
            return newest
        }
        guard let newest = found.max(by: { $0.major < $1.major }), let serverMajor else {
            throw MigsnapError.failed("pg_dump and pg_restore were not found (looked in PATH and /usr/lib/postgresql/*/bin).",
                                      hint: "apt-get install postgresql-client, or set MIGSNAP_PG_BINDIR to the directory that holds pg_dump.")
        }
        throw MigsnapError.failed(
            "pg_dump \(newest.major) (\(newest.pgDump)) is older than the PostgreSQL \(serverMajor) server; nothing was done.",
            hint: "apt-get install postgresql-client-\(serverMajor) (pg_dump must be at least as new as the server), or set MIGSNAP_PG_BINDIR.")
    }

    /// MIGSNAP_PG_BINDIR first, then PATH, then Debian's versioned directories, newest first.
    private static func candidateDirectories() -> [String] {
        let env = ProcessInfo.processInfo.environment
        var dirs: [String] = []
        if let explicit = env["MIGSNAP_PG_BINDIR"], !explicit.isEmpty { dirs.append(explicit) }
        dirs += (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        let debian = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: debian)) ?? []
        dirs += versions.compactMap(Int.init).sorted(by: >).map { "\(debian)/\($0)/bin" }
        return dirs
    }

    private static func installation(in directory: String) -> ClientTools? {
        let dump = directory + "/pg_dump"
        let restore = directory + "/pg_restore"
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: dump), fm.isExecutableFile(atPath: restore),
              let output = try? ChildProcess.run(dump, ["--version"], environment: [:], captureOutput: true),
              output.status == 0,
              let major = majorVersion(String(decoding: output.stdout, as: UTF8.self))
        else { return nil }
        return ClientTools(pgDump: dump, pgRestore: restore, major: major)
    }

    /// "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" → 15; "9.6.24" → 9.
    static func majorVersion(_ text: String) -> Int? {
        guard let range = text.range(of: #"\(PostgreSQL\) [0-9]+(\.[0-9]+)?"#, options: .regularExpression) else { return nil }
        let numbers = text[range].dropFirst("(PostgreSQL) ".count).split(separator: ".").compactMap { Int($0) }
        guard let first = numbers.first else { return nil }
        return first >= 10 ? first : first * 10 + (numbers.dropFirst().first ?? 0)
    }
}

/// A finished child process.
struct ChildOutput {
    let status: Int32
    let stdout: Data
    let stderr: String

    /// What pg_dump and pg_restore say went wrong, in one line. Their first error is the cause; a
    /// parallel pg_restore ends with "a worker process died unexpectedly", which names none, so
    /// that line and the "Command was:" echoes are passed over.
    var reason: String {
        let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let generic = ["a worker process died unexpectedly", "errors ignored on restore", "terminated by user"]
        let errors = lines.filter { line in
            (line.contains("error:") || line.contains("ERROR:") || line.contains("FATAL:"))
                && !generic.contains(where: { line.contains($0) })
        }
        guard let first = errors.first ?? lines.last else { return "exit status \(status)" }
        return UserText.line(first, limit: 500)
    }

    /// The server or the disk under the payload ran out of room.
    var diskFull: Bool { stderr.contains("No space left on device") || stderr.contains("could not extend file") }
}

enum ChildProcess {
    /// Runs a program with `environment` added to ours (passwords travel there, never in `arguments`).
    /// Either captures stdout, or discards it and calls `poll` every 200 ms while the child runs
    /// and once when it has exited.
    /// stderr comes back through a pipe drained on another thread: no file to leave behind if
    /// migsnap is killed, and no dependence on TMPDIR.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String],
                    captureOutput: Bool, poll: (() -> Void)? = nil) throws -> ChildOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = captureOutput ? pipe : FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            throw MigsnapError.failed("Could not run \(executable): \(error.localizedDescription)",
                                      hint: "apt-get install postgresql-client")
        }
        let stderr = ErrorCollector(errorPipe.fileHandleForReading)
        var stdout = Data()
        if captureOutput {
            stdout = pipe.fileHandleForReading.readDataToEndOfFile()
        } else if let poll {
            // Woken by the exit itself: a sleep here would add up to its length to every dump and restore.
            repeat { poll() } while exited.wait(timeout: .now() + .milliseconds(200)) == .timedOut
        }
        process.waitUntilExit()
        poll?()
        return ChildOutput(status: process.terminationStatus, stdout: stdout, stderr: stderr.text())
    }
}

/// Drains a child's stderr on a thread of its own, so a chatty child never blocks on a full pipe.
/// Keeps the first 64 KiB (where the first error is) and the last 64 KiB.
private final class ErrorCollector: @unchecked Sendable {
    private var head = Data()
    private var tail = Data()
    private let done = DispatchSemaphore(value: 0)
    private static let keep = 64 * 1024

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                if head.count < Self.keep {
                    head.append(chunk)
                } else {
                    tail.append(chunk)
                    if tail.count > 2 * Self.keep { tail = tail.suffix(Self.keep) }
                }
            }
            try? handle.close()
            done.signal()
        }
    }

    /// Waits for the child to close its stderr.
    func text() -> String {
        done.wait()
        let skipped = tail.count > Self.keep ? "\n…\n" : ""
        return String(decoding: head, as: UTF8.self) + skipped + String(decoding: tail.suffix(Self.keep), as: UTF8.self)
    }
}
