/// The revision graph of an Alembic project, built the way Alembic's `RevisionMap` builds it, so
/// that heads, target resolution and the order of steps agree with what `alembic` would do.
public struct RevisionGraph: Sendable {
    struct Node: Sendable {
        var script: RevisionScript
        /// `down_revision`: the versioned parents.
        var down: [String]
        /// `depends_on`, with branch labels replaced by the revisions they name.
        var resolvedDependencies: [String] = []
        /// Dependencies that no ancestor already depends on: what Alembic treats as extra parents.
        var normalizedDependencies: [String] = []
        /// Children through `down_revision` only, and through `depends_on` as well.
        var next: Set<String> = []
        var allNext: Set<String> = []
        /// Own branch labels plus those Alembic spreads along the branch.
        var branchLabels: Set<String>

        var allDown: [String] { uniqued(down + resolvedDependencies) }
        var normalizedDown: [String] { uniqued(down + normalizedDependencies) }
        var isMergePoint: Bool { down.count > 1 }
        var isRealBranchPoint: Bool { allNext.count > 1 }
    }

    private(set) var nodes: [String: Node]
    /// Revision ids in load order: Alembic breaks ties between branches by it.
    let order: [String]
    let position: [String: Int]
    /// Branch label → the revision that declares it.
    let labelTargets: [String: String]
    /// Every name a target may start with, in Alembic's map order: ids, then labels.
    let keys: [String]

    /// What `alembic heads` prints: revisions no other revision names as its down_revision.
    public let heads: [String]
    /// Revisions with no down_revision.
    public let bases: [String]
    /// Heads that nothing depends on either: what the target `heads` means.
    let realHeads: [String]

    public init(_ scripts: [RevisionScript]) throws {
        var nodes: [String: Node] = [:]
        var order: [String] = []
        for script in scripts {
            let id = script.revision
            let illegal = Set(id).intersection(["@", "-", "+", ":"])
            guard !id.isEmpty, illegal.isEmpty else {
                throw MigsnapError.invalidInput(
                    "revision identifier '\(id)' in \(script.path) is not allowed"
                        + (illegal.isEmpty ? "" : ": it contains \(illegal.sorted().map(String.init).joined(separator: ", "))"),
                    hint: "Alembic forbids '@', '-', '+' and ':' in revision ids; rename the revision.")
            }
            if let other = nodes[id] {
                throw MigsnapError.invalidInput(
                    "Revision \(id) is present more than once: \(other.script.path) and \(script.path)",
                    hint: "Give one of the files a new revision id, or delete the copy.")
            }
            if script.downRevisions.contains(id) || script.dependsOn.contains(id) {
                throw MigsnapError.invalidInput(
                    "Self-loop is detected in revisions (\(id)) in \(script.path)",
                    hint: "A revision cannot name itself in down_revision or depends_on.")
            }
            nodes[id] = Node(script: script, down: uniqued(script.downRevisions), branchLabels: Set(script.branchLabels))
            order.append(id)
        }

        var labelTargets: [String: String] = [:]
        var labelOrder: [String] = []
        for id in order {
            for label in nodes[id]!.script.branchLabels {
                if let holder = nodes[label] != nil ? label : labelTargets[label] {
                    throw MigsnapError.invalidInput(
                        "Branch name '\(label)' in revision \(id) already used by revision \(holder)",
                        hint: "Branch labels must be unique and differ from every revision id.")
                }
                labelTargets[label] = id
                labelOrder.append(label)
            }
        }

        for id in order {
            nodes[id]!.resolvedDependencies = try uniqued(
                nodes[id]!.script.dependsOn.map { dependency in
                    guard let target = nodes[dependency] != nil ? dependency : labelTargets[dependency] else {
                        throw MigsnapError.invalidInput(
                            "Revision \(dependency) referenced from depends_on of \(id) is not present",
                            hint: "Check depends_on in \(nodes[id]!.script.path): it must name a revision id or a branch label.")
                    }
                    return target
                })
        }

        var heads = order
        var realHeads = order
        for id in order {
            for parent in nodes[id]!.allDown {
                guard nodes[parent] != nil else {
                    throw MigsnapError.invalidInput(
                        "Revision \(parent) referenced from \(id) is not present",
                        hint: "Check down_revision in \(nodes[id]!.script.path), or restore the missing revision file.")
                }
                nodes[parent]!.allNext.insert(id)
                if nodes[id]!.down.contains(parent) {
                    nodes[parent]!.next.insert(id)
                    heads.removeAll { $0 == parent }
                }
                realHeads.removeAll { $0 == parent }
            }
        }

        self.nodes = nodes
        self.order = order
        self.position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        self.labelTargets = labelTargets
        self.keys = order + labelOrder
        self.heads = heads
        self.realHeads = realHeads
        self.bases = order.filter { nodes[$0]!.down.isEmpty }

        try detectCycles()
        normalizeDependencies()
        spreadBranchLabels()
    }

