import Foundation

/// What the retention policy needs to know of one snapshot.
public struct RetentionCandidate: Sendable, Equatable {
    public var id: String
    public var createdAt: Date
    /// The revisions the database was at; empty at base. Order does not matter.
    public var revisions: [String]
    public var tags: [String]
    public var pinned: Bool
    public var storedBytes: Int64

    public init(id: String, createdAt: Date, revisions: [String] = [], tags: [String] = [], pinned: Bool = false, storedBytes: Int64 = 0) {
        self.id = id
        self.createdAt = createdAt
        self.revisions = revisions
        self.tags = tags
        self.pinned = pinned
        self.storedBytes = storedBytes
    }

    public init(_ manifest: Manifest) {
        self.init(id: manifest.id, createdAt: manifest.createdAt, revisions: manifest.revisions, tags: manifest.tags,
                  pinned: manifest.pinned, storedBytes: manifest.storedBytes)
    }
}

/// One line of `prune`'s plan; its JSON is the contract `{"id", "action", "reasons"}`.
public struct RetentionDecision: Codable, Equatable, Sendable {
    public enum Action: String, Codable, Sendable {
        case keep
        case remove
    }

    public var id: String
    public var action: Action
    /// Why, in short stable phrases naming the rule and its period: `daily 2026-11-26`.
    public var reasons: [String]

    public init(id: String, action: Action, reasons: [String]) {
        self.id = id
        self.action = action
        self.reasons = reasons
    }
}

public enum Retention {
    /// Applies `policy` to `snapshots` (ids unique, as the store guarantees). Pure: the same
    /// inputs give the same decisions, whatever the input order; one decision per snapshot,
    /// oldest first (by `createdAt`, then `id`).
    ///
    /// A snapshot dated after `now` (a clock that was wrong) is kept and takes no part in the
    /// rules: its date would otherwise claim the newest period of every rule and, as the
    /// reference for `keep_within`, make every real snapshot look old. `protected` snapshots
    /// (the ones an `upgrade` just took) are kept, so a prune never removes its own run's work.
    public static func decide(
        _ snapshots: [RetentionCandidate], policy: RetentionPolicy, now: Date, protected: Set<String> = []
    ) -> [RetentionDecision] {
        let oldestFirst = snapshots.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        let newestFirstPresent = oldestFirst.indices.reversed().filter { oldestFirst[$0].createdAt <= now }
        let newest = newestFirstPresent.first
        let alwaysKept = oldestFirst.indices.map { i -> [String] in
            let s = oldestFirst[i]
            return [
                s.pinned ? "pinned" : nil,
                i == newest ? "newest" : nil,
                s.createdAt > now ? "future-dated" : nil,
                protected.contains(s.id) ? "just taken" : nil,
            ].compactMap { $0 }
        }

        var reasons = alwaysKept
        for rule in rules(policy, newestFirst: newestFirstPresent.map { oldestFirst[$0] }) {
            for (position, reason) in rule {
                reasons[newestFirstPresent[position]].append(reason)
            }
        }
        if !policy.hasKeepRules {
            let reason = policy.isEmpty ? "empty policy: nothing is removed" : "no keep rules: only max_total_size removes snapshots"
            for i in reasons.indices { reasons[i].append(reason) }
        }

        var kept = reasons.map { !$0.isEmpty }
        if let cap = policy.maxTotalSize {
            // Removing the oldest until the rest fits keeps the longest run of newest snapshots
            // that fits beside the always-kept ones; counted newest first with saturating sums, an
            // absurd size in a manifest can neither trap nor make the rest look small.
            let size = { (i: Int) in max(0, oldestFirst[i].storedBytes) }
            func adding(_ sum: Int64, _ i: Int) -> Int64 {
                let (next, overflow) = sum.addingReportingOverflow(size(i))
                return overflow ? .max : next
            }
            var used = oldestFirst.indices.filter { kept[$0] && !alwaysKept[$0].isEmpty }.reduce(0, adding)
            var fits = used <= cap.bytes
            for i in oldestFirst.indices.reversed() where kept[i] && alwaysKept[i].isEmpty {
                fits = fits && adding(used, i) <= cap.bytes
                if fits {
                    used = adding(used, i)
                } else {
                    kept[i] = false
                    reasons[i] = ["over max_total_size \(cap)"]
                }
            }
        }

        return oldestFirst.indices.map { i in
            RetentionDecision(id: oldestFirst[i].id, action: kept[i] ? .keep : .remove,
                              reasons: reasons[i].isEmpty ? ["no rule keeps it"] : reasons[i])
        }
    }

