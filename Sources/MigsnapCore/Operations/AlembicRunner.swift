import Foundation

/// Runs the project's own Alembic: `alembic` on PATH, or the command from --alembic /
/// MIGSNAP_ALEMBIC, with the same config file. Its output goes to our stderr.
///
/// `prepare` starts one warm Alembic (AlembicDriver) for the whole run and checks that env.py
/// connects to the database migsnap snapshots; steps then go through it. Where the command is not
/// a Python Alembic migsnap can drive (or MIGSNAP_NO_DRIVER is set), each step runs the command
/// once, as `alembic upgrade REV` would.
public final class AlembicRunner {
    public let command: [String]
    public let configFile: String?
    public let workingDirectory: String
    public let environment: [String: String]
    /// The database migsnap snapshots; env.py must connect to this one.
    private let database: DatabaseURL?
    private var state = State.unprepared

    private enum State {
        case unprepared
        case perStep
        /// Started for the revision map; the database not checked yet.
        case started(AlembicDriver)
        case driven(AlembicDriver)
    }

    public init(configuration: Configuration, databaseURLOverride: String?) {
        command = configuration.alembicCommand
        configFile = configuration.configFile
        workingDirectory = configuration.workingDirectory
        database = try? configuration.databaseURL()
        var env = configuration.environment
        // A URL given with --url reaches env.py the way most projects read one: DATABASE_URL; the
        // driver also sets it as sqlalchemy.url. The environment, not the command line, so a
        // password never shows in `ps`.
        if let databaseURLOverride { env["DATABASE_URL"] = databaseURLOverride }
        // Tells the env.py hook of `migsnap hook` that this run already snapshots each step.
        env["MIGSNAP_ACTIVE"] = "1"
        environment = env
    }

    deinit { finish() }

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

    /// Starts the warm Alembic, once, and checks which database env.py connects to. Call it
    /// before the first change. Throws `.invalidInput` (exit 2) when Alembic cannot start and
    /// `.refused` (exit 4) when env.py connects to another database than `database`.
    public func prepare(log: (String) -> Void) throws {
        let driver: AlembicDriver
        switch state {
        case .perStep, .driven:
            return
        case _ where !(environment["MIGSNAP_NO_DRIVER"] ?? "").isEmpty:
            finish()
            try checkStarts()
            state = .perStep
            return
        case .started(let running):
            driver = running
        case .unprepared:
            guard let started = try startDriver() else {
                log("Notice: `\(command.joined(separator: " "))` is not a Python Alembic migsnap can drive; running it once per step.")
                try checkStarts()
                state = .perStep
                return
            }
            driver = started
        }
        state = .unprepared
        switch try driver.request("check") {
        case .ok(let connected):
            if let database { try Self.require(connected, is: database, workingDirectory: workingDirectory) }
        case .failed(let message):
            throw MigsnapError.invalidInput("Alembic cannot start: \(message) (Alembic's output is above).", hint: AlembicDriver.startHint)
        case nil:
            let status = driver.stop()
            throw MigsnapError.invalidInput("Alembic cannot start: the driver exited\(status.map { " with status \($0)" } ?? "") during `alembic current` (its output is above).",
                                            hint: AlembicDriver.startHint)
        }
        state = .driven(driver)
    }

    /// Alembic's own revision map (ids, down revisions, declared branch labels, depends_on,
    /// paths), in Alembic's load order: from the warm Alembic when one runs, else from a driver
    /// started for it.
    public func revisionMap() throws -> [RevisionScript] {
        let driver: AlembicDriver
        switch state {
        case .driven(let running), .started(let running):
            driver = running
        case .unprepared, .perStep:
            guard let started = try startDriver() else {
                throw MigsnapError.invalidInput("`\(command.joined(separator: " "))` is not a Python Alembic migsnap can drive.")
            }
            driver = started
            // Kept for prepare(), so that an upgrade starts Python once.
            if case .unprepared = state { state = .started(started) }
        }
        switch try driver.request("revisions") {
        case .ok(let json):
            struct Entry: Decodable {
                var revision: String
                var down_revision: [String]
                var branch_labels: [String]
                var depends_on: [String]
                var path: String
                var doc: String?
            }
            let entries = try JSONDecoder().decode([Entry].self, from: Data(json.utf8))
            return entries.map { e in
                RevisionScript(revision: e.revision, downRevisions: e.down_revision, branchLabels: e.branch_labels, dependsOn: e.depends_on,
                               path: e.path, contentSHA256: FileManager.default.contents(atPath: e.path).map { Hashing.sha256(of: $0) } ?? "",
                               message: e.doc.flatMap { $0.split(separator: "\n").first.map(String.init) })
            }
        case .failed(let message):
            throw MigsnapError.invalidInput("Alembic could not load the revisions: \(message) (its output is above).")
        case nil:
            throw MigsnapError.invalidInput("Alembic exited while loading the revisions (its output is above).")
        }
    }

    public func upgrade(_ revision: String) throws { try step("upgrade", revision) }
    public func downgrade(_ revision: String) throws { try step("downgrade", revision) }

    /// Ends the warm Alembic, if one runs, and waits until it has gone.
    public func finish() {
        switch state {
        case .driven(let driver), .started(let driver): driver.stop()
        case .unprepared, .perStep: break
        }
        state = .unprepared
    }

    /// A driver for this command, or nil when it is not a Python Alembic that can be driven.
    private func startDriver() throws -> AlembicDriver? {
        guard let launch = try DriverLaunch.resolve(command, path: environment["PATH"] ?? "/usr/bin:/bin", workingDirectory: workingDirectory) else {
            return nil
        }
        return try AlembicDriver(launch: launch, configFile: configFile, environment: environment, workingDirectory: workingDirectory)
    }

    private func step(_ verb: String, _ revision: String) throws {
        guard case .driven(let driver) = state else { return try run([verb, revision]) }
        switch try driver.request("\(verb) \(revision)") {
        case .ok:
            return
        case .failed(let message):
            throw MigsnapError.failed("`\(describe([verb, revision]))` failed: \(message) (Alembic's output is above).")
        case nil:
            let status = driver.stop()
            state = .unprepared
            throw MigsnapError.failed("`\(describe([verb, revision]))` failed: Alembic exited\(status.map { " with status \($0)" } ?? "") (its output is above).")
        }
    }

    /// Refuses when `connected` (what env.py connects to, as the driver saw it) is not `database`.
    static func require(_ connected: String, is database: DatabaseURL, workingDirectory: String) throws {
        let parsed = try? DatabaseURL.parse(connected, workingDirectory: workingDirectory)
        if let parsed, sameDatabase(parsed, database) { return }
        let theirs = parsed?.redacted ?? DatabaseURL.redact(connected)
        throw MigsnapError.refused(
            "env.py connects to \(theirs), not to \(database.redacted), the database migsnap snapshots: refusing before any change.",
            hint: "Make env.py take its URL from config.get_main_option(\"sqlalchemy.url\") (migsnap sets it) or honour DATABASE_URL.")
    }

    static func sameDatabase(_ a: DatabaseURL, _ b: DatabaseURL) -> Bool {
        switch (a, b) {
        case (.sqlite(let x), .sqlite(let y)):
            let resolve = { (path: String) in URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
            return resolve(x) == resolve(y)
        case (.postgresql(let x), .postgresql(let y)):
            return x.host == y.host && (x.port ?? 5432) == (y.port ?? 5432) && (x.database ?? x.user) == (y.database ?? y.user)
        default:
            return false
        }
    }

    /// Runs `alembic [-c FILE] ARGS…` as its own process; throws `.failed` when Alembic cannot be
    /// started or fails.
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
