/// Target resolution, ported from Alembic's `RevisionMap` (`_resolve_revision_number`,
/// `_revision_for_ident`, `_walk`, `_parse_upgrade_target`, `_parse_downgrade_target`), so that a
/// target means for migsnap exactly what it means for `alembic upgrade` / `alembic downgrade`.
extension RevisionGraph {
    /// A place in a relative walk. `nowhere` is Alembic's `None`: below the bases when walking up,
    /// above the heads when walking down; `base` is what a walk down past a first revision reaches.
    enum Position: Equatable {
        case nowhere
        case base
        case revision(String)

        init(_ id: String?) {
            self = id.map(Position.revision) ?? .nowhere
        }
    }

    /// `[label@][symbol](+|-)N`, matched at the start as Alembic's `_relative_destination` regex is.
    struct RelativeTarget {
        var label: String?
        var symbol: String?
        var steps: Int
        var text: String
    }

    static func parseRelative(_ target: String) -> RelativeTarget? {
        let characters = Array(target)
        for at in characters.indices where characters[at] == "@" && at > 0 && !characters[..<at].contains("\n") {
            if let match = relativeTail(characters[(at + 1)...]) {
                return RelativeTarget(label: String(characters[..<at]), symbol: match.symbol, steps: match.steps, text: match.text)
            }
        }
        return relativeTail(characters[...]).map { RelativeTarget(label: nil, symbol: $0.symbol, steps: $0.steps, text: $0.text) }
    }

    private static func relativeTail(_ characters: ArraySlice<Character>) -> (symbol: String?, steps: Int, text: String)? {
        let symbolEnd = characters.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_") } ?? characters.endIndex
        guard symbolEnd < characters.endIndex, characters[symbolEnd] == "+" || characters[symbolEnd] == "-" else { return nil }
        let digits = characters[(symbolEnd + 1)...].prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        let text = String(characters[symbolEnd]) + String(digits)
        guard let steps = Int(text) else { return nil }
        let symbol = String(characters[..<symbolEnd])
        return (symbol.isEmpty ? nil : symbol, steps, text)
    }

    /// The revision (or branch label) a name denotes exactly.
    func exact(_ name: String) -> String? {
        nodes[name] != nil ? name : labelTargets[name]
    }

    /// Alembic's `_resolve_revision_number`: splits `label@` off and expands `head`, `heads`, `base`.
    func resolveRevisionNumber(_ id: String?) throws -> (ids: [String], label: String?) {
        var id = id
        var label: String?
        if let text = id, let at = text.firstIndex(of: "@") {
            label = String(text[..<at])
            id = String(text[text.index(after: at)...])
        }
        if label?.isEmpty == true { label = nil }
        switch id {
        case "heads":
            return (try label.map { try filterForLineage(heads, $0) } ?? realHeads, label)
        case "head":
            return (try currentHead(label).map { [$0] } ?? [], label)
        case "base", nil:
            return ([], label)
        case let id?:
            return ([id], label)
        }
    }

    func currentHead(_ label: String?) throws -> String? {
        let candidates = try label.map { try filterForLineage(heads, $0) } ?? heads
        if candidates.count > 1 {
            throw Self.multipleHeads(candidates, argument: label.map { "\($0)@head" } ?? "head")
        }
        return candidates.first
    }

    static func multipleHeads(_ heads: [String], argument: String) -> MigsnapError {
        .invalidInput(
            "Multiple heads are present for given argument '\(argument)': \(heads.joined(separator: ", "))",
            hint: "Please specify the head revision (one of \(heads.joined(separator: ", "))), "
                + "'<branchname>@head' to narrow to one branch, or 'heads' for all of them.")
    }

    /// Alembic's `get_revision`: one revision, or nil for base.
    func revision(_ id: String?) throws -> String? {
        let (ids, label) = try resolveRevisionNumber(id)
        if ids.count > 1 { throw Self.multipleHeads(ids, argument: id ?? "base") }
        return try revisionForIdent(ids.first, branch: label)
    }

