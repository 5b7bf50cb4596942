import Foundation
import Testing
@testable import MigsnapCore

/// What must hold for any decision of any policy; checked on every table case and on the
/// generated ones. Records an issue per broken rule, naming the case.
func checkRetentionInvariants(
    _ decisions: [RetentionDecision], snapshots: [RetentionCandidate], policy: RetentionPolicy, now: Date,
    protected: Set<String>, label: String, rng: inout SplitMix64
) {
    let ids = decisions.map(\.id)
    #expect(ids.count == snapshots.count, "\(label): one decision per snapshot")
    #expect(Set(ids).count == ids.count, "\(label): ids unique")
    #expect(Set(ids) == Set(snapshots.map(\.id)), "\(label): every snapshot decided")

    let oldestFirst = snapshots.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    #expect(ids == oldestFirst.map(\.id), "\(label): decisions oldest first")

    let byID = Dictionary(uniqueKeysWithValues: snapshots.map { ($0.id, $0) })
    let newest = oldestFirst.last { $0.createdAt <= now }?.id
    let isAlwaysKept = { (s: RetentionCandidate) in
        s.pinned || s.id == newest || s.createdAt > now || protected.contains(s.id)
    }
    for decision in decisions {
        #expect(!decision.reasons.isEmpty, "\(label): \(decision.id) has a reason")
        guard let snapshot = byID[decision.id] else { continue }
        if isAlwaysKept(snapshot) {
            #expect(decision.action == .keep, "\(label): \(decision.id) is pinned, newest, future-dated or protected, yet removed")
        }
    }
    if policy.isEmpty {
        #expect(decisions.allSatisfy { $0.action == .keep }, "\(label): the empty policy removes nothing")
    }

    if let cap = policy.maxTotalSize {
        let kept = decisions.filter { $0.action == .keep }.compactMap { byID[$0.id] }
        let total = kept.reduce(Int64(0)) { $0 + $1.storedBytes }
        #expect(total <= cap.bytes || kept.allSatisfy(isAlwaysKept), "\(label): over the cap while something removable is kept")
        let capRemoved = decisions.indices.filter { decisions[$0].reasons.first?.hasPrefix("over max_total_size") == true }
        let removableSurvivors = decisions.indices.filter { decisions[$0].action == .keep && byID[ids[$0]].map(isAlwaysKept) == false }
        if let newestRemoved = capRemoved.last, let oldestSurvivor = removableSurvivors.first {
            #expect(newestRemoved < oldestSurvivor, "\(label): the cap removes the oldest first")
        }
    }

    let again = Retention.decide(snapshots, policy: policy, now: now, protected: protected)
    #expect(again == decisions, "\(label): deterministic")
    let shuffled = Retention.decide(snapshots.shuffled(using: &rng), policy: policy, now: now, protected: protected)
    #expect(shuffled == decisions, "\(label): independent of input order")
}
