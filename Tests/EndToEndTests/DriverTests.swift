import Foundation
import Testing

extension Project {
    /// The env.py with `old` replaced by `new` (the text must be there).
    func editEnvPy(_ old: String, _ new: String) throws {
        let path = dir + "/migrations/env.py"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try #require(text.contains(old), "env.py has no \(old)")
        try text.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Runs the venv's Alembic against another database (through DATABASE_URL, which the example's env.py honours).
    @discardableResult
    func alembic(on database: String, _ arguments: String...) throws -> RunResult {
        let r = try run(venv + "/bin/alembic", arguments, in: dir, environment: environment.merging(["DATABASE_URL": "sqlite:///" + database]) { $1 })
        #expect(r.status == 0, "alembic \(arguments.joined(separator: " ")) on \(database): \(r.output)")
        return r
    }

    /// Python processes still running in this project's directory (a driver left behind).
    func pythonProcessesHere() -> [String] {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            guard Int(pid) != nil, (try? fm.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) == dir,
                  let cmdline = fm.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: cmdline, as: UTF8.self).contains("python")
        }
    }

    func writeStep(_ revision: String, after down: String, body: String = "pass") throws {
        try writeMigration(revision, """
        import time
        from alembic import op

        revision = "\(revision)"
        down_revision = "\(down)"

        def upgrade():
            \(body)

        def downgrade():
            pass
        """)
    }
}

/// The pids the driver reports with MIGSNAP_DRIVER_DEBUG, one line per step.
func driverPids(_ stderr: String) -> [String] {
    stderr.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("migsnap-driver: pid "), line.contains(" runs ") else { return nil }
        return line.split(separator: " ")[2].description
    }
}

/// How many drivers started (MIGSNAP_DRIVER_DEBUG).
func driverStarts(_ stderr: String) -> Int {
    stderr.split(separator: "\n").filter { $0.hasPrefix("migsnap-driver: pid ") && $0.hasSuffix(" started") }.count
}

@Suite("One warm Alembic for the whole upgrade (the driver)")
struct DriverTests {
    @Test func aMultiStepUpgradeRunsThroughOnePythonProcess() throws {
        let p = try Project()
        for (rev, down) in [("0004", "0003"), ("0005", "0004")] { try p.writeStep(rev, after: down) }
        let r = try p.migsnap("upgrade", env: ["MIGSNAP_DRIVER_DEBUG": "1"])
        #expect(r.status == 0, "\(r.output)")
        let pids = driverPids(r.stderr)
        #expect(pids.count == 5, "\(r.stderr)")
        #expect(Set(pids).count == 1, "one Python for all steps: \(pids)")
        let manifests = try p.manifests()
        #expect(manifests.map { $0["target_revision"] as? String } == ["0001", "0002", "0003", "0004", "0005", nil])
        #expect(manifests.map(p.revisionsOf) == [[], ["0001"], ["0002"], ["0003"], ["0004"], ["0005"]])
        #expect(manifests.map { $0["reason"] as? String } == Array(repeating: "pre-upgrade", count: 5) + ["post-upgrade"])
        #expect(try p.sqlite("SELECT version_num FROM alembic_version") == "0005")
        #expect(driverStarts(r.stderr) == 1)
        #expect(p.pythonProcessesHere().isEmpty)
        #expect(!r.stderr.contains("Notice"))

        // Nothing pending (a deploy without migrations): no Python is started at all.
        let again = try p.migsnap("upgrade", env: ["MIGSNAP_DRIVER_DEBUG": "1"])
        #expect(again.status == 0 && again.stdout.contains("already at 0005"), "\(again.output)")
        #expect(driverStarts(again.stderr) == 0, "\(again.stderr)")
    }

    @Test func pythonDashMAlembicIsDrivenToo() throws {
        let p = try Project()
        let r = try p.migsnap("upgrade", "--alembic", "python -m alembic", env: ["MIGSNAP_DRIVER_DEBUG": "1"])
        #expect(r.status == 0, "\(r.output)")
        #expect(Set(driverPids(r.stderr)).count == 1 && driverPids(r.stderr).count == 3, "\(r.stderr)")
    }