    /// Alembic's `get_revisions` for one name: `heads` may give several, `base` none.
    func revisions(_ id: String) throws -> [String] {
        let (ids, label) = try resolveRevisionNumber(id)
        return try ids.compactMap { try revisionForIdent($0, branch: label) }
    }

    /// Alembic's `_revision_for_ident`: an exact id or label, else a unique prefix of an id or label
    /// longer than three characters; with a branch, the result must share its lineage.
    func revisionForIdent(_ id: String?, branch: String?) throws -> String? {
        let branch = branch?.isEmpty == true ? nil : branch
        let branchRevision = try branch.map(resolveBranch)
        guard let id else { return nil }
        var found = exact(id)
        if found == nil {
            var matches = id.isEmpty ? [] : keys.filter { $0.unicodeScalars.count > 3 && $0.unicodeScalars.starts(with: id.unicodeScalars) }
            if let branch, branchRevision != nil { matches = try filterForLineage(matches, branch) }
            guard !matches.isEmpty else {
                let short = id.unicodeScalars.count < 4
                throw MigsnapError.invalidInput(
                    "Can't locate revision identified by '\(id)'"
                        + (short ? "; please ensure at least four characters are present for partial revision identifier matches" : ""),
                    hint: "Name a revision id, a unique prefix of one (at least 4 characters), a branch label, "
                        + "'head', 'heads' or 'base'; `alembic history` lists the revisions.")
            }
            guard matches.count == 1 else {
                throw MigsnapError.invalidInput(
                    "Multiple revisions start with '\(id)': \(matches.map { "'\($0)'" }.joined(separator: ", "))",
                    hint: "Type more characters of the revision id.")
            }
            found = exact(matches[0])
        }
        if let branch, let branchRevision, let found, !(try sharesLineage(found, with: [branchRevision])) {
            throw MigsnapError.invalidInput(
                "Revision \(found) is not a member of branch '\(branch)'",
                hint: "Name a revision on that branch, or drop the '\(branch)@' prefix.")
        }
        return found
    }

    func resolveBranch(_ label: String) throws -> String {
        if let found = exact(label) { return found }
        do {
            guard let found = try revisionForIdent(label, branch: nil) else { throw MigsnapError.invalidInput("") }
            return found
        } catch {
            throw MigsnapError.invalidInput(
                "No such branch: '\(label)'",
                hint: "Name a branch label declared in a revision file (branch_labels) or a revision id.")
        }
    }

    /// Whether `id` is an ancestor or descendant (through down_revision) of any of `others`.
    func sharesLineage(_ id: String, with others: [String]) throws -> Bool {
        guard !others.isEmpty else { return true }
        let resolved = try Set(others.compactMap { try exact($0) ?? revisionForIdent($0, branch: nil) })
        return !descendants(of: [id], dependencies: false).union(ancestors(of: [id], dependencies: false))
            .isDisjoint(with: resolved)
    }

    /// Alembic's `filter_for_lineage`.
    func filterForLineage(_ ids: [String], _ checkAgainst: String) throws -> [String] {
        let (resolved, label) = try resolveRevisionNumber(checkAgainst)
        let shares = (label.map { [$0] } ?? []) + resolved
        return try ids.filter { try sharesLineage($0, with: shares) }
    }

    /// Alembic's `_walk`: `steps` single steps up (positive) or down (negative); nil when the walk
    /// runs off the graph.
    func walk(from start: Position, steps: Int, branch: String?) throws -> Position? {
        var current = start
        for _ in 0..<steps.magnitude {
            var children: [Position]
            if steps > 0 {
                var up: [String]
                switch current {
                case .nowhere: up = bases
                case .revision(let id): up = sortedByLoadOrder(nodes[id]!.next)
                case .base: return nil
                }
                if let branch { up = try filterForLineage(up, branch) }
                children = up.map(Position.revision)
            } else {
                switch current {
                case .base: children = []
                case .nowhere: children = heads.map(Position.revision)
                case .revision(let id):
                    let down = nodes[id]!.down
                    children = down.isEmpty ? [.base] : down.map(Position.revision)
                }
            }
            guard let next = children.first else { return nil }
            if children.count > 1 { throw ambiguousWalk(at: current, upward: steps > 0, choices: children) }
            current = next
        }
        return current
    }

