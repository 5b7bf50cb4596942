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

    /// Runs `alembic [-c FILE] ARGS…`; throws `.failed` when Alembic cannot be started or fails.
    public func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command + (configFile.map { ["-c", $0] } ?? []) + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        process.environment = environment
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        process.standardInput = FileHandle.nullDevice
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
}