    /// Each keep rule's verdicts as (position in `newestFirst`, reason), in the order reasons are
    /// listed: count rules, calendar periods, time window, revisions, tags.
    private static func rules(_ policy: RetentionPolicy, newestFirst: [RetentionCandidate]) -> [[(Int, String)]] {
        let positions = Array(newestFirst.indices)
        let last = positions.prefix(policy.keepLast).map { ($0, "last \(policy.keepLast)") }

        let periods: [(count: Int, name: String, period: (Date) -> String)] = [
            (policy.keepHourly, "hourly", Period.hour),
            (policy.keepDaily, "daily", Period.day),
            (policy.keepWeekly, "weekly", Period.isoWeek),
            (policy.keepMonthly, "monthly", Period.month),
            (policy.keepYearly, "yearly", Period.year),
        ]
        // As restic's buckets: walking newest first, the first snapshot seen in a period is the
        // newest of it; a rule keeps that one for each of its newest `count` periods.
        let calendarRules = periods.map { rule in
            var seen: [String] = []
            return positions.compactMap { p -> (Int, String)? in
                let period = rule.period(newestFirst[p].createdAt)
                guard seen.count < rule.count, seen.last != period else { return nil }
                seen.append(period)
                return (p, "\(rule.name) \(period)")
            }
        }

        var within: [(Int, String)] = []
        if !policy.keepWithin.isZero, let newest = newestFirst.first {
            let since = policy.keepWithin.subtracted(from: newest.createdAt)
            within = positions.filter { newestFirst[$0].createdAt > since }.map { ($0, "within \(policy.keepWithin) of newest") }
        }

        var perRevisionSeen: [String: Int] = [:]
        let perRevision = positions.compactMap { p -> (Int, String)? in
            let revisions = newestFirst[p].revisions.sorted()
            let set = revisions.isEmpty ? "base" : revisions.joined(separator: ",")
            guard perRevisionSeen[set, default: 0] < policy.keepPerRevision else { return nil }
            perRevisionSeen[set, default: 0] += 1
            return (p, "per revision \(set)")
        }

        var uniqueTags: [String] = []
        for tag in policy.keepTags where !uniqueTags.contains(tag) { uniqueTags.append(tag) }
        let tags = positions.flatMap { p in
            uniqueTags.filter(newestFirst[p].tags.contains).map { (p, "tag \($0)") }
        }

        return [last] + calendarRules + [within, perRevision, tags]
    }
}

/// Names of the UTC calendar periods a moment falls in, as they appear in reasons.
private enum Period {
    static let utc: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = .gmt
        return c
    }()

    /// ISO 8601 weeks start on Monday and belong to the year of their Thursday: 2027-01-01 is
    /// in 2026-W53.
    static let iso: Calendar = {
        var c = Calendar(identifier: .iso8601)
        c.timeZone = .gmt
        return c
    }()

    static func hour(_ date: Date) -> String {
        let c = utc.dateComponents([.year, .month, .day, .hour], from: date)
        return "\(digits(c.year, 4))-\(digits(c.month, 2))-\(digits(c.day, 2))T\(digits(c.hour, 2))"
    }

    static func day(_ date: Date) -> String {
        let c = utc.dateComponents([.year, .month, .day], from: date)
        return "\(digits(c.year, 4))-\(digits(c.month, 2))-\(digits(c.day, 2))"
    }

    static func isoWeek(_ date: Date) -> String {
        let c = iso.dateComponents([.yearForWeekOfYear, .weekOfYear], from: date)
        return "\(digits(c.yearForWeekOfYear, 4))-W\(digits(c.weekOfYear, 2))"
    }

    static func month(_ date: Date) -> String {
        let c = utc.dateComponents([.year, .month], from: date)
        return "\(digits(c.year, 4))-\(digits(c.month, 2))"
    }

    static func year(_ date: Date) -> String {
        digits(utc.component(.year, from: date), 4)
    }

    private static func digits(_ value: Int?, _ width: Int) -> String {
        let text = String(value ?? 0)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
