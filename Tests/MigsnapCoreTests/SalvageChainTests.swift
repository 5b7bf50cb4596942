import Foundation
import Testing
import MigsnapCore

/// Which snapshot is S1 for a salvage: the unbroken run of snapshots after S0 up to the current
/// revision, or a refusal. A pure function of the manifests, tested table-driven.
@Suite("Salvage: finding the state right after the migration (S1)")
struct SalvageChainTests {
    /// `pre:0002>0003` is a pre-upgrade snapshot at 0002 before the step to 0003; `post:0003`,
    /// `manual:0003`, `pre-restore:0003` the others; `other-db:post:0003` one of another database.
    static func manifests(_ specs: [String]) -> [Manifest] {
        specs.enumerated().map { index, spec in
            var parts = spec.split(separator: ":").map(String.init)
            let database = parts.first == "other-db" ? "/other.db" : "/app.db"
            if parts.first == "other-db" { parts.removeFirst() }
            let steps = parts[1].split(separator: ">").map(String.init)
            let reason: SnapshotReason = switch parts[0] {
            case "pre": .preUpgrade
            case "post": .postUpgrade
            case "pre-restore": .preRestore
            default: .manual
            }
            return Manifest(id: String(format: "20261127-1000%02d-000", index), createdAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(index)),
                            engine: .sqlite, revisions: steps[0] == "base" ? [] : [steps[0]], reason: reason,
                            targetRevision: steps.count > 1 ? steps[1] : nil, rawBytes: 1, storedBytes: 1, sha256: "",
                            database: database, file: "x")
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var specs: [String]
        /// Index of S0, the current revision, and the index of S1 or a word of the refusal.
        var s0: Int
        var current: String
        var expected: Result
        enum Result: Sendable { case s1(Int), refused(String) }
        var testDescription: String { "\(specs.joined(separator: " ")) from \(s0) at \(current)" }
    }

    static let cases: [Case] = [
        Case(specs: ["pre:0002>0003", "post:0003"], s0: 0, current: "0003", expected: .s1(1)),
        // A run of two steps: through the next step's pre-upgrade snapshot.
        Case(specs: ["pre:0001>0002", "pre:0002>0003", "post:0003"], s0: 0, current: "0003", expected: .s1(2)),
        // The next step failed and was restored: its pre-upgrade snapshot is the state right after.
        Case(specs: ["pre:0002>0003", "pre:0003>0004"], s0: 0, current: "0003", expected: .s1(1)),
        // Snapshots of another database in between do not break the run; later ones do not matter.
        Case(specs: ["pre:0002>0003", "other-db:post:0009", "post:0003", "manual:0003", "pre-restore:0003"], s0: 0, current: "0003", expected: .s1(2)),
        // The post-upgrade snapshot pruned, a manual one next: it holds the application's writes.
        Case(specs: ["pre:0002>0003", "manual:0003"], s0: 0, current: "0003", expected: .refused("not the state right after")),
        // The last step's state after is missing (its post-upgrade snapshot failed or was pruned).
        Case(specs: ["pre:0002>0003", "pre:0003>0004"], s0: 0, current: "0004", expected: .refused("No snapshot was taken right after the migration to 0004")),
        Case(specs: ["pre:0002>0003"], s0: 0, current: "0003", expected: .refused("No snapshot was taken right after")),
        Case(specs: ["manual:0002", "post:0003"], s0: 0, current: "0003", expected: .refused("not taken right before a migration step")),
        // The database moved on in a later run: the first run's post-upgrade snapshot ends the walk.
        Case(specs: ["pre:0001>0002", "post:0002", "pre:0002>0003", "post:0003"], s0: 0, current: "0003", expected: .refused("moved on")),
        // A step that did not land where it said (another head): not its state after.
        Case(specs: ["pre:0002>0003", "post:0003b"], s0: 0, current: "0003b", expected: .refused("not the state right after")),
    ]

    @Test(arguments: cases)
    func stateAfter(_ c: Case) throws {
        let all = Self.manifests(c.specs)
        switch c.expected {
        case .s1(let index):
            #expect(try SalvageOperation.stateAfter(all[c.s0], in: all, current: [c.current]).id == all[index].id)
        case .refused(let words):
            do {
                let found = try SalvageOperation.stateAfter(all[c.s0], in: all, current: [c.current])
                Issue.record("expected a refusal, got \(found.id)")
            } catch let error as MigsnapError {
                guard case .refused = error else { Issue.record("not a refusal: \(error)"); return }
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
    }
}
