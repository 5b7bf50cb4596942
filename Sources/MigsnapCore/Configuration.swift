import Foundation

/// What the command line and the environment say; `Configuration.resolve` turns it into facts,
/// found the way Alembic finds them so that migsnap works wherever `alembic` works.
public struct ConfigurationInputs: Sendable {
    public var configPath: String?
    public var url: String?
    public var store: String?
    public var retention: String?
    public var alembic: String?
    public var versionTable: String?
    public var versionTableSchema: String?
    public var environment: [String: String]
    public var workingDirectory: String

    public init(configPath: String? = nil, url: String? = nil, store: String? = nil, retention: String? = nil,
                alembic: String? = nil, versionTable: String? = nil, versionTableSchema: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                workingDirectory: String = FileManager.default.currentDirectoryPath) {
        self.configPath = configPath
        self.url = url
        self.store = store
        self.retention = retention
        self.alembic = alembic
        self.versionTable = versionTable
        self.versionTableSchema = versionTableSchema
        self.environment = environment
        self.workingDirectory = workingDirectory
    }
}

public struct Configuration: Sendable {
    /// The Alembic config file, absolute; nil when there is none (allowed when --url and --store say enough).
    public var configFile: String?
    /// Where the config file is, or the working directory without one: `.migsnap/` and `retention.json` live here.
    public var projectDirectory: String
    public var workingDirectory: String
    /// The store: a directory path (absolute) or an `s3://BUCKET/PREFIX` address.
    public var storeLocation: String
    /// Whether the store was named (--store, MIGSNAP_STORE, the config), not the default beside the config file.
    public var storeIsNamed: Bool = false
    /// Recipients that new payloads are encrypted to (MIGSNAP_AGE_RECIPIENTS or the config), as written.
    public var ageRecipients: String?
    /// The age identity file that decrypts payloads (MIGSNAP_AGE_IDENTITY).
    public var ageIdentityFile: String?
    /// The retention file in force, or nil for the built-in default.
    public var retentionFile: String?
    public var alembicCommand: [String]
    public var versionTable: VersionTable
    public var scriptLocation: String?
    public var versionLocations: [String]
    public var recursiveVersionLocations: Bool
    /// The environment passed to Alembic and child processes.
    public var environment: [String: String]
    private var rawURL: String?
    private var urlSource: String

