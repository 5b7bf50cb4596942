import Foundation

/// Runs the project's own Alembic (never imports its Python): `alembic` on PATH, or the command
/// from --alembic / MIGSNAP_ALEMBIC, with the same config file. Its output goes to our stderr.
public struct AlembicRunner: Sendable {
    public var command: [String]
    public var configFile: String?
    public var workingDirectory: String
    public var environment: [String: String]

    public init(configuration: Configuration, databaseURLOverride: String?) {
        command = configuration.alembicCommand
        configFile = configuration.configFile
        workingDirectory = configuration.workingDirectory
        var env = configuration.environment
        // A URL given with --url reaches env.py the way most projects read one: DATABASE_URL.
        // The environment, not the command line, so a password never shows in `ps`.
        if let databaseURLOverride { env["DATABASE_URL"] = databaseURLOverride }
        // Tells the env.py hook of `migsnap hook` that this run already snapshots each step.
        env["MIGSNAP_ACTIVE"] = "1"
        environment = env
    }

    /// The words of the command, for messages.
    public func describe(_ arguments: [String]) -> String {
        (command + (configFile.map { ["-c", $0] } ?? []) + arguments).joined(separator: " ")
    }

    /// Checks that Alembic can be started at all (`alembic --version`), before an upgrade writes
    /// anything; throws `.invalidInput` naming the command when it cannot.
    public func checkStarts() throws {
        let process = process(command + ["--version"], output: FileHandle.nullDevice)
        let words = command.joined(separator: " ")
        let hint = "Activate the project's virtual environment (put its bin on PATH), or pass --alembic \"python -m alembic\"."
        do {
            try process.run()
        } catch {
            throw MigsnapError.invalidInput("Alembic cannot be started: \(error.localizedDescription).", hint: hint)
        }
        process.waitUntilExit()
        if process.terminationReason == .exit && process.terminationStatus == 127 {
            throw MigsnapError.invalidInput("Alembic was not found: `\(words)` is not on PATH; nothing was written.", hint: hint)
        }
        guard process.terminationReason == .exit && process.terminationStatus == 0 else {
            throw MigsnapError.invalidInput("Alembic cannot be started: `\(words) --version` exited \(process.terminationStatus); nothing was written.",
                                            hint: hint)
        }
    }

    /// Runs `alembic [-c FILE] ARGS…`; throws `.failed` when Alembic cannot be started or fails.
    public func run(_ arguments: [String]) throws {
        let process = process(command + (configFile.map { ["-c", $0] } ?? []) + arguments, output: FileHandle.standardError)
        do {
            try process.run()
        } catch {
            throw MigsnapError.failed("Could not start \(command[0]): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        let status = process.terminationStatus
        if process.terminationReason == .uncaughtSignal {
            throw MigsnapError.failed("`\(describe(arguments))` was killed by signal \(status).")
        }
        if status == 127 {
            throw MigsnapError.failed("Alembic was not found: `\(command.joined(separator: " "))` is not on PATH.",
                                      hint: "Activate the project's virtual environment, or pass --alembic \"python -m alembic\".")
        }
        if status != 0 {
            throw MigsnapError.failed("`\(describe(arguments))` failed with exit status \(status) (its output is above).")
        }
    }

    private func process(_ words: [String], output: FileHandle) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = words
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        process.environment = environment
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        return process
    }
}