    private func ambiguousWalk(at position: Position, upward: Bool, choices: [Position]) -> MigsnapError {
        let names = choices.map { if case .revision(let id) = $0 { id } else { "base" } }.joined(separator: ", ")
        let situation: String
        switch (position, upward) {
        case (.revision(let id), false): situation = "revision \(id) is a merge point of \(names)"
        case (.revision(let id), true): situation = "revision \(id) is a branch point continuing to \(names)"
        default: situation = upward ? "there are several bases: \(names)" : "there are several heads: \(names)"
        }
        return .invalidInput(
            "Ambiguous walk: \(situation); a relative step cannot choose between them",
            hint: "Name the revision to go to instead: one of \(names).")
    }

    private static func relativeTooFar(_ relative: RelativeTarget) -> MigsnapError {
        .invalidInput(
            "Relative revision \(relative.text) didn't produce \(relative.steps.magnitude) migrations",
            hint: "There are fewer revisions in that direction; name a revision, 'head' or 'base' instead.")
    }

    private static func walkedTooFar(_ target: String) -> MigsnapError {
        .invalidInput(
            "Walked too far: '\(target)' leads past the end of the revision history",
            hint: "Use a smaller step, or name a revision, 'head' or 'base'.")
    }

    /// The revisions an upgrade target names, relative to the database's current revisions,
    /// as Alembic's `_parse_upgrade_target` resolves them. Empty means base.
    public func resolveUpgradeTarget(_ target: String, current: [String]) throws -> [String] {
        guard let relative = Self.parseRelative(target) else { return try revisions(target) }
        let reached: Position?
        if relative.steps > 0, let symbol = relative.symbol {
            reached = try walk(from: Position(revision(symbol)), steps: relative.steps, branch: relative.label)
            guard reached != nil else { throw Self.walkedTooFar(target) }
        } else if relative.steps > 0 {
            let start = try upgradeWalkStart(current: current, label: relative.label)
            reached = try walk(from: start, steps: relative.steps, branch: relative.label)
            guard reached != nil else { throw Self.relativeTooFar(relative) }
        } else if let symbol = relative.symbol {
            let start = try revision(relative.label.map { "\($0)@\(symbol)" } ?? symbol)
            reached = try walk(from: Position(start), steps: relative.steps, branch: nil)
        } else {
            throw MigsnapError.invalidInput(
                "Relative revision \(relative.text) didn't produce \(relative.steps.magnitude) migrations",
                hint: "An upgrade goes up: use +N, a revision or 'head'; to go down use a downgrade.")
        }
        guard case .revision(let id)? = reached else { throw Self.walkedTooFar(target) }
        return [id]
    }

    /// Where `+N` starts: the current revision (on the named branch, if any).
    private func upgradeWalkStart(current: [String], label: String?) throws -> Position {
        var starts: [Position] = current.isEmpty ? [.nowhere] : current.map(Position.revision)
        if let label {
            let currentRevisions = try current.compactMap { try revisionForIdent($0, branch: nil) }
            var onBranch = try filterForLineage(currentRevisions, label)
            if onBranch.isEmpty {
                let active = try filterForLineage(sortedByLoadOrder(ancestors(of: currentRevisions)), label)
                let below = Set(active.flatMap { nodes[$0]!.normalizedDown })
                onBranch = active.filter { !below.contains($0) }
                starts = onBranch.isEmpty ? [.nowhere] : onBranch.map(Position.revision)
            } else {
                starts = onBranch.map(Position.revision)
            }
        }
        guard starts.count == 1 else {
            throw MigsnapError.invalidInput(
                "Ambiguous upgrade from multiple current revisions",
                hint: "Name the target revision, or narrow the step to one branch with '<branchname>@+N'.")
        }
        if case .revision(let id) = starts[0] { return Position(try revision(id)) }
        return starts[0]
    }