    public static func resolve(_ inputs: ConfigurationInputs) throws -> Configuration {
        let cwd = inputs.workingDirectory
        func absolute(_ path: String) -> String {
            let expanded = (path as NSString).expandingTildeInPath
            return URL(fileURLWithPath: expanded, relativeTo: URL(fileURLWithPath: cwd, isDirectory: true))
                .standardizedFileURL.path
        }

        let explicitConfig = inputs.configPath ?? inputs.environment["ALEMBIC_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        var configFile: String?
        if let explicitConfig {
            let path = absolute(explicitConfig)
            guard FileManager.default.fileExists(atPath: path) else {
                let via = inputs.configPath != nil ? "-c/--config" : "ALEMBIC_CONFIG"
                throw MigsnapError.invalidInput("No config file at \(path) (from \(via)).",
                                                hint: "Pass the path of your alembic.ini with -c FILE.")
            }
            configFile = path
        } else if FileManager.default.fileExists(atPath: absolute("alembic.ini")) {
            configFile = absolute("alembic.ini")
        }

        let projectDirectory = configFile.map { ($0 as NSString).deletingLastPathComponent } ?? cwd
        var settings: [String: String] = [:]
        if let configFile {
            let ini = try IniFile(path: configFile)
            let defaults = ["here": projectDirectory]
            for key in ini.sections["alembic"]?.keys.sorted() ?? [] {
                settings[key] = try ini.value("alembic", key, defaults: defaults)
            }
        }
        // Alembic 1.16+ reads [tool.alembic] of pyproject.toml beside the ini file; the ini file wins.
        if let tool = try PyProjectAlembic.read(path: (projectDirectory as NSString).appendingPathComponent("pyproject.toml")) {
            for (key, value) in tool where settings[key] == nil {
                settings[key] = value.replacingOccurrences(of: "%(here)s", with: projectDirectory)
            }
        }

        // migsnap's own settings: [migsnap] in the ini file, else [tool.migsnap] in pyproject.toml.
        var own: [String: String] = [:]
        if let configFile {
            let ini = try IniFile(path: configFile)
            for key in ini.sections["migsnap"]?.keys.sorted() ?? [] {
                own[key] = try ini.value("migsnap", key, defaults: ["here": projectDirectory])
            }
        }
        if own.isEmpty, let tool = try PyProjectAlembic.read(path: (projectDirectory as NSString).appendingPathComponent("pyproject.toml"), table: "tool.migsnap") {
            own = tool
        }
        let ownSource = configFile.map { "[migsnap] in \($0)" } ?? "[tool.migsnap] in pyproject.toml"
        func ownPath(_ value: String) -> String {
            // Paths in the config file are relative to it, as `%(here)s` suggests.
            value.hasPrefix("/") ? value : URL(fileURLWithPath: (value as NSString).expandingTildeInPath,
                                                relativeTo: URL(fileURLWithPath: projectDirectory, isDirectory: true)).standardizedFileURL.path
        }

        var scriptLocation: String?
        var versionLocations: [String] = []
        if let location = settings["script_location"], !location.isEmpty {
            if location.contains(":") && !location.hasPrefix("/") {
                throw MigsnapError.invalidInput(
                    "script_location '\(location)' names a Python package resource, which migsnap cannot read without importing Python.",
                    hint: "Use a directory path for script_location.")
            }
            // Alembic resolves a relative script_location against the working directory, not the ini file.
            scriptLocation = absolute(location)
            if let versions = settings["version_locations"], !versions.isEmpty {
                versionLocations = splitLocations(versions, separator: settings["path_separator"] ?? settings["version_path_separator"])
                    .map(absolute)
            } else {
                versionLocations = [(scriptLocation! as NSString).appendingPathComponent("versions")]
            }
        }
        let recursive = ["true", "1", "yes", "on"].contains((settings["recursive_version_locations"] ?? "").lowercased())

        var rawURL: String?
        var urlSource = ""
        if let url = inputs.url {
            rawURL = url
            urlSource = "--url"
        } else if let url = inputs.environment["DATABASE_URL"], !url.isEmpty {
            rawURL = url
            urlSource = "DATABASE_URL"
        } else if let url = settings["sqlalchemy.url"], !url.isEmpty {
            rawURL = url
            urlSource = "sqlalchemy.url in \(configFile ?? "the config file")"
        }

        func storeLocation(_ text: String, relativeTo resolve: (String) -> String) -> String {
            text.hasPrefix("s3://") ? text : resolve(text)
        }
        let store: String
        var storeIsNamed = true
        if let s = inputs.store {
            store = storeLocation(s, relativeTo: absolute)
        } else if let s = inputs.environment["MIGSNAP_STORE"], !s.isEmpty {
            store = storeLocation(s, relativeTo: absolute)
        } else if let s = own["store"], !s.isEmpty {
            store = storeLocation(s, relativeTo: ownPath)
        } else {
            store = (projectDirectory as NSString).appendingPathComponent(".migsnap")
            storeIsNamed = false
        }

        var retentionFile: String?
        if let r = inputs.retention {
            retentionFile = absolute(r)
            guard FileManager.default.fileExists(atPath: retentionFile!) else {
                throw MigsnapError.invalidInput("No retention policy file at \(retentionFile!) (from --retention).")
            }
        } else if let r = own["retention"], !r.isEmpty {
            retentionFile = ownPath(r)
            guard FileManager.default.fileExists(atPath: retentionFile!) else {
                throw MigsnapError.invalidInput("No retention policy file at \(retentionFile!) (from \(ownSource)).")
            }
        } else {
            let beside = (projectDirectory as NSString).appendingPathComponent("retention.json")
            if FileManager.default.fileExists(atPath: beside) { retentionFile = beside }
        }

        let alembicText = inputs.alembic ?? inputs.environment["MIGSNAP_ALEMBIC"].flatMap { $0.isEmpty ? nil : $0 } ?? "alembic"
        let alembicCommand = try CommandWords.split(alembicText)
        guard !alembicCommand.isEmpty else {
            throw MigsnapError.invalidInput("The Alembic command is empty.", hint: "Pass --alembic \"python -m alembic\" or set MIGSNAP_ALEMBIC.")
        }

        let table = inputs.versionTable ?? "alembic_version"
        guard !table.isEmpty else { throw MigsnapError.invalidInput("--version-table is empty.") }

        let env = inputs.environment
        let recipients = [env["MIGSNAP_AGE_RECIPIENTS"], env["MIGSNAP_AGE_RECIPIENT"]].compactMap { $0 }.filter { !$0.isEmpty }
        let ageRecipients = recipients.isEmpty ? own["age_recipients"] : recipients.joined(separator: "\n")
        let ageIdentityFile = env["MIGSNAP_AGE_IDENTITY"].flatMap { $0.isEmpty ? nil : absolute($0) }

        return Configuration(
            configFile: configFile, projectDirectory: projectDirectory, workingDirectory: cwd,
            storeLocation: store, storeIsNamed: storeIsNamed, ageRecipients: ageRecipients, ageIdentityFile: ageIdentityFile, retentionFile: retentionFile, alembicCommand: alembicCommand,
            versionTable: VersionTable(name: table, schema: inputs.versionTableSchema),
            scriptLocation: scriptLocation, versionLocations: versionLocations,
            recursiveVersionLocations: recursive, environment: inputs.environment,
            rawURL: rawURL, urlSource: urlSource)
    }

    /// The database URL in force: `--url` > `DATABASE_URL` > `sqlalchemy.url`.
    public func databaseURL() throws -> DatabaseURL {
        guard let rawURL else {
            let where_ = configFile.map { "sqlalchemy.url in \($0)" } ?? "sqlalchemy.url (no alembic.ini in \(workingDirectory))"
            throw MigsnapError.invalidInput("No database URL: none given by --url, DATABASE_URL or \(where_).",
                                            hint: "Pass --url sqlite:///app.db, or run migsnap where your alembic.ini is.")
        }
        do {
            return try DatabaseURL.parse(rawURL, workingDirectory: workingDirectory)
        } catch let error as MigsnapError {
            throw error.prefixed("From \(urlSource)")
        }
    }

    /// For commands that only read or prune a store: outside an Alembic project the default
    /// store is a guess (`.migsnap/` in whatever directory this is), so the store must be named.
    public func requireProjectOrNamedStore() throws {
        guard configFile == nil, scriptLocation == nil, !storeIsNamed else { return }
        throw MigsnapError.invalidInput(
            "No Alembic project here: no alembic.ini in \(workingDirectory), and no --store or MIGSNAP_STORE to say which store to use.",
            hint: "Run migsnap where your alembic.ini is, pass -c path/to/alembic.ini, or name the store with --store DIR.")
    }

    /// The directories holding revision files; an error when the project has none configured.
    public func requireVersionLocations() throws -> [String] {
        guard let scriptLocation else {
            let why = configFile.map { "\($0) has no script_location in [alembic]" } ?? "there is no alembic.ini in \(workingDirectory)"
            throw MigsnapError.invalidInput("Cannot find the migration scripts: \(why).",
                                            hint: "Run migsnap in the directory where `alembic` works, or pass -c path/to/alembic.ini.")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: scriptLocation, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MigsnapError.invalidInput(
                "Cannot find the migration scripts: script_location \(UserText.line(scriptLocation, limit: 300)) (from \(configFile ?? "the config")) is not a directory.",
                hint: "A relative script_location is resolved against the working directory, as Alembic does: run migsnap where `alembic` works, or fix script_location.")
        }
        return versionLocations
    }

    /// The migration directories exist (checked before an upgrade writes anything: Alembic
    /// would fail only after the first snapshot).
    public func requireMigrationDirectories() throws {
        // requireVersionLocations has checked script_location itself.
        for directory in try requireVersionLocations() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw MigsnapError.invalidInput("The migration directory \(directory) does not exist.",
                                                hint: "Check script_location (and version_locations) in \(configFile ?? "the config file"), or pass -c path/to/alembic.ini.")
            }
        }
    }

    /// Alembic's rules for `version_locations`: a named separator, or (legacy) spaces and commas.
    static func splitLocations(_ text: String, separator: String?) -> [String] {
        let parts: [String]
        switch separator {
        case "os", ":": parts = text.components(separatedBy: ":")
        case ";": parts = text.components(separatedBy: ";")
        case "space": parts = text.components(separatedBy: " ")
        case "newline": parts = text.components(separatedBy: "\n")
        case ",": parts = text.components(separatedBy: ",")
        default: parts = text.components(separatedBy: CharacterSet(charactersIn: " ,\n"))
        }
        return parts.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }
}

/// Splits a command such as `poetry run alembic` or `"/opt/my env/bin/alembic"` into words,
/// honouring single and double quotes, without a shell.
public enum CommandWords {
    public static func split(_ text: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        for c in text {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
                inWord = true
            } else if c == " " || c == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(c)
                inWord = true
            }
        }
        if quote != nil {
            throw MigsnapError.invalidInput("The Alembic command '\(text)' has an unclosed quote.")
        }
        if inWord { words.append(current) }
        return words
    }
}
