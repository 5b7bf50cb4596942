import Foundation

/// What a comparison covers: every table, or one; and whether to list that table's rows.
public struct DiffScope: Sendable, Equatable {
    /// Only this table, when set; a name that neither side has is `.invalidInput`.
    public var table: String?
    /// List at most this many rows of each kind (only in A, only in B, changed) of `table`; nil: counts only.
    public var rowLimit: Int?
    /// Tables left out of the comparison (as the engines name them): a plan's version table,
    /// tables the role may not read.
    public var skipped: Set<String>

    public init(table: String? = nil, rowLimit: Int? = nil, skipped: Set<String> = []) {
        self.table = table
        self.rowLimit = rowLimit
        self.skipped = skipped
    }
}

/// One value as the database holds it, for the rows `diff --rows` lists.
public enum DiffValue: Sendable, Equatable, Encodable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    /// The bytes in upper-case hex.
    case blob(hex: String)

    /// JSON: null, a number, a string, or `{"blob_hex": "…"}`.
    public func encode(to encoder: Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .integer(let n):
            var c = encoder.singleValueContainer()
            try c.encode(n)
        case .real(let x):
            var c = encoder.singleValueContainer()
            try c.encode(x)
        case .text(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .blob(let hex):
            try ["blob_hex": hex].encode(to: encoder)
        }
    }

    /// As a SQL literal: NULL, 12, 1.5, 'it''s', X'00FF'.
    public var literal: String {
        switch self {
        case .null: return "NULL"
        case .integer(let n): return String(n)
        case .real(let x): return String(x)
        case .text(let s): return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
        case .blob(let hex): return "X'\(hex)'"
        }
    }
}

/// Column names with values, in the table's column order; JSON: an object.
public struct DiffFields: Sendable, Equatable, Encodable {
    public var fields: [(column: String, value: DiffValue)]

    public init(_ fields: [(column: String, value: DiffValue)]) {
        self.fields = fields
    }

    public static func == (l: DiffFields, r: DiffFields) -> Bool {
        l.fields.map(\.column) == r.fields.map(\.column) && l.fields.map(\.value) == r.fields.map(\.value)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: DynamicKey.self)
        for (column, value) in fields {
            try c.encode(value, forKey: DynamicKey(column))
        }
    }

    /// `id=3`, `(a=1, b='x')`.
    public var description: String {
        let parts = fields.map { "\($0.column)=\($0.value.literal)" }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: ", ") + ")"
    }
}

struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// How two states of a database differ, table by table. Engines fill it; `diff` renders it.
public struct DatabaseDiff: Sendable, Equatable, Encodable {
    /// What rows are matched by.
    public struct Key: Sendable, Equatable, Encodable {
        public enum Kind: String, Sendable, Encodable {
            /// The primary key (of A, or of B where A has none that B has all columns of).
            case primaryKey = "primary_key"
            /// No usable key: whole rows over the columns both sides have, as a multiset
            /// (a row twice in A and once in B is once only in A). Rows cannot be changed, only
            /// on one side.
            case wholeRow = "whole_row"
        }

        public var kind: Kind
        /// The key's columns; for `wholeRow`, the columns compared.
        public var columns: [String]

        public init(kind: Kind, columns: [String]) {
            self.kind = kind
            self.columns = columns
        }

        /// `id`, `(a, b)`, `whole row`.
        public var description: String {
            switch kind {
            case .wholeRow: return "whole row"
            case .primaryKey: return columns.count == 1 ? columns[0] : "(" + columns.joined(separator: ", ") + ")"
            }
        }
    }

    /// A row on both sides whose values differ in columns both have.
    public struct ChangedRow: Sendable, Equatable, Encodable {
        public struct Change: Sendable, Equatable, Encodable {
            public var column: String
            public var a: DiffValue
            public var b: DiffValue

            public init(column: String, a: DiffValue, b: DiffValue) {
                self.column = column
                self.a = a
                self.b = b
            }
        }

        public var key: DiffFields
        public var changes: [Change]

        public init(key: DiffFields, changes: [Change]) {
            self.key = key
            self.changes = changes
        }
    }

    /// The first rows of each kind, in key order: keys (whole rows for `wholeRow`, a row
    /// repeated as often as it is in excess) and, for changed rows, the columns that differ.
    public struct Rows: Sendable, Equatable, Encodable {
        public var onlyInA: [DiffFields]
        public var onlyInB: [DiffFields]
        public var changed: [ChangedRow]

        public init(onlyInA: [DiffFields] = [], onlyInB: [DiffFields] = [], changed: [ChangedRow] = []) {
            self.onlyInA = onlyInA
            self.onlyInB = onlyInB
            self.changed = changed
        }

        enum CodingKeys: String, CodingKey {
            case onlyInA = "only_in_a", onlyInB = "only_in_b", changed
        }
    }

    /// A table both sides have.
    public struct Table: Sendable, Equatable, Encodable {
        public var name: String
        public var key: Key
        public var onlyInA: Int64
        public var onlyInB: Int64
        public var changed: Int64
        public var columnsOnlyInA: [String]
        public var columnsOnlyInB: [String]
        /// Listed rows, when the scope asked for them.
        public var rows: Rows?

        public init(name: String, key: Key, onlyInA: Int64 = 0, onlyInB: Int64 = 0, changed: Int64 = 0,
                    columnsOnlyInA: [String] = [], columnsOnlyInB: [String] = [], rows: Rows? = nil) {
            self.name = name
            self.key = key
            self.onlyInA = onlyInA
            self.onlyInB = onlyInB
            self.changed = changed
            self.columnsOnlyInA = columnsOnlyInA
            self.columnsOnlyInB = columnsOnlyInB
            self.rows = rows
        }

        public var isSame: Bool {
            onlyInA == 0 && onlyInB == 0 && changed == 0 && columnsOnlyInA.isEmpty && columnsOnlyInB.isEmpty
        }

        enum CodingKeys: String, CodingKey {
            case name, key, changed, rows
            case onlyInA = "only_in_a", onlyInB = "only_in_b"
            case columnsOnlyInA = "columns_only_in_a", columnsOnlyInB = "columns_only_in_b"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(key, forKey: .key)
            try c.encode(onlyInA, forKey: .onlyInA)
            try c.encode(onlyInB, forKey: .onlyInB)
            try c.encode(changed, forKey: .changed)
            try c.encode(columnsOnlyInA, forKey: .columnsOnlyInA)
            try c.encode(columnsOnlyInB, forKey: .columnsOnlyInB)
            // Always present, null without --rows: a stable shape.
            try c.encode(rows, forKey: .rows)
        }
    }

    /// Tables both sides have, by name.
    public var tables: [Table]
    public var tablesOnlyInA: [String]
    public var tablesOnlyInB: [String]

    public init(tables: [Table] = [], tablesOnlyInA: [String] = [], tablesOnlyInB: [String] = []) {
        self.tables = tables
        self.tablesOnlyInA = tablesOnlyInA
        self.tablesOnlyInB = tablesOnlyInB
    }

    public var isSame: Bool {
        tablesOnlyInA.isEmpty && tablesOnlyInB.isEmpty && tables.allSatisfy(\.isSame)
    }

    enum CodingKeys: String, CodingKey {
        case tables
        case tablesOnlyInA = "tables_only_in_a", tablesOnlyInB = "tables_only_in_b"
    }
}
