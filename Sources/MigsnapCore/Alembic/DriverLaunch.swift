import Foundation

/// How to start the project's own Alembic Python with the driver instead of Alembic's CLI, found
/// from the command that runs Alembic today:
///
/// | Alembic command                         | driver started as                                   |
/// | --------------------------------------- | --------------------------------------------------- |
/// | `alembic` (on PATH), `path/bin/alembic` | the interpreter on the script's `#!` line           |
/// | `PYTHON -m alembic`                     | `PYTHON DRIVER`                                     |
/// | `poetry/uv/pipenv/pdm run … alembic`    | `poetry/uv/pipenv/pdm run … python DRIVER`          |
///
/// Words after `alembic` (such as `-n SECTION`, `-x KEY=VALUE`) go to the driver, which builds
/// its Config with Alembic's own command-line parser. Anything else (a shell wrapper, a binary)
/// cannot be driven: nil, and migsnap runs the command once per step as before.
struct DriverLaunch: Equatable {
    /// The words before the driver's path.
    var interpreter: [String]
    /// Alembic's own options, passed after the driver's path.
    var alembicOptions: [String]
    /// Whether the interpreter is migsnap's direct child (so it can die with migsnap).
    var directChild: Bool
    /// What Python's sys.path[0] would be under the original command: the script's directory,
    /// or the working directory for `-m`.
    var searchPathHead: String?

    static let runners: Set<String> = ["poetry", "uv", "pipenv", "pdm"]

    /// Throws (exit 2) when the command's program is not where it says; nil when it is there but
    /// not a Python Alembic migsnap can drive.
    static func resolve(_ command: [String], path: String, workingDirectory: String) throws -> DriverLaunch? {
        guard let first = command.first else { return nil }
        guard let program = locate(first, path: path, workingDirectory: workingDirectory) else {
            throw MigsnapError.invalidInput(
                "Alembic cannot start: `\(first)` was not found\(first.contains("/") ? "" : " on PATH").",
                hint: "Activate the project's virtual environment, or pass --alembic \"python -m alembic\".")
        }
        if command.count >= 3, command[1] == "-m", command[2] == "alembic" {
            return DriverLaunch(interpreter: [first], alembicOptions: Array(command.dropFirst(3)),
                                directChild: true, searchPathHead: workingDirectory)
        }
        let name = (first as NSString).lastPathComponent
        if runners.contains(name), command.count >= 3, command[1] == "run",
           let at = command.indices.dropFirst(2).first(where: { (command[$0] as NSString).lastPathComponent == "alembic" }) {
            return DriverLaunch(interpreter: Array(command[..<at]) + ["python"], alembicOptions: Array(command[(at + 1)...]),
                                directChild: false, searchPathHead: nil)
        }
        guard name == "alembic", let python = interpreter(ofScript: program) else { return nil }
        return DriverLaunch(interpreter: python, alembicOptions: Array(command.dropFirst()), directChild: true,
                            searchPathHead: (program as NSString).deletingLastPathComponent)
    }

    /// An executable named as a shell would find it: a path (relative to the working directory),
    /// or the first match on PATH.
    static func locate(_ name: String, path: String, workingDirectory: String) -> String? {
        if name.contains("/") {
            let full = URL(fileURLWithPath: name, relativeTo: URL(fileURLWithPath: workingDirectory, isDirectory: true)).standardizedFileURL.path
            return FileManager.default.isExecutableFile(atPath: full) ? full : nil
        }
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let dir = directory.isEmpty ? workingDirectory : String(directory)
            let candidate = (dir as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The interpreter a Python console script runs under: its `#!` line (`/venv/bin/python3`,
    /// `/usr/bin/env python3`), or the `exec` line pip writes under `#!/bin/sh` when the
    /// interpreter's path is too long for a `#!` line. Nil for anything that is not Python.
    static func interpreter(ofScript script: String) -> [String]? {
        guard let handle = FileHandle(forReadingAtPath: script) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 4096), head.starts(with: Array("#!".utf8)),
              let text = String(data: head, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let words = try? CommandWords.split(String(lines[0].dropFirst(2))), let program = words.first else { return nil }
        let isPython: (String) -> Bool = { ($0 as NSString).lastPathComponent.hasPrefix("python") }
        if isPython(program) { return words }
        if (program as NSString).lastPathComponent == "env", words.count == 2, isPython(words[1]) { return words }
        if program.hasSuffix("/sh"), lines.count > 1, lines[1].hasPrefix("'''exec' "),
           let exec = try? CommandWords.split(String(lines[1].dropFirst("'''exec' ".count))), let python = exec.first, isPython(python) {
            return [python]
        }
        return nil
    }
}
