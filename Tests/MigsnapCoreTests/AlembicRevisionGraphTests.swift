import Foundation
import MigsnapCore
import Testing

/// Hand-made graphs with answers worked out from Alembic's rules; the conformance suite checks
/// the same code against Alembic itself on random graphs.
@Suite("Alembic revision graph")
struct AlembicRevisionGraphTests {
    /// `spec` lines: "id: down1 down2 | labels | depends".
    static func graph(_ spec: [String]) throws -> RevisionGraph {
        try RevisionGraph(
            spec.map { line in
                let parts = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                let head = parts[0].split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let words = { (i: Int) in i < parts.count ? parts[i].split(separator: " ").map(String.init) : [] }
                return RevisionScript(
                    revision: head[0], downRevisions: head.count > 1 ? head[1].split(separator: " ").map(String.init) : [],
                    branchLabels: words(1), dependsOn: words(2), path: "versions/\(head[0]).py")
            })
    }

    /// a1111 → b2222 → c3333 → d4444
    static let linear = ["a1111:", "b2222: a1111", "c3333: b2222", "d4444: c3333"]
    /// base → (left1 → left2 [label left]) and (right1 [label right]); merge m0000 of left2 and right1
    static let merged = [
        "base0:", "left1: base0", "left2: left1 | left", "right1: base0 | right", "m0000: left2 right1",
    ]

    private func invalidInput(_ body: () throws -> some Any) -> (message: String, hint: String?)? {
        do {
            _ = try body()
            Issue.record("expected an error")
        } catch let error as MigsnapError {
            guard case .invalidInput(let message, let hint) = error else {
                Issue.record("expected invalidInput, got \(error)")
                return nil
            }
            return (message, hint)
        } catch {
            Issue.record("unexpected error \(error)")
        }
        return nil
    }

    @Test func headsAndBases() throws {
        let g = try Self.graph(Self.merged + ["other:", "tip: other"])
        #expect(g.heads == ["m0000", "tip"])
        #expect(g.bases == ["base0", "other"])
        #expect(g.script("left2")?.branchLabels == ["left"])
        #expect(g.script("nope") == nil)
    }

    @Test(arguments: [
        ("head", [String](), ["d4444"]),
        ("heads", [], ["d4444"]),
        ("base", ["b2222"], []),
        ("+1", [], ["a1111"]),
        ("+2", ["a1111"], ["c3333"]),
        ("c3333", [], ["c3333"]),
        ("c333", [], ["c3333"]),
        ("b2222+2", [], ["d4444"]),
        ("d4444-2", [], ["b2222"]),
        ("head-1", [], ["c3333"]),
    ])
    func upgradeTargets(target: String, current: [String], expected: [String]) throws {
        #expect(try Self.graph(Self.linear).resolveUpgradeTarget(target, current: current) == expected)
    }

    @Test(arguments: [
        ("-1", ["d4444"], ["c3333"]),
        ("-3", ["d4444"], ["a1111"]),
        ("-4", ["d4444"], []),
        ("base", ["d4444"], []),
        ("b222", ["d4444"], ["b2222"]),
        ("a1111+1", ["d4444"], ["b2222"]),
    ])
    func downgradeTargets(target: String, current: [String], expected: [String]) throws {
        #expect(try Self.graph(Self.linear).resolveDowngradeTarget(target, current: current) == expected)
    }

    @Test func upgradeStepsRecordTheRevisionsBeforeEachStep() throws {
        let g = try Self.graph(Self.merged)
        let steps = try g.upgradeSteps(current: ["left1"], target: "head")
        // Alembic walks the merge's parents in the order written, then applies in reverse.
        #expect(steps.map(\.to) == ["right1", "left2", "m0000"])
        #expect(steps.map(\.from) == [["left1"], ["left1", "right1"], ["left2", "right1"]])
        #expect(try g.upgradeSteps(current: ["m0000"], target: "heads").isEmpty)
        let json = String(decoding: try JSONEncoder().encode(UpgradeStep(from: ["a"], to: "b")), as: UTF8.self)
        #expect(json == #"{"from":["a"],"to":"b"}"# || json == #"{"to":"b","from":["a"]}"#)
    }

    @Test func dependenciesAreAppliedBeforeTheirDependents() throws {
        // x2 depends on y1 (by label) and on z1 (by id), on other bases.
        let g = try Self.graph(["x1:", "x2: x1 | | ylabel z1", "y1: | ylabel", "z1:"])
        let steps = try g.upgradeSteps(current: [], target: "x2")
        let order = steps.map(\.to)
        #expect(Set(order) == ["x1", "x2", "y1", "z1"])
        for (index, step) in steps.enumerated() {
            let script = try #require(g.script(step.to))
            for parent in script.downRevisions + ["y1", "z1"].filter({ _ in step.to == "x2" }) {
                #expect(order.firstIndex(of: parent)! < index, "\(parent) must come before \(step.to)")
            }
        }
        #expect(steps.last?.from == ["x1", "y1", "z1"])
    }

