import Foundation

/// Which snapshots `prune` keeps (DESIGN.md, "The retention policy"). A snapshot is kept if any
/// rule keeps it, as in restic's `forget`; `Retention.decide` applies it.
///
/// A key missing from retention.json takes the built-in default's value, not zero: a project
/// file that only raises `keep_last` must not silently switch off the daily, weekly and monthly
/// history, and the built-in default is the same as the shipped file, so "missing" reads as "as
/// shipped". To switch a rule off, set it to 0 (or `"0d"`, `[]`, `"0"`).
public struct RetentionPolicy: Equatable, Sendable, Codable {
    public var keepLast: Int
    public var keepHourly: Int
    public var keepDaily: Int
    public var keepWeekly: Int
    public var keepMonthly: Int
    public var keepYearly: Int
    public var keepWithin: RetentionDuration
    public var keepPerRevision: Int
    public var keepTags: [String]
    /// nil: no cap (`"0"` or `null` in the file).
    public var maxTotalSize: ByteSize?
    public var pruneAfterUpgrade: Bool
    /// How many of the newest pre-upgrade snapshots also keep a hot copy (see HotCopies.swift); 0: none.
    public var keepHot: Int

    public init(
        keepLast: Int, keepHourly: Int, keepDaily: Int, keepWeekly: Int, keepMonthly: Int,
        keepYearly: Int, keepWithin: RetentionDuration, keepPerRevision: Int, keepTags: [String],
        maxTotalSize: ByteSize?, pruneAfterUpgrade: Bool, keepHot: Int = 1
    ) {
        self.keepHot = keepHot
        self.keepLast = keepLast
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepYearly = keepYearly
        self.keepWithin = keepWithin
        self.keepPerRevision = keepPerRevision
        self.keepTags = keepTags
        self.maxTotalSize = maxTotalSize
        self.pruneAfterUpgrade = pruneAfterUpgrade
    }

    /// Equal to retention.json at the package root (a test holds them together).
    public static let builtInDefault = RetentionPolicy(
        keepLast: 10, keepHourly: 0, keepDaily: 7, keepWeekly: 4, keepMonthly: 6, keepYearly: 0,
        keepWithin: .zero, keepPerRevision: 1, keepTags: ["release"],
        maxTotalSize: ByteSize(bytes: 20 << 30), pruneAfterUpgrade: true, keepHot: 1
    )

    /// Every rule off and no cap: removes nothing.
    public static let empty = RetentionPolicy(
        keepLast: 0, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepYearly: 0,
        keepWithin: .zero, keepPerRevision: 0, keepTags: [], maxTotalSize: nil, pruneAfterUpgrade: false
    )

    /// Whether any `keep_*` rule is on. Without one, only `max_total_size` can remove anything.
    public var hasKeepRules: Bool {
        [keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly, keepPerRevision].contains { $0 > 0 }
            || !keepWithin.isZero || !keepTags.isEmpty
    }

    /// Every keep rule zero or empty and no size cap: this policy removes nothing.
    public var isEmpty: Bool { !hasKeepRules && maxTotalSize == nil }

