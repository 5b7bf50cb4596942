import Foundation
import MigsnapCore
@testable import MigsnapPostgres
import Testing

/// An application database with the things restores get wrong: an extension type, an enum, a
/// non-public schema, views, indexes, foreign keys, sequences, and a version table.
func loadFixture(_ db: TestDatabase, versionTable: VersionTable, revision: String = "abc123") throws {
    try db.sql("""
        CREATE EXTENSION citext;
        CREATE SCHEMA app;
        CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TABLE public.users (id serial PRIMARY KEY, email citext UNIQUE NOT NULL, mood app.mood, note text);
        CREATE TABLE app.orders (id bigserial PRIMARY KEY, user_id int REFERENCES public.users (id),
                                 amount numeric(10, 2) NOT NULL);
        CREATE INDEX orders_amount ON app.orders (amount);
        CREATE VIEW app.big_orders AS SELECT * FROM app.orders WHERE amount > 50;
        INSERT INTO public.users (email, mood, note)
            SELECT 'User' || g || '@Example.com', (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::app.mood, repeat('n', g)
            FROM generate_series(1, 100) g;
        INSERT INTO app.orders (user_id, amount) SELECT g % 100 + 1, g * 0.37 FROM generate_series(1, 300) g;
        CREATE SCHEMA IF NOT EXISTS meta;
        CREATE TABLE \(qualified(versionTable)) (version_num varchar(32) PRIMARY KEY);
        INSERT INTO \(qualified(versionTable)) VALUES ('\(revision)');
        """)
}

/// What a bad migration does: loses rows and a column, adds objects of every kind, moves sequences.
func damage(_ db: TestDatabase, versionTable: VersionTable) throws {
    try db.sql("""
        DELETE FROM app.orders WHERE id % 3 = 0;
        ALTER TABLE public.users DROP COLUMN note;
        CREATE TABLE public.added (x int);
        CREATE VIEW public.added_view AS SELECT 1 AS one;
        CREATE SCHEMA extra;
        CREATE TYPE extra.color AS ENUM ('red');
        ALTER TYPE app.mood ADD VALUE 'angry';
        CREATE EXTENSION pg_trgm;
        CREATE INDEX users_email_trgm ON public.users USING gin ((email::text) gin_trgm_ops);
        SELECT setval('app.orders_id_seq', 10000);
        SELECT nextval('public.users_id_seq');
        UPDATE \(qualified(versionTable)) SET version_num = 'def456';
        """)
}

