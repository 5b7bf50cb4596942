import Foundation
import MigsnapCore
import MigsnapSQLite
import Testing

/// The restore operation on a real store and a real SQLite database, between its plan and its change.
@Suite("Restore operation (SQLite)")
struct RestoreOperationTests {
    @Test("a database migrated between the plan and the change is not restored, and nothing is written")
    func aDatabaseThatMovedSinceThePlanIsRefused() throws {
        let directory = try TemporaryDirectory()
        let live = directory.file("app.db")
        try makeDatabase(live)
        let engine = SQLiteEngine(path: live, threads: 2)
        let store = SnapshotStore(directory: directory.file("store"))
        let versionTable = VersionTable()
        // Held as the CLI holds it around a restore.
        let lock = try store.lock(purpose: "test")
        defer { lock.release() }
        let manifest = try TakeSnapshot.run(engine: engine, store: store, versionTable: versionTable,
                                            request: SnapshotRequest(reason: .manual), progress: SilentProgress())
        try sqlite(live, "DELETE FROM orders WHERE id > 100; UPDATE alembic_version SET version_num = 'def456';")
        let operation = RestoreOperation(store: store, manifest: manifest, engine: engine, versionTable: versionTable,
                                         safetySnapshot: true, guarding: (nil, "restore \(manifest.id)"),
                                         undone: { current, _ in current })
        let prepared = try operation.prepare(progress: SilentProgress())
        #expect(prepared.plan.current == ["def456"])

        // Another machine's run (or the application) migrates the database while the plan waits for a yes.
        try sqlite(live, "UPDATE alembic_version SET version_num = 'fed789';")
        let before = try fileBytes(live)
        #expect(performing: { _ = try operation.apply(prepared, progress: SilentProgress()) }, throws: { error in
            guard case .refused(let message, _) = error as? MigsnapError else { return false }
            return message.contains("moved from def456 to fed789") && message.contains("nothing was restored")
        })
        #expect(try fileBytes(live) == before)
        #expect(try store.manifests().map(\.id) == [manifest.id], "no safety snapshot was taken")
        #expect(try GuardBook(store: store).load().isEmpty, "no guard was recorded")

        // With the plan made again, the same restore goes through.
        let again = try operation.prepare(progress: SilentProgress())
        _ = try operation.apply(again, progress: SilentProgress())
        #expect(try engine.currentRevisions(versionTable: versionTable) == ["abc123"])
    }
}
