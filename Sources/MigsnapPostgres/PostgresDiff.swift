import Foundation
import MigsnapCore

extension PostgresEngine {
    public func diff(_ a: URL, with b: URL?, scratch: ScratchSpace, scope: DiffScope, progress: ProgressReporter) throws -> DatabaseDiff {
        throw MigsnapError.invalidInput("`migsnap diff` does not compare PostgreSQL snapshots yet; it compares SQLite ones.",
                                        hint: "`migsnap restore ID --dry-run` counts rows per table against the live database.")
    }
}
