import Foundation

/// Reads `[tool.alembic]` (Alembic 1.16+) or `[tool.migsnap]` from pyproject.toml: string, boolean
/// and array-of-string values, which is all they hold. Other TOML is skipped, not parsed.
enum PyProjectAlembic {
    static func read(path: String, table: String = "tool.alembic") throws -> [String: String]? {
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else { return nil }
        var values: [String: String] = [:]
        var inTable = false
        var found = false
        var pendingKey: String?
        var pendingArray = ""
        for (index, rawLine) in text.components(separatedBy: .newlines).enumerated() {
            let line = stripComment(rawLine).trimmingCharacters(in: .whitespaces)
            if let key = pendingKey {
                pendingArray += " " + line
                if line.contains("]") {
                    values[key] = try arrayValue(pendingArray, path: path, line: index + 1)
                    pendingKey = nil
                }
                continue
            }
            if line.hasPrefix("[") {
                inTable = line == "[\(table)]"
                found = found || inTable
                continue
            }
            guard inTable, !line.isEmpty, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("[") {
                if value.contains("]") {
                    values[key] = try arrayValue(value, path: path, line: index + 1)
                } else {
                    pendingKey = key
                    pendingArray = value
                }
            } else if value == "true" || value == "false" {
                values[key] = value
            } else if let s = stringValue(value) {
                values[key] = s
            } else {
                throw MigsnapError.invalidInput("\(path):\(index + 1): cannot read the value of '\(key)' in [\(table)].")
            }
        }
        return found ? values : nil
    }

    /// Arrays become one string joined by newlines, which the version-location splitter accepts.
    private static func arrayValue(_ text: String, path: String, line: Int) throws -> String {
        let inner = text.drop(while: { $0 != "[" }).dropFirst().prefix(while: { $0 != "]" })
        var items: [String] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let s = stringValue(t) else {
                throw MigsnapError.invalidInput("\(path):\(line): cannot read an array item in [tool.alembic].")
            }
            items.append(s)
        }
        return items.joined(separator: "\n")
    }

    private static func stringValue(_ text: String) -> String? {
        for q in ["\"", "'"] where text.hasPrefix(q) && text.hasSuffix(q) && text.count >= 2 {
            return String(text.dropFirst().dropLast())
        }
        return nil
    }

    private static func stripComment(_ line: String) -> String {
        var quote: Character?
        for (offset, c) in line.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" {
                return String(line.prefix(offset))
            }
        }
        return line
    }
}
