import Foundation

public enum Prune {
    /// The decision for every one of the store's `manifests`, read once by the caller (a listing
    /// of 10,000 snapshots is most of a prune's time). Pure.
    public static func plan(_ manifests: [Manifest], policy: RetentionPolicy, now: Date = Date(),
                            protected: Set<String> = []) -> [RetentionDecision] {
        Retention.decide(manifests.map(RetentionCandidate.init), policy: policy, now: now, protected: protected)
    }

    /// The size the kept snapshots still take when it is over `max_total_size` (possible only when
    /// the snapshots that are always kept exceed it), else nil.
    public static func sizeOverCap(_ decisions: [RetentionDecision], manifests: [Manifest], policy: RetentionPolicy) -> Int64? {
        guard let cap = policy.maxTotalSize, cap.bytes > 0 else { return nil }
        let kept = Set(decisions.filter { $0.action == .keep }.map(\.id))
        let total = manifests.filter { kept.contains($0.id) }.reduce(Int64(0)) { $0 + $1.storedBytes }
        return total > cap.bytes ? total : nil
    }

    /// The prune that follows a successful upgrade, unless the policy turns it off; the snapshots
    /// the upgrade just took are never its victims.
    public static func afterUpgrade(store: SnapshotStore, policy: RetentionPolicy, protected: Set<String>,
                                    engine: DatabaseEngine? = nil) throws -> [Manifest] {
        guard policy.pruneAfterUpgrade else { return [] }
        let manifests = try store.manifests()
        return try apply(plan(manifests, policy: policy, protected: protected), to: manifests, store: store, engine: engine)
    }

    /// Removes the snapshots decided `remove`, each manifest first so that a killed prune never
    /// leaves a listed snapshot without its file. The caller holds the store lock, and read
    /// `manifests` under it. A hot copy on the database server goes too when `engine` is that
    /// database (else the next hot snapshot drops it).
    public static func apply(_ decisions: [RetentionDecision], to manifests: [Manifest], store: SnapshotStore,
                             engine: DatabaseEngine? = nil) throws -> [Manifest] {
        let byID = Dictionary(manifests.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var removed: [Manifest] = []
        for decision in decisions where decision.action == .remove {
            guard let manifest = byID[decision.id] else { continue }
            try store.remove(manifest)
            if manifest.hot != nil, let engine, engine.hotTier == .server, manifest.database == engine.redactedLocation {
                try? engine.dropServerHotCopy(of: manifest.id)
            }
            removed.append(manifest)
        }
        return removed
    }
}

extension Configuration {
    /// The policy in force: --retention > retention.json beside the config file > built-in default.
    public func retentionPolicy() throws -> RetentionPolicy {
        guard let retentionFile else { return .builtInDefault }
        return try RetentionPolicy.load(path: retentionFile)
    }
}