    @Test func aCommandThatIsNotPythonRunsOncePerStepWithANotice() throws {
        let p = try Project()
        let r = try p.migsnap("upgrade", "--alembic", "sh -c 'exec alembic \"$@\"' alembic", env: ["MIGSNAP_DRIVER_DEBUG": "1"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.stderr.contains("Notice: `sh -c") && r.stderr.contains("once per step"), "\(r.stderr)")
        #expect(driverPids(r.stderr).isEmpty)
        #expect(try p.manifests().count == 4)
        #expect(try p.sqlite("SELECT version_num FROM alembic_version") == "0003")
    }

    @Test func urlReachesAnEnvPyThatReadsOnlySqlalchemyURL() throws {
        let p = try Project()
        try p.editEnvPy("if os.environ.get(\"DATABASE_URL\"):", "if False:")
        let other = p.dir + "/other.db"
        let r = try p.migsnap("upgrade", "--url", "sqlite:///other.db")
        #expect(r.status == 0, "\(r.output)")
        #expect(try p.sqlite("SELECT version_num FROM alembic_version", database: other) == "0003")
        #expect(!FileManager.default.fileExists(atPath: p.database), "the config's database was not touched")
        #expect(try p.manifests().allSatisfy { $0["database"] as? String == other })
    }

    @Test func anEnvPyThatConnectsElsewhereIsRefusedBeforeAnyChange() throws {
        let p = try Project()
        let elsewhere = p.dir + "/elsewhere.db"
        try p.alembic("upgrade", "0001")
        try p.alembic(on: elsewhere, "upgrade", "0001")
        try p.editEnvPy("engine_from_config(config.get_section(config.config_ini_section, {}),",
                        "engine_from_config({\"sqlalchemy.url\": \"sqlite:///elsewhere.db\"},")
        let ours = fileBytes(p.database), theirs = fileBytes(elsewhere)

        let r = try p.migsnap("upgrade")
        #expect(r.status == 4, "\(r.output)")
        #expect(r.stderr.contains(elsewhere) && r.stderr.contains(p.database), "both named: \(r.stderr)")
        #expect(r.stderr.contains("config.get_main_option(\"sqlalchemy.url\")") && r.stderr.contains("DATABASE_URL"))
        #expect(fileBytes(p.database) == ours && fileBytes(elsewhere) == theirs)
        #expect(!FileManager.default.fileExists(atPath: p.store), "no snapshot, no store")
        #expect(p.pythonProcessesHere().isEmpty)

        // The same check guards rollback's fallback to `alembic downgrade`: no safety snapshot, no change.
        let rollback = try p.migsnap("rollback", "--yes")
        #expect(rollback.status == 4, "\(rollback.output)")
        #expect(rollback.stderr.contains(elsewhere), "\(rollback.stderr)")
        #expect(fileBytes(p.database) == ours && fileBytes(elsewhere) == theirs)
        #expect(try p.manifests().isEmpty)
    }

    @Test func aStepThatRaisesHalfWayIsRestoredAndTheDriverIsGone() throws {
        let p = try Project().seeded()
        try p.writeStep("0004", after: "0003", body: """
        db = __import__("sqlite3").connect(op.get_bind().engine.url.database)
            db.execute("DELETE FROM orders")
            db.commit()
            db.close()
            raise RuntimeError("boom in the middle")
        """)
        try p.writeStep("0005", after: "0004")
        // What the database should be after the run: 0003 applied, 0004 undone.
        let reference = p.dir + "/reference.db"
        try FileManager.default.copyItem(atPath: p.database, toPath: reference)
        try p.alembic(on: reference, "upgrade", "0003")
        let r = try p.migsnap("upgrade", env: ["MIGSNAP_DRIVER_DEBUG": "1"])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("boom in the middle") && r.stderr.contains("restored"), "\(r.stderr)")
        #expect(Set(driverPids(r.stderr)).count == 1 && driverPids(r.stderr).count == 2, "0003 and 0004, not 0005: \(r.stderr)")
        #expect(try p.sqlite("SELECT version_num FROM alembic_version") == "0003")
        #expect(try p.dump() == p.dump(reference))
        #expect(p.pythonProcessesHere().isEmpty)
    }

