import Foundation

/// One Alembic revision file, as far as planning needs it.
public struct RevisionScript: Sendable, Equatable {
    public var revision: String
    public var downRevisions: [String]
    public var branchLabels: [String]
    public var dependsOn: [String]
    public var path: String
    /// Hex SHA-256 of the file's bytes: the guard recognises an undone migration by it.
    public var contentSHA256: String
    /// The first line of the module docstring, for display.
    public var message: String?

    public init(
        revision: String, downRevisions: [String], branchLabels: [String] = [], dependsOn: [String] = [],
        path: String, contentSHA256: String = "", message: String? = nil
    ) {
        self.revision = revision
        self.downRevisions = downRevisions
        self.branchLabels = branchLabels
        self.dependsOn = dependsOn
        self.path = path
        self.contentSHA256 = contentSHA256
        self.message = message
    }
}

/// Reads revision files the way Alembic's ScriptDirectory finds them, but statically: the
/// project's Python is never run.
public enum RevisionFileReader {
    /// A value only Python can compute (an imported constant, an expression): `load` throws it so
    /// that the caller can ask Alembic for its own map instead; `parse` throws `error`.
    public struct ComputedValue: Error, Sendable {
        public var path: String
        public var line: Int
        public var name: String
        public var error: MigsnapError
    }

    /// Every `*.py` revision file in the version locations, in Alembic's load order: each directory's
    /// files sorted by name, subdirectories (when recursive) sorted and walked depth first.
    /// `__init__*` and editor lock files (`.#*`) are skipped, as are `__pycache__` directories;
    /// sourceless `.pyc` files are not read (Alembic reads them only with `sourceless = true`).
    public static func load(versionLocations: [String], recursive: Bool) throws -> [RevisionScript] {
        var seen = Set<String>()
        var scripts: [RevisionScript] = []
        for location in versionLocations where directoryExists(location) {
            for path in try pythonFiles(in: location, recursive: recursive) {
                let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
                guard seen.insert(real).inserted else { continue }
                let data: Data
                do {
                    data = try Data(contentsOf: URL(fileURLWithPath: path))
                } catch {
                    throw MigsnapError.invalidInput(
                        "cannot read revision file \(path): \(error.localizedDescription)",
                        hint: "Check the file's permissions.")
                }
                guard let source = String(data: data, encoding: .utf8) else {
                    throw MigsnapError.invalidInput(
                        "\(path) is not UTF-8 text", hint: "Save the revision file as UTF-8, as Python expects.")
                }
                var script = try read(source: source, path: path)
                script.contentSHA256 = Hashing.sha256(of: data)
                scripts.append(script)
            }
        }
        return scripts
    }