    @Test func downgradeUndoesNewestFirstAndUnmerges() throws {
        let g = try Self.graph(Self.merged)
        #expect(try g.downgradePlan(current: ["m0000"], target: "left2") == DowngradePlan(target: ["left2", "right1"], undone: ["m0000"]))
        #expect(
            try g.downgradePlan(current: ["m0000"], target: "base")
                == DowngradePlan(target: [], undone: ["m0000", "left2", "left1", "right1", "base0"]))
        #expect(try g.downgradePlan(current: ["left2", "right1"], target: "right@-1") == DowngradePlan(target: ["left2"], undone: ["right1"]))
        #expect(try g.downgradePlan(current: ["m0000"], target: "m0000") == DowngradePlan(target: ["m0000"], undone: []))
    }

    @Test func headWithSeveralHeadsNamesThem() throws {
        let g = try Self.graph(Self.merged.dropLast())
        let error = invalidInput { try g.resolveUpgradeTarget("head", current: []) }
        #expect(error?.message.contains("Multiple heads are present") == true)
        #expect(error?.message.contains("left2") == true && error?.message.contains("right1") == true)
        #expect(error?.hint?.contains("heads") == true)
        #expect(try g.resolveUpgradeTarget("heads", current: []).sorted() == ["left2", "right1"])
        #expect(try g.resolveUpgradeTarget("left@head", current: []) == ["left2"])
        #expect(try g.resolveUpgradeTarget("right", current: []) == ["right1"])
    }

    @Test func aMergePointMakesMinusOneAmbiguous() throws {
        let g = try Self.graph(Self.merged)
        let error = invalidInput { try g.downgradePlan(current: ["m0000"], target: "-1") }
        #expect(error?.message.contains("Ambiguous walk") == true)
        #expect(error?.hint?.contains("left2") == true && error?.hint?.contains("right1") == true)
    }

    @Test func minusOneFromSeveralHeadsIsRefusedWithTheBranchForms() throws {
        let g = try Self.graph(Self.merged.dropLast())
        let error = invalidInput { try g.downgradePlan(current: ["left2", "right1"], target: "-1") }
        #expect(error?.message.contains("multiple heads") == true)
        #expect(error?.hint?.contains("'left2@-1'") == true && error?.hint?.contains("'right1@-1'") == true)
        #expect(try g.downgradePlan(current: ["left2", "right1"], target: "left2@-1").undone == ["left2"])
    }

    @Test func prefixesFollowAlembicsRule() throws {
        let g = try Self.graph(["abcd1111:", "abcd2222: abcd1111", "ab: abcd2222"])
        #expect(try g.resolveUpgradeTarget("abcd1", current: []) == ["abcd1111"])
        #expect(try g.resolveUpgradeTarget("ab", current: []) == ["ab"])
        let ambiguous = invalidInput { try g.resolveUpgradeTarget("abcd", current: []) }
        #expect(ambiguous?.message.contains("'abcd1111'") == true && ambiguous?.message.contains("'abcd2222'") == true)
        let short = invalidInput { try g.resolveUpgradeTarget("abx", current: []) }
        #expect(short?.message.contains("at least four characters") == true)
        let unknown = invalidInput { try g.resolveDowngradeTarget("zzzz9", current: ["ab"]) }
        #expect(unknown?.message == "Can't locate revision identified by 'zzzz9'")
    }

    @Test func relativeStepsOutOfRange() throws {
        let g = try Self.graph(Self.linear)
        let down = invalidInput { try g.downgradePlan(current: ["b2222"], target: "-5") }
        #expect(down?.message == "Relative revision -5 didn't produce 5 migrations")
        let up = invalidInput { try g.upgradeSteps(current: ["c3333"], target: "+3") }
        #expect(up?.message == "Relative revision +3 didn't produce 3 migrations")
        let atBase = invalidInput { try g.downgradePlan(current: [], target: "-1") }
        #expect(atBase?.message == "Relative revision -1 didn't produce 1 migrations")
        let notAbove = invalidInput { try g.downgradePlan(current: ["b2222"], target: "d4444") }
        #expect(notAbove?.message.contains("not a valid downgrade target") == true)
    }

    @Test(arguments: [
        (["a:", "a: a0", "a0:"], "present more than once"),
        (["a:", "b: nope"], "Revision nope referenced from b is not present"),
        (["a: b", "b: a"], "Cycle is detected"),
        (["a:", "b: a | a"], "Branch name 'a' in revision b already used by revision a"),
        (["a:", "b: a | | ghost"], "Revision ghost referenced from depends_on of b is not present"),
        (["a-1:"], "not allowed"),
        (["a: a"], "Self-loop"),
    ])
    func brokenGraphsAreInvalidInput(spec: [String], fragment: String) {
        let error = invalidInput { try Self.graph(spec) }
        #expect(error?.message.contains(fragment) == true, "\(String(describing: error))")
        #expect(error?.hint != nil)
    }
}
