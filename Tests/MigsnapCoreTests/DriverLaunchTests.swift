import Foundation
import Testing
@testable import MigsnapCore

/// How the interpreter for the Alembic driver is found from the Alembic command.
@Suite("Alembic driver: the interpreter")
final class DriverLaunchTests {
    let bin: String

    init() throws {
        bin = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-launch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for program in ["python3", "poetry", "uv"] { try script(program, "#!/bin/sh\n") }
    }

    deinit { try? FileManager.default.removeItem(atPath: bin) }

    func script(_ name: String, _ text: String) throws {
        let path = bin + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    func resolve(_ command: String) throws -> DriverLaunch? {
        try DriverLaunch.resolve(try CommandWords.split(command), path: bin, workingDirectory: "/project")
    }

    @Test func theShebangOfAlembicOnPath() throws {
        try script("alembic", "#!/venv/bin/python3\nimport sys\n")
        #expect(try resolve("alembic -n dev") == DriverLaunch(interpreter: ["/venv/bin/python3"], alembicOptions: ["-n", "dev"],
                                                              directChild: true, searchPathHead: bin))
        try script("alembic", "#!/usr/bin/env python3\n")
        #expect(try resolve(bin + "/alembic")?.interpreter == ["/usr/bin/env", "python3"])
        // pip's form for interpreter paths too long for a #! line.
        try script("alembic", "#!/bin/sh\n'''exec' \"/a very/long/bin/python3\" \"$0\" \"$@\"\n' '''\n")
        #expect(try resolve("alembic")?.interpreter == ["/a very/long/bin/python3"])
    }

    @Test func pythonDashMAndRunners() throws {
        #expect(try resolve("python3 -m alembic -x a=b") == DriverLaunch(interpreter: ["python3"], alembicOptions: ["-x", "a=b"],
                                                                       directChild: true, searchPathHead: "/project"))
        #expect(try resolve("poetry run alembic") == DriverLaunch(interpreter: ["poetry", "run", "python"], alembicOptions: [],
                                                               directChild: false, searchPathHead: nil))
        #expect(try resolve("uv run --project app alembic -n x")?.interpreter == ["uv", "run", "--project", "app", "python"])
        #expect(try resolve("uv run --project app alembic -n x")?.alembicOptions == ["-n", "x"])
    }

    @Test func whatCannotBeDrivenOrFound() throws {
        try script("alembic", "#!/bin/sh\nexec something \"$@\"\n")
        #expect(try resolve("alembic") == nil)
        #expect(try resolve("python3 my_wrapper.py") == nil)
        #expect(throws: MigsnapError.self) { try resolve("no-such-alembic") }
        #expect(throws: MigsnapError.self) { try resolve("/nowhere/bin/alembic") }
    }

    @Test func sameDatabase() throws {
        let a = try DatabaseURL.parse("postgresql://u:secret@db:5432/app")
        #expect(AlembicRunner.sameDatabase(a, try DatabaseURL.parse("postgresql+psycopg2://other@db/app")))
        #expect(!AlembicRunner.sameDatabase(a, try DatabaseURL.parse("postgresql://u@db/app_test")))
        #expect(!AlembicRunner.sameDatabase(a, try DatabaseURL.parse("sqlite:////app.db")))
        #expect(AlembicRunner.sameDatabase(try DatabaseURL.parse("sqlite:///x/../app.db", workingDirectory: "/p"),
                                           try DatabaseURL.parse("sqlite:////p/app.db")))
    }
}