    private static func directoryExists(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Python sorts names by code point, which is the order of their UTF-8 bytes.
    private static func pythonOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    private static func isRevisionFileName(_ name: String) -> Bool {
        name.hasSuffix(".py") && !name.hasPrefix(".#") && !name.hasPrefix("__init__") && !name.contains("\n")
    }

    private static func pythonFiles(in directory: String, recursive: Bool) throws -> [String] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory).sorted(by: pythonOrder)
        } catch {
            throw MigsnapError.invalidInput(
                "cannot list version directory \(directory): \(error.localizedDescription)",
                hint: "Check the directory's permissions.")
        }
        var files: [String] = []
        var subdirectories: [String] = []
        for name in entries {
            let path = (directory as NSString).appendingPathComponent(name)
            if directoryExists(path) {
                subdirectories.append(path)
            } else if isRevisionFileName(name) {
                files.append(path)
            }
        }
        guard recursive else { return files }
        for subdirectory in subdirectories where !subdirectory.hasSuffix("__pycache__") {
            files += try pythonFiles(in: subdirectory, recursive: true)
        }
        return files
    }

    private static let names: Set<String> = ["revision", "down_revision", "branch_labels", "depends_on"]

    private enum Value {
        case none
        case string(String)
        case sequence([String])

        var strings: [String] {
            switch self {
            case .none: return []
            case .string(let s): return [s]
            case .sequence(let items): return items
            }
        }
    }

    /// Reads the module-level `revision`, `down_revision`, `branch_labels` and `depends_on`
    /// assignments (plain or annotated; the last one wins, as when Python runs the module) and the
    /// docstring. A value that is not a literal is an error naming the file and line.
    public static func parse(source: String, path: String) throws -> RevisionScript {
        do {
            return try read(source: source, path: path)
        } catch let computed as ComputedValue {
            throw computed.error
        }
    }

    private static func read(source: String, path: String) throws -> RevisionScript {
        let lines: [PythonSourceScanner.LogicalLine]
        do {
            lines = try PythonSourceScanner.logicalLines(source)
        } catch {
            throw MigsnapError.invalidInput(
                "\(path):\(error.line): \(error.reason)", hint: "Fix the revision file; Python cannot load it either.")
        }
        var values: [String: Value] = [:]
        for logical in lines where logical.indent == 0 {
            for statement in split(logical.tokens, on: ";") {
                guard case .name(let name)? = statement.first?.kind, names.contains(name),
                    let valueTokens = assignedValue(statement)
                else { continue }
                values[name] = try literal(valueTokens, name: name, path: path, line: statement[0].line)
            }
        }

        let fileName = (path as NSString).lastPathComponent
        let revision: String
        switch values["revision"] {
        case .string(let id)?:
            revision = id
        case nil where fileName.range(of: #"^[a-f0-9]+\.py$"#, options: .regularExpression) != nil:
            revision = String(fileName.dropLast(3))
        case nil:
            throw MigsnapError.invalidInput(
                "could not determine revision id from \(path)",
                hint: "Declare `revision = \"...\"` at the top level of the revision file.")
        case .some:
            throw MigsnapError.invalidInput(
                "\(path): revision must be a single string", hint: "Write `revision = \"<id>\"`.")
        }
        guard let down = values["down_revision"] else {
            throw MigsnapError.invalidInput(
                "\(path) has no down_revision",
                hint: "Declare `down_revision = None` for a first revision, or the id of its parent.")
        }
        return RevisionScript(
            revision: revision,
            downRevisions: down.strings,
            branchLabels: values["branch_labels"]?.strings ?? [],
            dependsOn: values["depends_on"]?.strings ?? [],
            path: path,
            message: docstringFirstLine(lines.first)
        )
    }

    private static func docstringFirstLine(_ first: PythonSourceScanner.LogicalLine?) -> String? {
        guard let first, first.tokens.count == 1, case .string(let doc?) = first.tokens[0].kind else { return nil }
        let line = doc.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n", omittingEmptySubsequences: false)
            .first.map { $0.trimmingCharacters(in: .whitespaces) }
        return line?.isEmpty == false ? line : nil
    }

    private typealias Tokens = ArraySlice<PythonSourceScanner.Token>

    /// Splits at `separator` outside brackets.
    private static func split(_ tokens: some Collection<PythonSourceScanner.Token>, on separator: String) -> [Tokens] {
        var parts: [Tokens] = []
        var current: [PythonSourceScanner.Token] = []
        var depth = 0
        for token in tokens {
            if case .op(let op) = token.kind {
                if ["(", "[", "{"].contains(op) { depth += 1 }
                if [")", "]", "}"].contains(op) { depth -= 1 }
                if op == separator && depth == 0 {
                    parts.append(current[...])
                    current = []
                    continue
                }
            }
            current.append(token)
        }
        parts.append(current[...])
        return parts
    }

    /// The tokens after `=` in `name = …` or `name: annotation = …`; nil when the statement is not
    /// an assignment to the name (a bare annotation, an attribute access, a comparison).
    private static func assignedValue(_ statement: Tokens) -> Tokens? {
        let rest = statement.dropFirst()
        guard case .op(let op)? = rest.first?.kind else { return nil }
        switch op {
        case "=":
            return rest.dropFirst()
        case ":":
            let parts = split(rest.dropFirst(), on: "=")
            return parts.count > 1 ? parts.dropFirst().reduce(into: Tokens()) { $0 += $1 } : nil
        default:
            return nil
        }
    }

    private static func literal(_ tokens: Tokens, name: String, path: String, line: Int) throws -> Value {
        let unreadable = ComputedValue(path: path, line: line, name: name, error: .invalidInput(
            "\(path):\(line): cannot read \(name) without running Python; migsnap reads only literal values",
            hint: "Write \(name) as a string, a tuple or list of strings, or None."))
        if tokens.count == 1, case .name("None") = tokens.first?.kind { return .none }
        if let string = concatenatedString(tokens) { return .string(string) }

        let body: Tokens
        if isEnclosed(tokens, open: "(", close: ")") || isEnclosed(tokens, open: "[", close: "]") {
            body = tokens.dropFirst().dropLast()
        } else if split(tokens, on: ",").count > 1 {
            body = tokens
        } else {
            throw unreadable
        }
        if body.isEmpty { return .sequence([]) }
        var elements = split(body, on: ",")
        if elements.count > 1, elements.last?.isEmpty == true { elements.removeLast() }
        return .sequence(
            try elements.map { element in
                guard let string = concatenatedString(element) else { throw unreadable }
                return string
            })
    }

    /// True when the first token opens a bracket that the last token closes.
    private static func isEnclosed(_ tokens: Tokens, open: String, close: String) -> Bool {
        guard tokens.count >= 2, tokens.first?.kind == .op(open), tokens.last?.kind == .op(close) else { return false }
        var depth = 0
        for (offset, token) in tokens.enumerated() {
            guard case .op(let op) = token.kind else { continue }
            if ["(", "[", "{"].contains(op) { depth += 1 }
            if [")", "]", "}"].contains(op) { depth -= 1 }
            if depth == 0 { return offset == tokens.count - 1 }
        }
        return false
    }

    /// Adjacent string literals, as Python joins them; parentheses around them are grouping.
    private static func concatenatedString(_ tokens: Tokens) -> String? {
        var tokens = tokens
        while isEnclosed(tokens, open: "(", close: ")"), split(tokens.dropFirst().dropLast(), on: ",").count == 1 {
            tokens = tokens.dropFirst().dropLast()
        }
        guard !tokens.isEmpty else { return nil }
        var result = ""
        for token in tokens {
            guard case .string(let value?) = token.kind else { return nil }
            result += value
        }
        return result
    }
}
