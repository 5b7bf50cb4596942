import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One warm Alembic for a whole run: the project's own Python, started once with the driver
/// (AlembicDriverSource), asked one step at a time over a pipe. Imports are paid once; the
/// snapshots between steps are migsnap's as before.
final class AlembicDriver {
    enum Answer: Equatable {
        case ok(String)
        case failed(String)
    }

    private let process = Process()
    private let commands: FileHandle
    private let answers: FileHandle
    private var pending = Data()
    private var directory: String?
    private let launch: DriverLaunch

    /// Starts the driver and waits until Alembic is imported. Throws `.invalidInput` (exit 2)
    /// with Python's own error when it cannot start.
    init(launch: DriverLaunch, configFile: String?, environment: [String: String], workingDirectory: String) throws {
        self.launch = launch
        let directory = try Self.privateDirectory()
        self.directory = directory
        let script = (directory as NSString).appendingPathComponent("migsnap_driver.py")
        let toStdin = Pipe(), fromStdout = Pipe()
        commands = toStdin.fileHandleForWriting
        answers = fromStdout.fileHandleForReading
        do {
            try FileSystem.writeAtomically(Data(AlembicDriverSource.python.utf8), to: script, mode: 0o600)
        } catch {
            FileSystem.removeTree(directory)
            throw error
        }
        var env = environment
        // For PR_SET_PDEATHSIG in the driver. Linux sends it when the spawning *thread* exits;
        // the CLI starts the driver from its main thread, which lives as long as migsnap.
        if launch.directChild { env["MIGSNAP_DRIVER_PARENT"] = String(getpid()) }
        if let head = launch.searchPathHead { env["MIGSNAP_DRIVER_SYSPATH0"] = head }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = launch.interpreter + [script] + launch.alembicOptions + (configFile.map { ["-c", $0] } ?? [])
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        process.environment = env
        process.standardInput = toStdin
        process.standardOutput = fromStdout
        process.standardError = FileHandle.standardError
        // A driver that dies must show as an error from write(), not kill migsnap with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        do {
            try process.run()
        } catch {
            stop()
            throw MigsnapError.invalidInput("Alembic cannot start: `\(launch.interpreter.joined(separator: " "))`: \(error.localizedDescription)",
                                            hint: Self.startHint)
        }
        try? toStdin.fileHandleForReading.close()
        try? fromStdout.fileHandleForWriting.close()
        let first = try readAnswer()
        // Python has read the whole file by now.
        FileSystem.removeTree(directory)
        self.directory = nil
        switch first {
        case .some(.ok(let text)) where text.hasPrefix("ready"):
            return
        case .some(.failed(let message)):
            stop()
            throw MigsnapError.invalidInput("Alembic cannot start under `\(launch.interpreter.joined(separator: " "))`: \(message)",
                                            hint: Self.startHint)
        default:
            let status = stop()
            throw MigsnapError.invalidInput(
                "Alembic cannot start: `\(launch.interpreter.joined(separator: " "))` exited\(status.map { " with status \($0)" } ?? "") before Alembic was loaded (its output is above).",
                hint: Self.startHint)
        }
    }

    static let startHint = "Check that `alembic current` works here (the project's virtual environment active, env.py importable), or pass --alembic \"CMD\"."

    deinit { stop() }

    /// Sends one command and waits for its answer; nil when the driver exited instead.
    func request(_ command: String) throws -> Answer? {
        guard !command.contains(where: \.isNewline) else {
            throw MigsnapError.invalidInput("`\(command)` holds a line break, which no revision or Alembic command does.")
        }
        do {
            try commands.write(contentsOf: Data((command + "\n").utf8))
        } catch {
            return nil
        }
        return try readAnswer()
    }

    /// Ends the driver: end of input, which makes it exit at once; killed if it does not.
    /// Returns its exit status.
    @discardableResult
    func stop() -> Int32? {
        try? commands.close()
        if let directory {
            FileSystem.removeTree(directory)
            self.directory = nil
        }
        guard process.processIdentifier != 0 else { return nil }
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? answers.close()
        return process.terminationStatus
    }

    /// The next answer line; lines without the prefix (a `poetry run` warning) go to stderr.
    private func readAnswer() throws -> Answer? {
        let prefix = "migsnap-driver: "
        while true {
            guard let line = try readLine() else { return nil }
            guard line.hasPrefix(prefix) else {
                FileHandle.standardError.write(Data((line + "\n").utf8))
                continue
            }
            let text = String(line.dropFirst(prefix.count))
            if text.hasPrefix("failed: ") { return .failed(String(text.dropFirst("failed: ".count))) }
            if text == "ok" { return .ok("") }
            if text.hasPrefix("ok ") { return .ok(String(text.dropFirst(3))) }
            return .ok(text)
        }
    }

    private func readLine() throws -> String? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = pending[pending.startIndex..<newline]
                pending.removeSubrange(pending.startIndex...newline)
                return String(decoding: line, as: UTF8.self)
            }
            let chunk = answers.availableData
            if chunk.isEmpty { return nil }
            pending.append(chunk)
        }
    }

    /// A fresh 0700 directory under the temporary directory.
    private static func privateDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("migsnap-driver.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw FileSystem.osError("create a private temporary directory for the Alembic driver")
        }
        return String(cString: made)
    }
}