    @Test func killingMigsnapMidStepRunsNoFurtherStep() throws {
        let p = try Project()
        try p.alembic("upgrade", "head")
        try p.writeStep("0004", after: "0003", body: "time.sleep(3)")
        try p.writeStep("0005", after: "0004")
        let log = p.dir + "/migsnap.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.binary)
        process.arguments = ["upgrade"]
        process.currentDirectoryURL = URL(fileURLWithPath: p.dir)
        process.environment = ProcessInfo.processInfo.environment.merging(p.environment) { $1 }
            .merging(["MIGSNAP_DRIVER_DEBUG": "1"]) { $1 }.filter { $0.key != "DATABASE_URL" }
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(String(data: fileBytes(log) ?? Data(), encoding: .utf8) ?? "").contains("runs upgrade 0004") {
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let text = String(data: fileBytes(log) ?? Data(), encoding: .utf8) ?? ""
        try #require(text.contains("runs upgrade 0004"), "\(text)")
        // Longer than the slow step: a driver that outlived migsnap would have finished it and gone on.
        sleep(4)
        #expect(p.pythonProcessesHere().isEmpty)
        #expect(["0003", "0004"].contains(try p.sqlite("SELECT version_num FROM alembic_version")))
        #expect(!text.contains("runs upgrade 0005"))
    }

    @Test func alembicThatCannotStartExits2BeforeAnythingIsWritten() throws {
        let p = try Project()
        try p.editEnvPy("import os\n", "import os\nimport no_such_module_for_migsnap\n")
        let r = try p.migsnap("upgrade")
        #expect(r.status == 2, "\(r.output)")
        #expect(r.stderr.contains("No module named 'no_such_module_for_migsnap'"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p.store))
        #expect(!FileManager.default.fileExists(atPath: p.database), "not even the first deploy's empty database")

        let missing = try p.migsnap("upgrade", "--alembic", "no-such-alembic")
        #expect(missing.status == 2, "\(missing.output)")
        #expect(missing.stderr.contains("not found"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: p.store))
    }
}

@Suite("Revision files that compute their values: Alembic's own revision map")
struct ComputedRevisionValueTests {
    /// The example plus a module of constants beside the versions directory (as neutron's `cli`),
    /// which 0004 and 0005 take their ids, parents and branch label from.
    func project() throws -> Project {
        let p = try Project()
        let ini = p.dir + "/alembic.ini"
        let text = try String(contentsOfFile: ini, encoding: .utf8)
        try text.replacingOccurrences(of: "[alembic]\n", with: "[alembic]\nprepend_sys_path = .\n").write(toFile: ini, atomically: true, encoding: .utf8)
        try """
        CONTRACT_BRANCH = "contract"
        FOURTH = "00" + "04"
        THIRD = "0003"
        """.write(toFile: p.dir + "/migrations/labels.py", atomically: true, encoding: .utf8)
        for (name, revision, down, labels) in [("0004_contract", "labels.FOURTH", "labels.THIRD", "(labels.CONTRACT_BRANCH,)"),
                                               ("0005_more", "\"0005\"", "labels.FOURTH", "None")] {
            try p.writeMigration(name, """
            \"\"\"computed values\"\"\"
            from migrations import labels

            revision = \(revision)
            down_revision = \(down)
            branch_labels = \(labels)
            depends_on = None

            def upgrade():
                pass

            def downgrade():
                pass
            """)
        }
        return p
    }

    func steps(_ r: RunResult, _ p: Project) throws -> [String] {
        let plan = try #require(try p.json(r.stdout) as? [String: Any], "\(r.output)")
        return try #require(plan["steps"] as? [[String: Any]]).compactMap { $0["to"] as? String }
    }