    /// The revision a downgrade target names (empty = base), as Alembic's `_parse_downgrade_target`
    /// resolves it, with the branch label that restricts what is undone.
    func parseDowngradeTarget(_ target: String, current: [String]) throws -> (label: String?, revision: String?) {
        guard let relative = Self.parseRelative(target) else {
            let at = target.lastIndex(of: "@")
            let label = at.map { String(target[..<$0]) }.flatMap { $0.isEmpty ? nil : $0 }
            let symbol = at.map { String(target[target.index(after: $0)...]) } ?? target
            return (label, try revision(symbol))
        }
        var label = relative.label
        let reached: Position?
        if relative.steps >= 0 {
            guard let symbol = relative.symbol else { throw Self.relativeTooFar(relative) }
            reached = try walk(from: Position(revision(symbol)), steps: relative.steps, branch: label)
            guard reached != nil, reached != .nowhere else { throw Self.walkedTooFar(target) }
        } else {
            var symbol = relative.symbol
            if symbol == nil {
                symbol = try currentRevisionToWalkFrom(current, label: label, relative: relative)
                if label == nil { label = symbol }
            }
            let start = try revision(label.map { "\($0)@\(symbol!)" } ?? symbol!)
            reached = try walk(from: Position(start), steps: relative.steps, branch: nil)
            guard reached != nil, reached != .nowhere else {
                throw relative.symbol == nil ? Self.relativeTooFar(relative) : Self.walkedTooFar(target)
            }
        }
        guard case .revision(let id)? = reached else { return (label, nil) }
        return (label, id)
    }

    /// The current revision that `-N` (or `label@-N`) counts from.
    private func currentRevisionToWalkFrom(_ current: [String], label: String?, relative: RelativeTarget) throws -> String {
        if let label {
            var candidates = try filterForLineage(current, label)
            if candidates.isEmpty {
                candidates = try filterForLineage(sortedByLoadOrder(allCurrent(current)), label)
            }
            guard candidates.count == 1 else {
                throw MigsnapError.invalidInput(
                    "Branch '\(label)' does not lead to exactly one current revision",
                    hint: "Name the revision to go to instead.")
            }
            return candidates[0]
        }
        guard let first = current.first else { throw Self.relativeTooFar(relative) }
        // Alembic walks from whichever row the version table returns first and warns that this
        // "will be disallowed in a future release"; a rollback that picks a branch at random is
        // not something to run, so we refuse now.
        let distinct = uniqued(current)
        guard distinct.count == 1 else {
            throw MigsnapError.invalidInput(
                "downgrade \(relative.text) from multiple heads (\(distinct.joined(separator: ", "))) is ambiguous",
                hint: "Name the branch to step down on: \(distinct.map { "'\($0)@\(relative.text)'" }.joined(separator: " or ")), or name the target revision.")
        }
        return first
    }

    /// Alembic's `_get_all_current`: the tips of everything the current revisions imply.
    private func allCurrent(_ current: [String]) throws -> Set<String> {
        let top = try Set(current.compactMap { try revisionForIdent($0, branch: nil) })
        let all = ancestors(of: top)
        return all.filter { id in descendants(of: [id], dependencies: false).isDisjoint(with: all.subtracting([id])) }
    }

    /// The revision a downgrade target names relative to the current revisions: empty for base,
    /// else the one revision the database will be at (on that branch) afterwards.
    public func resolveDowngradeTarget(_ target: String, current: [String]) throws -> [String] {
        try parseDowngradeTarget(target, current: current).revision.map { [$0] } ?? []
    }
}
