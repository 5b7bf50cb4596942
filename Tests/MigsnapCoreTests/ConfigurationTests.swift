import Foundation
import Testing
@testable import MigsnapCore

@Suite("Configuration discovery")
struct ConfigurationTests {
    @Test func readsAlembicIniWithHereAndPercent() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("alembic.ini", """
        [alembic]
        # a comment
        script_location = %(here)s/migrations
        sqlalchemy.url = sqlite:///%(here)s/app%%1.db
        version_locations = %(here)s/migrations/versions %(here)s/more
        recursive_version_locations = true

        [loggers]
        keys = root
        """)
        let c = try Configuration.resolve(ConfigurationInputs(environment: [:], workingDirectory: dir.path))
        #expect(c.configFile == dir.sub("alembic.ini"))
        #expect(c.scriptLocation == dir.sub("migrations"))
        #expect(c.versionLocations == [dir.sub("migrations/versions"), dir.sub("more")])
        #expect(c.recursiveVersionLocations)
        #expect(try c.databaseURL() == .sqlite(path: dir.sub("app%1.db")))
        #expect(c.storeLocation == dir.sub(".migsnap"))
        #expect(c.retentionFile == nil)
        #expect(c.alembicCommand == ["alembic"])
    }

    @Test func urlPrecedence() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("alembic.ini", "[alembic]\nscript_location = migrations\nsqlalchemy.url = sqlite:///ini.db\n")
        let fromIni = try Configuration.resolve(ConfigurationInputs(environment: [:], workingDirectory: dir.path))
        #expect(try fromIni.databaseURL() == .sqlite(path: dir.sub("ini.db")))
        let fromEnv = try Configuration.resolve(ConfigurationInputs(environment: ["DATABASE_URL": "sqlite:///env.db"], workingDirectory: dir.path))
        #expect(try fromEnv.databaseURL() == .sqlite(path: dir.sub("env.db")))
        let fromFlag = try Configuration.resolve(ConfigurationInputs(url: "sqlite:///flag.db", environment: ["DATABASE_URL": "sqlite:///env.db"], workingDirectory: dir.path))
        #expect(try fromFlag.databaseURL() == .sqlite(path: dir.sub("flag.db")))
    }

    @Test func relativeScriptLocationIsResolvedAgainstTheWorkingDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("conf/alembic.ini", "[alembic]\nscript_location = migrations\n")
        let c = try Configuration.resolve(ConfigurationInputs(configPath: "conf/alembic.ini", environment: [:], workingDirectory: dir.path))
        #expect(c.scriptLocation == dir.sub("migrations"))
        #expect(c.projectDirectory == dir.sub("conf"))
        #expect(c.storeLocation == dir.sub("conf/.migsnap"))
    }

    @Test func alembicConfigEnvironmentAndMissingFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("other.ini", "[alembic]\nscript_location = m\n")
        let c = try Configuration.resolve(ConfigurationInputs(environment: ["ALEMBIC_CONFIG": "other.ini"], workingDirectory: dir.path))
        #expect(c.configFile == dir.sub("other.ini"))
        #expect(throws: MigsnapError.self) {
            try Configuration.resolve(ConfigurationInputs(configPath: "nope.ini", environment: [:], workingDirectory: dir.path))
        }
    }

    @Test func pyprojectToolAlembic() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("alembic.ini", "[alembic]\nsqlalchemy.url = sqlite:///app.db\n")
        try dir.write("pyproject.toml", """
        [project]
        name = "x"

        [tool.alembic]
        script_location = "%(here)s/alembic"  # trailing comment
        version_locations = [
            "%(here)s/alembic/versions",
            "%(here)s/extra",
        ]

        [tool.other]
        script_location = "wrong"
        """)
        let c = try Configuration.resolve(ConfigurationInputs(environment: [:], workingDirectory: dir.path))
        #expect(c.scriptLocation == dir.sub("alembic"))
        #expect(c.versionLocations == [dir.sub("alembic/versions"), dir.sub("extra")])
    }

    @Test func storeRetentionAndAlembicOverrides() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("alembic.ini", "[alembic]\nscript_location = m\n")
        try dir.write("retention.json", "{}")
        let c = try Configuration.resolve(ConfigurationInputs(
            environment: ["MIGSNAP_STORE": "snaps", "MIGSNAP_ALEMBIC": "poetry run 'my alembic'"], workingDirectory: dir.path))
        #expect(c.storeLocation == dir.sub("snaps"))
        #expect(c.retentionFile == dir.sub("retention.json"))
        #expect(c.alembicCommand == ["poetry", "run", "my alembic"])
        let flags = try Configuration.resolve(ConfigurationInputs(store: "/tmp/s", alembic: "python -m alembic",
                                                                  versionTable: "my_versions", versionTableSchema: "meta",
                                                                  environment: ["MIGSNAP_STORE": "snaps"], workingDirectory: dir.path))
        #expect(flags.storeLocation == "/tmp/s")
        #expect(flags.alembicCommand == ["python", "-m", "alembic"])
        #expect(flags.versionTable == VersionTable(name: "my_versions", schema: "meta"))
    }

    @Test("Broken config files are bad input", arguments: [
        "[alembic\nscript_location = m\n",
        "script_location = m\n",
        "[alembic]\nsqlalchemy.url = %(nothere)s/x\n",
        "[alembic]\nsqlalchemy.url = 50% off\n",
        "[alembic]\njust words\n",
    ])
    func brokenIni(text: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("alembic.ini", text)
        #expect(throws: MigsnapError.self) {
            let c = try Configuration.resolve(ConfigurationInputs(environment: [:], workingDirectory: dir.path))
            _ = try c.databaseURL()
        }
    }

    @Test func noUrlAnywhereNamesWhereItLooked() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let c = try Configuration.resolve(ConfigurationInputs(environment: [:], workingDirectory: dir.path))
        #expect {
            try c.databaseURL()
        } throws: { error in
            (error as? MigsnapError)?.message.contains("DATABASE_URL") == true
        }
        #expect(throws: MigsnapError.self) { try c.requireVersionLocations() }
    }

    @Test("Version location separators", arguments: [
        ("a b,c", nil as String?, ["a", "b", "c"]),
        ("a:b", "os", ["a", "b"]),
        ("a;b c", ";", ["a", "b c"]),
        ("a b\nc", "newline", ["a b", "c"]),
        ("a b", "space", ["a", "b"]),
    ])
    func separators(text: String, separator: String?, expected: [String]) {
        #expect(Configuration.splitLocations(text, separator: separator) == expected)
    }
}
