import Foundation
import MigsnapCore

/// The database-level half of a restore: a scratch database shaped like the live one, and the
/// one-transaction rename that puts it in the live one's place. All of it runs on a connection to
/// the maintenance database. Scratch and old copies are named `migsnap_<hash of live name>_new_<run>`
/// and `…_old_<run>`, so a later run can find and drop what a killed run left behind. While a run
/// lives, its admin session holds an advisory lock keyed by `<run>`: that is how a later run (of
/// another store, on another machine) tells a live run's scratch copy from a dead run's debris.
final class DatabaseSwap {
    let admin: Connection
    let live: String
    let scratch: String
    let old: String
    private let context: String
    private let debrisPrefix: String
    private var liveExists = false
    private let runToken: String

    /// `existing`: a copy that is already there (a hot copy) to swap in instead of a new scratch database.
    init(admin: Connection, live: String, context: String, existing: String? = nil) {
        self.admin = admin
        self.live = live
        self.context = context
        debrisPrefix = Self.debrisPrefix(live)
        runToken = String(UInt32.random(in: .min ... .max), radix: 16)
        scratch = existing ?? "\(debrisPrefix)_new_\(runToken)"
        old = "\(debrisPrefix)_old_\(runToken)"
    }

    static func debrisPrefix(_ live: String) -> String {
        "migsnap_" + String(stableHash(live), radix: 16)
    }

    private var forceDrop: String { admin.serverVersionNumber >= 130_000 ? " WITH (FORCE)" : "" }

    private func run(_ sql: String, _ parameters: [String] = [], _ what: String) throws -> QueryResult {
        do {
            return try admin.execute(sql, parameters)
        } catch let error as QueryError {
            throw MigsnapError.failed("\(what) for \(context): \(error.message)",
                                      hint: "The database was not changed.")
        }
    }

    /// "mgsc" in ASCII: the first half of the advisory lock a run holds on its scratch copies.
    static let scratchLockClass: Int32 = 0x6D67_7363

    private static func runLockKeys(_ run: Substring) -> [String] {
        [String(scratchLockClass), String(Int32(truncatingIfNeeded: stableHash(String(run))))]
    }

    /// Copies left by killed runs (a half-loaded scratch, or the old database after a swap). A copy
    /// whose run still holds its advisory lock belongs to a live restore and is left alone.
    func dropDebris() throws {
        let names = try run("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", [debrisPrefix + "_"],
                            "Could not list databases")
        for row in 0..<names.rowCount {
            guard let name = names.value(row: row, column: 0),
                  let owner = name.split(separator: "_").last, name != scratch, name != old else { continue }
            let keys = Self.runLockKeys(owner)
            guard try run("SELECT pg_try_advisory_lock($1::int4, $2::int4)", keys, "Could not check \(name)")
                .value(row: 0, column: 0) == "t" else { continue }
            defer { _ = try? admin.execute("SELECT pg_advisory_unlock($1::int4, $2::int4)", keys) }
            _ = try run("DROP DATABASE IF EXISTS \(quoteIdentifier(name))\(forceDrop)", [],
                        "Could not drop \(name), left behind by an interrupted migsnap run")
        }
    }

    /// A new empty database from template0 with the live database's owner, encoding, locale and
    /// database-level settings and privileges (pg_restore without --create does not carry them).
    func createScratch() throws {
        let version = admin.serverVersionNumber
        let provider = version >= 150_000 ? "datlocprovider::text" : "'c'"
        let icu = version >= 170_000 ? "datlocale" : version >= 150_000 ? "daticulocale" : "NULL::text"
        let row = try run("""
            SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype,
                   \(provider), \(icu), d.datconnlimit::text, t.spcname, shobj_description(d.oid, 'pg_database')
            FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = $1
            """, [live], "Could not read the database's settings")
        // Held until the admin session ends, so no other run takes this copy for debris.
        _ = try run("SELECT pg_advisory_lock($1::int4, $2::int4)", Self.runLockKeys(Substring(runToken)),
                    "Could not lock the scratch database's name")
        var create = "CREATE DATABASE \(quoteIdentifier(scratch)) TEMPLATE template0"
        var comment: String?
        if row.rowCount == 1, let owner = row.value(row: 0, column: 0), let encoding = row.value(row: 0, column: 1) {
            liveExists = true
            create += " OWNER \(quoteIdentifier(owner)) ENCODING \(literal(encoding))"
            switch row.value(row: 0, column: 4) {
            case "i":
                create += " LOCALE_PROVIDER icu ICU_LOCALE \(literal(row.value(row: 0, column: 5) ?? ""))"
            case "b":
                create += " LOCALE_PROVIDER builtin BUILTIN_LOCALE \(literal(row.value(row: 0, column: 5) ?? ""))"
            default:
                if version >= 150_000 { create += " LOCALE_PROVIDER libc" }
            }
            create += " LC_COLLATE \(literal(row.value(row: 0, column: 2) ?? "C")) LC_CTYPE \(literal(row.value(row: 0, column: 3) ?? "C"))"
            create += " CONNECTION LIMIT \(Int(row.value(row: 0, column: 6) ?? "-1") ?? -1)"
            // Naming even the default tablespace needs CREATE on it, which ordinary roles lack.
            if let tablespace = row.value(row: 0, column: 7), tablespace != "pg_default" {
                create += " TABLESPACE \(quoteIdentifier(tablespace))"
            }
            comment = row.value(row: 0, column: 8)
        }
        _ = try run(create, [], "Could not create a scratch database (the role needs CREATEDB)")
        do {
            try copyDatabaseLevelState(comment: comment)
        } catch {
            dropScratch()
            throw error
        }
    }

