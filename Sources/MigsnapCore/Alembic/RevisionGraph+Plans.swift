/// One migration step: the database's revisions before it, and the one revision it applies.
public struct UpgradeStep: Codable, Equatable, Sendable {
    public var from: [String]
    public var to: String

    public init(from: [String], to: String) {
        self.from = from
        self.to = to
    }
}

/// What `alembic downgrade TARGET` would undo.
public struct DowngradePlan: Equatable, Sendable {
    /// The database's revisions afterwards, sorted; empty is base.
    public var target: [String]
    /// The revisions undone, in the order Alembic undoes them (newest first).
    public var undone: [String]

    public init(target: [String], undone: [String]) {
        self.target = target
        self.undone = undone
    }
}

/// Upgrade and downgrade plans, ported from Alembic's `_collect_upgrade_revisions`,
/// `_collect_downgrade_revisions`, `_topological_sort` and the version-table bookkeeping of
/// `HeadMaintainer`, so that migsnap can run `alembic upgrade <rev>` one step at a time and
/// Alembic agrees with every step.
extension RevisionGraph {
    /// The pending steps from `current` to `targets`: the targets' ancestors (with depends_on)
    /// that the current revisions do not already imply, in the order Alembic applies them. Each
    /// step's dependencies come before it, so each can run as its own `alembic upgrade <to>`.
    public func upgradeSteps(current: [String], targets: [String]) throws -> [UpgradeStep] {
        let targets = try targets.map { try knownRevision($0) }
        let current = try current.map { try knownRevision($0) }
        try requireNoOverlap(targets)
        try requireNoOverlap(current)
        let needed = ancestors(of: targets).subtracting(ancestors(of: current))
        var heads = Set(current)
        return try topologicalSort(needed, heads: targets).reversed().map { id in
            let step = UpgradeStep(from: heads.sorted(), to: id)
            applyUpgrade(id, to: &heads)
            return step
        }
    }

    /// `upgradeSteps` for a target as typed (`head`, `+2`, `ae10`, `branch@head`, …).
    public func upgradeSteps(current: [String], target: String) throws -> [UpgradeStep] {
        try upgradeSteps(current: current, targets: resolveUpgradeTarget(target, current: current))
    }

    /// What `alembic downgrade TARGET` would undo from `current`, newest first, and the revisions
    /// the database is at afterwards.
    public func downgradePlan(current: [String], target: String) throws -> DowngradePlan {
        let (label, targetRevision) = try parseDowngradeTarget(target, current: current)
        var roots = targetRevision.map { sortedByLoadOrder(nodes[$0]!.next) } ?? order.filter { nodes[$0]!.down.isEmpty }
        if let label, roots.count > 1 {
            let onBranch = ancestors(of: [try resolveBranch(label)], dependencies: false)
            roots = roots.filter(onBranch.contains)
            if roots.isEmpty {
                throw MigsnapError.invalidInput(
                    "Not a valid downgrade target from current heads",
                    hint: "'\(target)' is not below the current revisions on branch '\(label)'.")
            }
        }
        let current = try current.map { try knownRevision($0) }
        let undo = descendants(of: roots).intersection(ancestors(of: current))
        if let targetRevision, undo.isEmpty, !current.contains(targetRevision) {
            throw MigsnapError.invalidInput(
                "Destination \(targetRevision) is not a valid downgrade target from current head(s)",
                hint: "The database (at \(current.isEmpty ? "base" : current.joined(separator: ", "))) is not above "
                    + "\(targetRevision); a downgrade can only go to an ancestor of the current revisions.")
        }
        let undone = try topologicalSort(undo, heads: current)
        var heads = Set(current)
        for id in undone { applyDowngrade(id, to: &heads) }
        return DowngradePlan(target: heads.sorted(), undone: undone)
    }

    private func knownRevision(_ id: String) throws -> String {
        guard let found = try revisionForIdent(id, branch: nil) else {
            throw MigsnapError.invalidInput("Can't locate revision identified by '\(id)'")
        }
        return found
    }

    /// Alembic refuses a set of revisions where one is an ancestor of another.
    private func requireNoOverlap(_ ids: [String]) throws {
        for id in ids {
            let overlapping = ancestors(of: [id]).subtracting([id]).intersection(ids)
            if !overlapping.isEmpty {
                throw MigsnapError.invalidInput(
                    "Requested revision \(id) overlaps with other requested revisions \(sortedByLoadOrder(overlapping).joined(separator: ", "))",
                    hint: "Name only revisions of which none is an ancestor of another; for the database this means "
                        + "its version table holds redundant rows.")
            }
        }
    }

    /// Alembic's `_topological_sort`: newest first, one branch at a time in load order of the
    /// heads, switching to another branch whenever that branch still needs the candidate.
    func topologicalSort(_ revisions: Set<String>, heads: [String]) throws -> [String] {
        var todo = revisions
        var currentHeads = sortedByLoadOrder(Set(heads.filter(todo.contains)))
        var ancestorsByHead = currentHeads.map { ancestors(of: [$0]) }
        var output: [String] = []
        var index = 0
        while !currentHeads.isEmpty {
            let candidate = currentHeads[index]
            if let other = ancestorsByHead.indices.first(where: { $0 != index && ancestorsByHead[$0].contains(candidate) }) {
                index = other
                continue
            }
            if todo.remove(candidate) != nil { output.append(candidate) }
            let node = nodes[candidate]!
            let toAdd = node.normalizedDown.filter { todo.contains($0) && !currentHeads.contains($0) }
            if toAdd.isEmpty {
                currentHeads.remove(at: index)
                ancestorsByHead.remove(at: index)
                index = max(index - 1, 0)
            } else if node.normalizedDependencies.isEmpty && node.down.count == 1 {
                currentHeads[index] = toAdd[0]
                ancestorsByHead[index].remove(candidate)
            } else {
                currentHeads[index] = toAdd[0]
                currentHeads += toAdd.dropFirst()
                ancestorsByHead[index] = ancestors(of: [toAdd[0]])
                ancestorsByHead += toAdd.dropFirst().map { ancestors(of: [$0]) }
            }
        }
        guard todo.isEmpty else {
            throw MigsnapError.failed(
                "cannot order revisions \(sortedByLoadOrder(todo).joined(separator: ", ")) relative to the current revisions",
                hint: "Check the version table against `alembic history`; nothing was changed.")
        }
        return output
    }

    /// The rows of the version table after Alembic applies `id` (HeadMaintainer.update_to_step).
    private func applyUpgrade(_ id: String, to heads: inout Set<String>) {
        let down = nodes[id]!.normalizedDown
        let present = heads.intersection(down)
        if present.count > 1 {
            let others = heads.subtracting(down)
            heads.subtract(Set(down).subtracting(others.isEmpty ? [] : ancestors(of: others)))
        } else if let parent = present.first {
            heads.remove(parent)
        }
        heads.insert(id)
    }

    /// The rows of the version table after Alembic undoes `id`.
    private func applyDowngrade(_ id: String, to heads: inout Set<String>) {
        let down = nodes[id]!.normalizedDown
        guard heads.contains(id) else {
            if let parent = down.count == 1 ? down.first : heads.intersection(down).first { heads.insert(parent) }
            return
        }
        heads.remove(id)
        let others = heads
        let implied: Set<String>
        if !others.isEmpty {
            implied = ancestors(of: others)
        } else {
            implied = Set(down.flatMap { parent in ancestors(of: [parent]).subtracting([parent]) })
        }
        heads.formUnion(Set(down).subtracting(implied))
    }
}
