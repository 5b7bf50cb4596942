import Foundation
@testable import MigsnapCore
import Testing

/// The listing index on every backend: written under the lock, read back by hand, and never taken
/// at its word where it disagrees with the manifests — damaged, of another format, or edited.
@Suite("Listing index")
struct ListingIndexTests {
    static let ids = ["20261126-100000-000", "20261126-110000-000", "20261126-120000-000"]

    /// A store holding three snapshots, committed under the lock so that its release wrote the index.
    func store(_ fixture: Fixture) throws -> (SnapshotStore, [Manifest]) {
        let store = SnapshotStore(backend: try fixture.initialized())
        let lock = try store.lock(purpose: "test")
        var committed: [Manifest] = []
        for (n, id) in Self.ids.enumerated() {
            let draft = Manifest(id: id, createdAt: Date(timeIntervalSince1970: 1_795_000_000 + Double(n) * 3600), engine: .sqlite,
                                 revisions: ["rev\(n)"], reason: .preUpgrade, targetRevision: "rev\(n + 1)", rawBytes: 10, storedBytes: 0,
                                 sha256: "", tags: n == 1 ? ["release"] : [], note: "n\(n)", database: "/srv/app.db", file: "\(id).sqlite.gz")
            committed.append(try store.commit(id: id, engine: .sqlite, scratch: try store.makeScratch()) { file in
                try Data("payload \(n)".utf8).write(to: file)
                return draft
            })
        }
        lock.release()
        return (store, committed)
    }

    func index(_ store: SnapshotStore) throws -> StoreIndex? {
        try store.backend.read(ObjectName.index).flatMap(StoreIndex.init(decoding:))
    }

    @Test(arguments: BackendKind.allCases)
    func theLockWritesTheIndexAndListingsReadIt(_ kind: BackendKind) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let (store, committed) = try store(fixture)
        let index = try #require(try index(store))
        #expect(index.complete)
        #expect(index.entries.mapValues(\.manifest) == Dictionary(uniqueKeysWithValues: committed.map { (ObjectName.manifest(id: $0.id), $0) }))
        let scan = try store.scan()
        #expect(scan.manifests == committed)
        #expect(scan.damaged.isEmpty)
    }

    @Test(arguments: BackendKind.allCases, [
        "{",
        #"{"complete":true,"entries":{},"format":1}"#,
        "half",
    ])
    func aDamagedOrForeignIndexIsRebuiltFromTheManifests(_ kind: BackendKind, _ replacement: String) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let (store, committed) = try store(fixture)
        let good = try #require(try store.backend.read(ObjectName.index))
        try store.backend.write(ObjectName.index, data: replacement == "half" ? good.prefix(good.count / 2) : Data(replacement.utf8))
        #expect(try store.manifests() == committed)
        try store.lock(purpose: "test").release()
        let rebuilt = try #require(try index(store))
        #expect(rebuilt.complete)
        #expect(rebuilt.entries.values.map(\.manifest).sorted { $0.id < $1.id } == committed)
    }

    enum Edit: String, CaseIterable, CustomTestStringConvertible {
        case anotherID, anotherFile, unknownFormatVersion, notAManifestName
        var testDescription: String { rawValue }
    }

    /// An entry that would not pass as the manifest its name says is not used: the manifest is read.
    @Test(arguments: BackendKind.allCases, Edit.allCases)
    func anEditedIndexEntryIsNotBelieved(_ kind: BackendKind, _ edit: Edit) throws {
        let fixture = try kind.make()
        defer { withExtendedLifetime(fixture) {} }
        let (store, committed) = try store(fixture)
        var index = try #require(try index(store))
        let name = ObjectName.manifest(id: Self.ids[1])
        var entry = try #require(index.entries[name])
        switch edit {
        case .anotherID: entry.manifest.id = "20261126-130000-000"
        case .anotherFile: entry.manifest.file = "20261126-130000-000.sqlite.gz"
        case .unknownFormatVersion: entry.manifest.formatVersion = 99
        case .notAManifestName:
            index.entries[name] = nil
            index.entries["index.json"] = entry
        }
        if edit != .notAManifestName { index.entries[name] = entry }
        try store.backend.write(ObjectName.index, data: index.encoded())
        let scan = try store.scan()
        #expect(scan.manifests == committed)
        #expect(scan.damaged.isEmpty, "\(scan.damaged)")
        // The next writer leaves an index without the edited entry, one a reader can take as it stands.
        let lock = try store.lock(purpose: "test")
        var pinned = committed[0]
        pinned.pinned = true
        try store.write(pinned)
        lock.release()
        let rewritten = try #require(try self.index(store))
        #expect(rewritten.complete)
        #expect(rewritten.entries.keys.sorted() == Self.ids.map { ObjectName.manifest(id: $0) })
        #expect(rewritten.entries.values.map(\.manifest).sorted { $0.id < $1.id } == [pinned] + committed.dropFirst())
    }
}
