import Foundation
import Testing

/// Where the tests find a real Alembic: MIGSNAP_TEST_VENV, else `<package root>/.venv`.
enum AlembicVenv {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The venv's python, or a recorded failure saying how to create it (never a silent skip).
    static func python() throws -> String {
        let venv = ProcessInfo.processInfo.environment["MIGSNAP_TEST_VENV"] ?? packageRoot.appendingPathComponent(".venv").path
        let python = (venv as NSString).appendingPathComponent("bin/python")
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record(
                """
                No Python venv with Alembic at \(venv). Create one: \
                python3 -m venv .venv && .venv/bin/pip install alembic sqlalchemy (or set MIGSNAP_TEST_VENV)
                """)
            throw CancellationError()
        }
        return python
    }

    /// Runs `python -c script` with `input` on stdin; returns stdout, failing on a non-zero exit.
    static func run(_ arguments: [String], input: Data = Data(), currentDirectory: String? = nil) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try python())
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Drain both pipes while writing stdin, so neither side can block on a full pipe.
        let collector = OutputCollector()
        let group = DispatchGroup()
        for (pipe, keyPath) in [(stdout, \OutputCollector.out), (stderr, \OutputCollector.err)] {
            group.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collector.set(keyPath, data)
                group.leave()
            }
        }
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        group.wait()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ProcessFailure(
                status: process.terminationStatus, stderr: String(decoding: collector.get(\.err), as: UTF8.self))
        }
        return collector.get(\.out)
    }

    struct ProcessFailure: Error, CustomStringConvertible {
        var status: Int32
        var stderr: String
        var description: String { "python exited with \(status): \(stderr)" }
    }

    private final class OutputCollector: @unchecked Sendable {
        private let lock = NSLock()
        var out = Data()
        var err = Data()
        func set(_ keyPath: ReferenceWritableKeyPath<OutputCollector, Data>, _ data: Data) {
            lock.withLock { self[keyPath: keyPath] = data }
        }
        func get(_ keyPath: KeyPath<OutputCollector, Data>) -> Data {
            lock.withLock { self[keyPath: keyPath] }
        }
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(path: String = (NSTemporaryDirectory() as NSString).appendingPathComponent("migsnap-alembic-\(UUID().uuidString)")) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ relativePath: String, _ contents: String) throws {
        let url = URL(fileURLWithPath: path).appendingPathComponent(relativePath)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: url, atomically: false, encoding: .utf8)
    }

    func sub(_ relativePath: String) -> String {
        (path as NSString).appendingPathComponent(relativePath)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