    /// Gives an existing copy (a clone made with the live database as its template, which takes its
    /// encoding, locale and tablespace but not the rest) the live database's owner, connection
    /// limit, comment, privileges and settings, as `createScratch` gives a new one.
    func adoptLiveSettings() throws {
        let row = try run("SELECT pg_get_userbyid(d.datdba), d.datconnlimit::text, shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = $1",
                          [live], "Could not read the database's settings")
        guard row.rowCount == 1, let owner = row.value(row: 0, column: 0) else { return }
        liveExists = true
        let target = quoteIdentifier(scratch)
        _ = try run("ALTER DATABASE \(target) OWNER TO \(quoteIdentifier(owner))", [], "Could not give the hot copy the database's owner")
        _ = try run("ALTER DATABASE \(target) CONNECTION LIMIT \(Int(row.value(row: 0, column: 1) ?? "-1") ?? -1)", [],
                    "Could not copy the connection limit")
        try copyDatabaseLevelState(comment: row.value(row: 0, column: 2))
    }

    private func copyDatabaseLevelState(comment: String?) throws {
        guard liveExists else { return }
        let target = quoteIdentifier(scratch)
        if let comment {
            _ = try run("COMMENT ON DATABASE \(target) IS \(literal(comment))", [], "Could not copy the database comment")
        }
        let acl = try run("""
            SELECT a.grantee = 0, pg_get_userbyid(a.grantee), a.privilege_type, a.is_grantable
            FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1
            """, [live], "Could not read the database's privileges")
        if acl.rowCount > 0 {
            _ = try run("REVOKE ALL ON DATABASE \(target) FROM PUBLIC", [], "Could not copy the database's privileges")
        }
        for r in 0..<acl.rowCount {
            guard let privilege = acl.value(row: r, column: 2), let role = acl.value(row: r, column: 1) else { continue }
            let grantee = acl.value(row: r, column: 0) == "t" ? "PUBLIC" : quoteIdentifier(role)
            let option = acl.value(row: r, column: 3) == "t" ? " WITH GRANT OPTION" : ""
            _ = try run("GRANT \(privilege) ON DATABASE \(target) TO \(grantee)\(option)", [], "Could not copy the database's privileges")
        }
        let settings = try run("""
            SELECT s.setrole = 0, pg_get_userbyid(s.setrole), split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)
            FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
            WHERE d.datname = $1
            """, [live], "Could not read the database's settings")
        for r in 0..<settings.rowCount {
            guard let name = settings.value(row: r, column: 2), let value = settings.value(row: r, column: 3),
                  let role = settings.value(row: r, column: 1) else { continue }
            let scope = settings.value(row: r, column: 0) == "t" ? "DATABASE \(target)" : "ROLE \(quoteIdentifier(role)) IN DATABASE \(target)"
            _ = try run("ALTER \(scope) SET \(quoteIdentifier(name)) TO \(settingValue(name, value))", [],
                        "Could not copy the database setting \(name)")
        }
    }

    /// List settings are stored already quoted element by element ("$user", public); others are one literal.
    private func settingValue(_ name: String, _ value: String) -> String {
        let lists = ["search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries", "shared_preload_libraries"]
        return lists.contains(name.lowercased()) && !value.contains(";") ? value : literal(value)
    }

    private func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// Ends the live database's sessions, then renames it away and the scratch copy into its place
    /// in one transaction. A session that connects between the two steps makes the rename fail
    /// with object_in_use (55006); then the whole step is tried again.
    func swapIn() throws {
        let terminate = admin.serverVersionNumber >= 140_000 ? "pg_terminate_backend(pid, 5000)" : "pg_terminate_backend(pid)"
        for attempt in 1...50 {
            do {
                if liveExists {
                    _ = try admin.execute("SELECT \(terminate) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [live])
                }
                _ = try admin.execute("BEGIN")
                if liveExists {
                    _ = try admin.execute("ALTER DATABASE \(quoteIdentifier(live)) RENAME TO \(quoteIdentifier(old))")
                }
                _ = try admin.execute("ALTER DATABASE \(quoteIdentifier(scratch)) RENAME TO \(quoteIdentifier(live))")
                _ = try admin.execute("COMMIT")
                return
            } catch let error as QueryError {
                _ = try? admin.execute("ROLLBACK")
                if error.sqlState == "55006" && attempt < 50 {
                    usleep(100_000)
                    continue
                }
                let hint = error.sqlState == "42501"
                    ? "Ending other sessions needs superuser or membership in pg_signal_backend; or stop the clients first. The database was not changed."
                    : "The database was not changed."
                throw MigsnapError.failed("Could not swap the restored copy into \(context): \(error.message)", hint: hint)
            }
        }
    }

    /// Best effort: a failure leaves debris that the next restore drops. Returns why it failed.
    @discardableResult
    func dropScratch() -> String? {
        do {
            _ = try admin.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(scratch))\(forceDrop)")
            return nil
        } catch let error as QueryError {
            return UserText.line(error.message)
        } catch {
            return UserText.line("\(error)")
        }
    }

    func dropOld() {
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(old))\(forceDrop)")
    }
}