    @Test func statusDryRunAndUpgradeFollowAlembicsMap() throws {
        let p = try project()
        // Alembic's own order, from its log of a real upgrade of another database.
        let reference = try p.alembic(on: p.dir + "/reference.db", "upgrade", "head")
        let alembicOrder = reference.stderr.split(separator: "\n").compactMap { line -> String? in
            guard let r = line.range(of: "Running upgrade ") else { return nil }
            return line[r.upperBound...].components(separatedBy: " -> ").last?.components(separatedBy: ",").first
        }
        #expect(alembicOrder == ["0001", "0002", "0003", "0004", "0005"])

        let dry = try p.migsnap("upgrade", "--dry-run", "--json")
        #expect(dry.status == 0, "\(dry.output)")
        #expect(try steps(dry, p) == alembicOrder)
        #expect(dry.stderr.components(separatedBy: "Notice:").count == 2, "said once: \(dry.stderr)")
        #expect(dry.stderr.contains("0004_contract.py") && dry.stderr.contains("Alembic's own revision map"))
        #expect(!FileManager.default.fileExists(atPath: p.store), "a dry run writes nothing")

        // The computed branch label resolves as in Alembic.
        let labelled = p.dir + "/labelled.db"
        try p.alembic(on: labelled, "upgrade", "contract@head")
        let branch = try p.migsnap("upgrade", "contract@head", "--dry-run", "--json")
        #expect(try steps(branch, p).last == (try p.sqlite("SELECT version_num FROM alembic_version", database: labelled)))
        #expect(try steps(branch, p) == alembicOrder)

        let status = try #require(try p.json(try p.ok("status", "--json").stdout) as? [String: Any])
        #expect(status["pending"] as? [String] == alembicOrder)

        let up = try p.migsnap("upgrade", env: ["MIGSNAP_DRIVER_DEBUG": "1"])
        #expect(up.status == 0, "\(up.output)")
        #expect(up.stderr.components(separatedBy: "Notice:").count == 2, "\(up.stderr)")
        #expect(driverStarts(up.stderr) == 1, "the map came from the warm Alembic: \(up.stderr)")
        #expect(try p.manifests().filter { $0["reason"] as? String == "pre-upgrade" }.map { $0["target_revision"] as? String } == alembicOrder)
        #expect(try p.sqlite("SELECT version_num FROM alembic_version") == "0005")
    }

    @Test func withoutAPythonAlembicTheErrorSaysBoth() throws {
        let p = try project()
        let r = try p.migsnap("upgrade", "--dry-run", "--alembic", "sh -c 'exec alembic \"$@\"' alembic")
        #expect(r.status == 2, "\(r.output)")
        #expect(r.stderr.contains("without running Python") && r.stderr.contains("Alembic's own revision map is not available either"), "\(r.stderr)")
    }
}

@Suite("The driver pins the database on PostgreSQL")
struct DriverPostgresTests {
    @Test func urlReachesAnEnvPyThatIgnoresDatabaseURL() throws {
        let db = try PostgresDatabase()
        let p = try Project()
        try p.editEnvPy("if os.environ.get(\"DATABASE_URL\"):", "if False:")
        let r = try p.migsnap("upgrade", "--url", db.url, env: ["MIGSNAP_DRIVER_DEBUG": "1"])
        #expect(r.status == 0, "\(r.output)")
        #expect(try db.psql("SELECT version_num FROM alembic_version") == "0003")
        #expect(Set(driverPids(r.stderr)).count == 1 && driverPids(r.stderr).count == 3)
        #expect(!FileManager.default.fileExists(atPath: p.database), "the config's SQLite database was not touched")
        #expect(!r.output.contains(db.password))
    }

    @Test func anEnvPyThatConnectsToAnotherDatabaseIsRefused() throws {
        let ours = try PostgresDatabase(), theirs = try PostgresDatabase()
        let p = try Project()
        for db in [ours, theirs] {
            let r = try p.migsnap("upgrade", "0001", "--url", db.url)
            #expect(r.status == 0, "\(r.output)")
        }
        try FileManager.default.removeItem(atPath: p.store)
        try p.editEnvPy("engine_from_config(config.get_section(config.config_ini_section, {}),",
                        "engine_from_config({\"sqlalchemy.url\": \"\(theirs.url)\"},")
        let before = (try ours.state(), try theirs.state())
        let r = try p.migsnap("upgrade", "--url", ours.url)
        #expect(r.status == 4, "\(r.output)")
        #expect(r.stderr.contains("/\(ours.name)") && r.stderr.contains("/\(theirs.name)"), "both named: \(r.stderr)")
        #expect(!r.output.contains(ours.password))
        #expect(try ours.state() == before.0 && theirs.state() == before.1)
        #expect(!FileManager.default.fileExists(atPath: p.store))
    }
}