@Suite("PostgreSQL snapshot and restore")
struct SnapshotRestoreTests {
    @Test("restore brings back the exact schema, rows and sequences; later objects are gone",
          arguments: [VersionTable(), VersionTable(name: "schema_version", schema: "meta")])
    func exactRestore(versionTable: VersionTable) throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: versionTable)
        let before = try db.state()
        let capture = try db.engine.snapshot(into: db.payload(), versionTable: versionTable, progress: SilentProgress())
        #expect(capture.revisions == ["abc123"])

        try damage(db, versionTable: versionTable)
        #expect(try db.state() != before)
        #expect(try db.engine.currentRevisions(versionTable: versionTable) == ["def456"])

        try db.engine.restore(payload: db.payload(), expectedRevisions: ["abc123"], versionTable: versionTable, progress: SilentProgress())
        #expect(try db.state() == before)
        #expect(try db.engine.currentRevisions(versionTable: versionTable) == ["abc123"])
        #expect(try db.sql("SELECT to_regclass('public.added') IS NULL, to_regnamespace('extra') IS NULL") == ["t"])
        #expect(try db.sql("SELECT extname FROM pg_extension ORDER BY 1") == ["citext", "plpgsql"])
        #expect(try db.sql("SELECT count(*) FROM app.orders") == ["300"])
        #expect(try db.sql("SELECT count(*) FROM pg_database WHERE starts_with(datname, '\(DatabaseSwap.debrisPrefix(db.name))')") == ["0"])
    }

    @Test("a snapshot is a 0600 pg_dump custom archive whose revisions inspect reads back")
    func snapshotFile() throws {
        let db = try TestDatabase()
        let table = VersionTable(name: "alembic_version", schema: "meta")
        try loadFixture(db, versionTable: table)
        try db.sql("INSERT INTO meta.alembic_version VALUES ('branch2')")
        let capture = try db.engine.snapshot(into: db.payload(), versionTable: table, progress: SilentProgress())
        #expect(capture.revisions == ["abc123", "branch2"])

        let attributes = try FileManager.default.attributesOfItem(atPath: db.payload().path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect((attributes[.size] as? NSNumber)?.int64Value == capture.rawBytes)
        let header = try FileHandle(forReadingFrom: db.payload()).read(upToCount: 5)
        #expect(header == Data("PGDMP".utf8))

        let content = try db.engine.inspect(payload: db.payload(), versionTable: table, progress: SilentProgress())
        #expect(content.revisions == ["abc123", "branch2"])
        // The plain tool reads it, as the design promises.
        let listing = try db.runTool("pg_restore", ["--list", db.payload().path])
        #expect(listing.contains("TABLE DATA app orders"))
    }

    @Test("a database at base snapshots and restores with no revisions")
    func baseDatabase() throws {
        let db = try TestDatabase()
        try db.sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        let capture = try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        #expect(capture.revisions == [])
        try db.sql("DROP TABLE t")
        try db.engine.restore(payload: db.payload(), expectedRevisions: [], versionTable: VersionTable(), progress: SilentProgress())
        #expect(try db.sql("SELECT x FROM t") == ["1"])
    }

    @Test("rowCounts counts every user table exactly, schema-qualified")
    func rowCounts() throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: VersionTable())
        let counts = try db.engine.rowCounts()
        #expect(counts == ["public.users": 100, "app.orders": 300, "public.alembic_version": 1])
    }

    enum Corruption: String, CaseIterable {
        case flippedByte, truncated
    }

    @Test("a damaged payload fails inspection and a restore of it leaves the database untouched",
          arguments: Corruption.allCases)
    func corruptedPayload(corruption: Corruption) throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: VersionTable())
        // Enough incompressible data that a byte in the middle lands in a compressed data block.
        try db.sql("CREATE TABLE blob AS SELECT md5(g::text) AS h FROM generate_series(1, 20000) g")
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        var bytes = try Data(contentsOf: db.payload())
        switch corruption {
        case .flippedByte: bytes[bytes.count * 2 / 3] ^= 0xFF
        case .truncated: bytes = bytes.prefix(bytes.count / 2)
        }
        try bytes.write(to: db.payload())
        try damage(db, versionTable: VersionTable())
        let before = try db.state()

        #expect {
            try db.engine.inspect(payload: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        } throws: { error in
            guard case .verificationFailed = error as? MigsnapError else { return false }
            return true
        }
        #expect(throws: MigsnapError.self) {
            try db.engine.restore(payload: db.payload(), expectedRevisions: ["abc123"], versionTable: VersionTable(), progress: SilentProgress())
        }
        #expect(try db.state() == before)
    }

    @Test("a payload at another revision than expected is refused before anything changes")
    func unexpectedRevision() throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: VersionTable())
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        try damage(db, versionTable: VersionTable())
        let before = try db.state()
        #expect(throws: MigsnapError.verificationFailed(
            "snap.pgdump holds revision abc123, expected zzz; the database was not changed.")) {
            try db.engine.restore(payload: db.payload(), expectedRevisions: ["zzz"], versionTable: VersionTable(), progress: SilentProgress())
        }
        #expect(try db.state() == before)
    }

    @Test("restore onto a database that does not exist creates it, with the snapshot's content")
    func restoreToMissingDatabase() throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: VersionTable())
        let before = try db.state()
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        try Connection(db.server).execute("DROP DATABASE \(quoteIdentifier(db.name)) WITH (FORCE)")
        #expect(try db.engine.databaseExists() == false)

        try db.engine.restore(payload: db.payload(), expectedRevisions: ["abc123"], versionTable: VersionTable(), progress: SilentProgress())
        #expect(try db.engine.databaseExists())
        #expect(try db.state() == before)
    }

    @Test("copies left by a killed restore are dropped by the next one")
    func debrisFromKilledRun() throws {
        let db = try TestDatabase()
        try loadFixture(db, versionTable: VersionTable())
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        let debris = DatabaseSwap(admin: try Connection(db.server), live: db.name, context: "").scratch
        try Connection(db.server).execute("CREATE DATABASE \(quoteIdentifier(debris))")
        let leftover = try Connection(db.target.with(database: debris))

        try db.engine.restore(payload: db.payload(), expectedRevisions: ["abc123"], versionTable: VersionTable(), progress: SilentProgress())
        #expect(try db.sql("SELECT count(*) FROM pg_database WHERE datname = '\(debris)'") == ["0"])
        #expect(throws: QueryError.self) { try leftover.execute("SELECT 1") }
    }

    @Test("a role with only CREATEDB snapshots and restores its own database")
    func nonSuperuser() throws {
        let db = try TestDatabase(server: "MIGSNAP_TEST_PG_APP_URL")
        #expect(try db.sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == ["f"])
        try db.sql("CREATE SCHEMA app; CREATE TABLE app.t (id serial PRIMARY KEY, v text); INSERT INTO app.t (v) VALUES ('a'), ('b');")
        try db.sql("CREATE TABLE alembic_version (version_num varchar(32)); INSERT INTO alembic_version VALUES ('r1')")
        let before = try db.state()
        try db.engine.snapshot(into: db.payload(), versionTable: VersionTable(), progress: SilentProgress())
        try db.sql("DELETE FROM app.t; CREATE TABLE later (x int)")
        try db.engine.restore(payload: db.payload(), expectedRevisions: ["r1"], versionTable: VersionTable(), progress: SilentProgress())
        #expect(try db.state() == before)
    }
}