    /// Every revision reachable from `starts` (included) by `step`.
    func reachable(from starts: some Sequence<String>, _ step: (Node) -> [String]) -> Set<String> {
        var seen = Set<String>()
        var todo = Array(starts)
        while let id = todo.popLast() {
            guard seen.insert(id).inserted, let node = nodes[id] else { continue }
            todo += step(node)
        }
        return seen
    }

    /// Ancestors including the starts, following depends_on as Alembic does when it plans.
    func ancestors(of ids: some Sequence<String>, dependencies: Bool = true) -> Set<String> {
        reachable(from: ids) { dependencies ? $0.normalizedDown : $0.down }
    }

    /// Descendants including the starts.
    func descendants(of ids: some Sequence<String>, dependencies: Bool = true) -> Set<String> {
        reachable(from: ids) { Array(dependencies ? $0.allNext : $0.next) }
    }

    /// Alembic's check: every revision must lie between a head and a base, first through
    /// down_revision alone, then with depends_on.
    private func detectCycles() throws {
        guard !order.isEmpty else { return }
        for (kind, headIds, baseIds, down, up) in [
            ("Cycle", heads, bases, { (n: Node) in n.down }, { (n: Node) in Array(n.next) }),
            (
                "Dependency cycle", realHeads, bases.filter { nodes[$0]!.script.dependsOn.isEmpty },
                { (n: Node) in n.allDown }, { (n: Node) in Array(n.allNext) }
            ),
        ] {
            let inSpace = reachable(from: headIds, down).intersection(reachable(from: baseIds, up))
            let stranded = order.filter { !inSpace.contains($0) }.sorted()
            if !stranded.isEmpty {
                throw MigsnapError.invalidInput(
                    "\(kind) is detected in revisions (\(stranded.joined(separator: ", ")))",
                    hint: "Fix down_revision / depends_on in those revision files so that the history has no loop.")
            }
        }
    }

    /// A dependency that an ancestor already has is implied; Alembic drops it, which changes
    /// the order of steps, so we drop it too.
    private mutating func normalizeDependencies() {
        for id in order where !nodes[id]!.resolvedDependencies.isEmpty {
            var implied = Set<String>()
            for ancestor in ancestors(of: [id], dependencies: false) where ancestor != id {
                implied.formUnion(nodes[ancestor]!.resolvedDependencies)
            }
            nodes[id]!.normalizedDependencies = nodes[id]!.resolvedDependencies.filter { !implied.contains($0) }
        }
    }

    /// Alembic's `_add_branches`: a label covers every descendant of its revision; when those
    /// descendants form one plain line, it also covers the ancestors down to the nearest branch
    /// or merge point (which is what makes `label@base` and `label@-N` work).
    private mutating func spreadBranchLabels() {
        for id in order where !nodes[id]!.script.branchLabels.isEmpty {
            let labels = nodes[id]!.branchLabels
            let covered = descendants(of: [id], dependencies: false)
            for member in covered { nodes[member]!.branchLabels.formUnion(labels) }

            var line = [id]
            while let child = nodes[line.last!]!.next.first, nodes[line.last!]!.next.count == 1 { line.append(child) }
            guard covered.count == line.count else { continue }
            var walker: String? = line.last
            while let current = walker, !nodes[current]!.isRealBranchPoint, !nodes[current]!.isMergePoint {
                nodes[current]!.branchLabels.formUnion(labels)
                walker = nodes[current]!.down.first
            }
        }
    }

    public func script(_ id: String) -> RevisionScript? {
        nodes[id]?.script
    }

    /// Revisions in load order.
    public var scripts: [RevisionScript] {
        order.map { nodes[$0]!.script }
    }

    func sortedByLoadOrder(_ ids: some Sequence<String>) -> [String] {
        ids.sorted { (position[$0] ?? .max) < (position[$1] ?? .max) }
    }
}

func uniqued(_ items: [String]) -> [String] {
    var seen = Set<String>()
    return items.filter { seen.insert($0).inserted }
}
