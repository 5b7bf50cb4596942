/// Why a salvage cannot be exact (exit 4, before any change), worded once for every engine.
/// Table names are the engine's own (`orders` on SQLite, `public.orders` on PostgreSQL).
public enum SalvageRefusal {
    static let hint = "Use `migsnap rollback` without --keep-new to restore the snapshot as it is, or `migsnap diff` to see the rows."

    private static func refused(_ message: String) -> MigsnapError { .refused(message, hint: hint) }

    public static func tableOnlyLive(_ table: String) -> MigsnapError {
        refused("Table \(table) is in the live database but was not there right after the migration (S1): salvage cannot place its rows in S0's schema.")
    }

    public static func tableGoneSince(_ table: String) -> MigsnapError {
        refused("Table \(table) was there right after the migration (S1) but is missing from the live database: salvage cannot tell what became of its rows.")
    }

    public static func renamedTable(_ table: String, to other: String) -> MigsnapError {
        refused("Table \(table) is missing in S1 and \(other), with the same columns, is new there: the migration seems to have renamed it, and salvage cannot carry rows across a rename.")
    }

    public static func renamedColumn(_ table: String, _ column: String, to other: String) -> MigsnapError {
        refused("Column \(table).\(column) is missing in S1 and \(table).\(other), of the same type, is new there: the migration seems to have renamed it, and salvage cannot carry values across a rename.")
    }

    /// `inS1`: the key column is missing in S1 (else from the live database).
    public static func keyColumnMissing(_ table: String, _ column: String, inS1: Bool) -> MigsnapError {
        refused("Table \(table) has no usable key: its primary key column \(column) is missing \(inS1 ? "in S1" : "from the live database"), so rows cannot be matched.")
    }

    public static func keylessChangedOnBothSides(_ table: String) -> MigsnapError {
        refused("Table \(table) has no primary key, and both the migration and the application changed its rows: salvage cannot match them exactly.")
    }

    public static func typeChanged(_ table: String, _ column: String, was: String, now: String) -> MigsnapError {
        refused("Column \(table).\(column) is \(was) in S0 but \(now) now: the values written since cannot be carried back exactly.")
    }

    /// `reason`: the database's own words for the constraint that failed.
    public static func doesNotFit(_ table: String, _ reason: String) -> MigsnapError {
        refused("The application's rows since S1 do not fit table \(table) as S0 has it (\(reason)): the result would break a constraint, so nothing was changed.")
    }

    /// A row by its key, for plans and refusals: `id=3`, `(a='x', b=2)`.
    public static func row(_ columns: [String], _ values: [String?]) -> String {
        let parts = zip(columns, values).map { "\($0)=\($1 ?? "NULL")" }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: ", ") + ")"
    }

    /// `rows`: each as `orders id=1 refers to a missing row of customers`.
    public static func brokenForeignKeys(_ rows: [String], more: Int) -> MigsnapError {
        refused("The merged database would break foreign keys: \(rows.joined(separator: "; "))\(more > 0 ? " (and \(more) more)" : ""). Nothing was changed.")
    }
}