    public static func load(path: String) throws(MigsnapError) -> RetentionPolicy {
        let data: Data
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .invalidInput("the retention policy \(UserText.line(path, limit: 300)) is a directory, not a JSON file",
                                hint: "Pass the path of a retention.json to --retention, or remove it to use the built-in default.")
        }
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .invalidInput("cannot read the retention policy \(path): \(error.localizedDescription)",
                                hint: "Check the path given to --retention, or remove the file to use the built-in default.")
        }
        return try parse(data, source: path)
    }

    /// Parses retention.json strictly: an unknown key, a wrong type, a negative count or a
    /// malformed size or duration is an error naming `source` and the key.
    public static func parse(_ data: Data, source: String) throws(MigsnapError) -> RetentionPolicy {
        let fields: [String: PolicyValue]
        do {
            fields = try JSONDecoder().decode([String: PolicyValue].self, from: data)
        } catch DecodingError.typeMismatch {
            throw .invalidInput("invalid retention policy \(source): the file must hold one JSON object, like {\"keep_last\": 10}")
        } catch {
            throw .invalidInput("invalid retention policy \(source): not valid JSON (\(jsonProblem(data)))",
                                hint: "Check the file's syntax: keys and strings in double quotes, commas between entries.")
        }
        do {
            return try RetentionPolicy(fields: fields)
        } catch {
            throw .invalidInput("invalid retention policy \(source): \(error.key) \(error.problem)", hint: error.hint)
        }
    }

    /// JSONDecoder only says "not valid JSON"; JSONSerialization also says where.
    private static func jsonProblem(_ data: Data) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return "it does not decode"
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        }
    }

    public init(from decoder: Decoder) throws {
        try self.init(fields: try [String: PolicyValue](from: decoder))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(keepLast, forKey: .keepLast)
        try c.encode(keepHourly, forKey: .keepHourly)
        try c.encode(keepDaily, forKey: .keepDaily)
        try c.encode(keepWeekly, forKey: .keepWeekly)
        try c.encode(keepMonthly, forKey: .keepMonthly)
        try c.encode(keepYearly, forKey: .keepYearly)
        try c.encode(keepWithin, forKey: .keepWithin)
        try c.encode(keepPerRevision, forKey: .keepPerRevision)
        try c.encode(keepTags, forKey: .keepTags)
        try c.encode(maxTotalSize?.description ?? "0", forKey: .maxTotalSize)
        try c.encode(pruneAfterUpgrade, forKey: .pruneAfterUpgrade)
        try c.encode(keepHot, forKey: .keepHot)
    }

    enum Key: String, CodingKey, CaseIterable {
        case keepLast = "keep_last"
        case keepHourly = "keep_hourly"
        case keepDaily = "keep_daily"
        case keepWeekly = "keep_weekly"
        case keepMonthly = "keep_monthly"
        case keepYearly = "keep_yearly"
        case keepWithin = "keep_within"
        case keepPerRevision = "keep_per_revision"
        case keepTags = "keep_tags"
        case maxTotalSize = "max_total_size"
        case pruneAfterUpgrade = "prune_after_upgrade"
        case keepHot = "keep_hot"
    }

    /// One problem with one key; `parse` adds the file name.
    struct FieldError: Error, CustomStringConvertible {
        let key: String
        let problem: String
        let hint: String?

        var description: String { "\(key) \(problem)" }
    }

    private init(fields: [String: PolicyValue]) throws(FieldError) {
        for name in fields.keys.sorted() where Key(rawValue: name) == nil {
            let suggestion = Self.closestKey(to: name).map { "Did you mean \"\($0)\"? " } ?? ""
            throw FieldError(key: name, problem: "is not a known key",
                             hint: "\(suggestion)Known keys: \(Key.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        let file = PolicyFields(values: fields)
        let d = Self.builtInDefault
        self.init(
            keepLast: try file.count(.keepLast) ?? d.keepLast,
            keepHourly: try file.count(.keepHourly) ?? d.keepHourly,
            keepDaily: try file.count(.keepDaily) ?? d.keepDaily,
            keepWeekly: try file.count(.keepWeekly) ?? d.keepWeekly,
            keepMonthly: try file.count(.keepMonthly) ?? d.keepMonthly,
            keepYearly: try file.count(.keepYearly) ?? d.keepYearly,
            keepWithin: try file.duration(.keepWithin) ?? d.keepWithin,
            keepPerRevision: try file.count(.keepPerRevision) ?? d.keepPerRevision,
            keepTags: try file.tags(.keepTags) ?? d.keepTags,
            maxTotalSize: try file.size(.maxTotalSize) ?? d.maxTotalSize,
            pruneAfterUpgrade: try file.bool(.pruneAfterUpgrade) ?? d.pruneAfterUpgrade,
            keepHot: try file.count(.keepHot) ?? d.keepHot
        )
    }

    /// The known key a typo most likely meant (`keep_dayly` → `keep_daily`), if any is close.
    static func closestKey(to name: String) -> String? {
        UserText.closest(to: name.lowercased().replacingOccurrences(of: "-", with: "_"), among: Key.allCases.map(\.rawValue), within: 3)
    }
}

/// The values of a policy file, read one key at a time; nil means the key is absent.
private struct PolicyFields {
    let values: [String: PolicyValue]

    private func value(_ key: RetentionPolicy.Key) -> PolicyValue? { values[key.rawValue] }

    private func error(_ key: RetentionPolicy.Key, _ problem: String, example: String) -> RetentionPolicy.FieldError {
        RetentionPolicy.FieldError(key: key.rawValue, problem: problem,
                                   hint: "Write it like \"\(key.rawValue)\": \(example), or remove it to use the default.")
    }

    func count(_ key: RetentionPolicy.Key) throws(RetentionPolicy.FieldError) -> Int? {
        guard let value = value(key) else { return nil }
        guard case .integer(let n) = value, let count = Int(exactly: n) else {
            throw error(key, "must be a whole number, got \(value)", example: "3")
        }
        guard count >= 0 else { throw error(key, "must not be negative, got \(value)", example: "0") }
        return count
    }

    func duration(_ key: RetentionPolicy.Key) throws(RetentionPolicy.FieldError) -> RetentionDuration? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else {
            throw error(key, "must be a duration in a string, got \(value)", example: "\"7d\"")
        }
        do {
            return try RetentionDuration.parse(text)
        } catch {
            throw self.error(key, error.message, example: "\"7d\"")
        }
    }

    /// nil: absent; `.some(nil)`: explicitly no cap.
    func size(_ key: RetentionPolicy.Key) throws(RetentionPolicy.FieldError) -> ByteSize?? {
        guard let value = value(key) else { return nil }
        let size: ByteSize
        switch value {
        case .null:
            return .some(nil)
        case .integer(let n) where n >= 0:
            size = ByteSize(bytes: n)
        case .string(let text):
            do {
                size = try ByteSize.parse(text)
            } catch {
                throw self.error(key, error.message, example: "\"20GiB\"")
            }
        default:
            throw error(key, "must be a size in a string, got \(value)", example: "\"20GiB\"")
        }
        return .some(size.bytes == 0 ? nil : size)
    }

    func tags(_ key: RetentionPolicy.Key) throws(RetentionPolicy.FieldError) -> [String]? {
        guard let value = value(key) else { return nil }
        guard case .array(let elements) = value else {
            throw error(key, "must be a list of tags, got \(value)", example: "[\"release\"]")
        }
        return try elements.map { element throws(RetentionPolicy.FieldError) in
            guard case .string(let tag) = element, !tag.isEmpty else {
                throw error(key, "must hold only non-empty strings, got \(element)", example: "[\"release\"]")
            }
            return tag
        }
    }

    func bool(_ key: RetentionPolicy.Key) throws(RetentionPolicy.FieldError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else {
            throw error(key, "must be true or false, got \(value)", example: "true")
        }
        return flag
    }
}

/// Any JSON value, kept as written so an error can say what it got.
private indirect enum PolicyValue: Decodable, CustomStringConvertible {
    case null
    case bool(Bool)
    /// A number with no fractional part (`3`, `3.0`, `3e0`).
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([PolicyValue])
    case object

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let flag = try? c.decode(Bool.self) {
            self = .bool(flag)
        } else if let n = try? c.decode(Int64.self) {
            self = .integer(n)
        } else if let x = try? c.decode(Double.self) {
            self = .number(x)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let elements = try? c.decode([PolicyValue].self) {
            self = .array(elements)
        } else {
            _ = try c.decode([String: PolicyValue].self)
            self = .object
        }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let flag): "\(flag)"
        case .integer(let n): "\(n)"
        case .number(let x): "\(x)"
        case .string(let s): "\"\(s)\""
        case .array: "a list"
        case .object: "an object"
        }
    }
}
