import Foundation

/// The subset of Python's configparser that alembic.ini uses: sections, `key = value` and
/// `key: value`, indented continuation lines, `#`/`;` comment lines, `%(name)s` interpolation
/// (from the same section, then DEFAULT, then the given defaults such as `here`), `%%` for `%`.
public struct IniFile: Sendable {
    public private(set) var sections: [String: [String: String]] = [:]
    public let path: String

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MigsnapError.invalidInput("Cannot read the config file \(path).",
                                            hint: "Check that it exists and is readable, or pass -c FILE.")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MigsnapError.invalidInput("The config file \(path) is not UTF-8 text.")
        }
        try self.init(text: text, path: path)
    }

    public init(text: String, path: String) throws {
        self.path = path
        var section: String?
        var lastKey: String?
        for (index, rawLine) in text.components(separatedBy: .newlines).enumerated() {
            let line = rawLine.replacingOccurrences(of: "\r", with: "")
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                lastKey = nil
                continue
            }
            if trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if line.first == " " || line.first == "\t", let section, let key = lastKey {
                // A continuation line belongs to the value above it.
                let existing = sections[section]?[key] ?? ""
                sections[section]?[key] = existing.isEmpty ? trimmed : existing + "\n" + trimmed
                continue
            }
            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]") else {
                    throw MigsnapError.invalidInput("\(path):\(index + 1): a section header is not closed with ']'.")
                }
                let name = String(trimmed.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                section = name
                if sections[name] == nil { sections[name] = [:] }
                lastKey = nil
                continue
            }
            guard let section else {
                throw MigsnapError.invalidInput("\(path):\(index + 1): a setting appears before any [section] header.")
            }
            let separator = trimmed.firstIndex(where: { $0 == "=" || $0 == ":" })
            guard let separator else {
                throw MigsnapError.invalidInput("\(path):\(index + 1): expected 'key = value'.")
            }
            let key = trimmed[..<separator].trimmingCharacters(in: .whitespaces).lowercased()
            let value = trimmed[trimmed.index(after: separator)...].trimmingCharacters(in: .whitespaces)
            sections[section]?[key] = value
            lastKey = key
        }
    }

    /// The raw value, without interpolation.
    public func raw(_ section: String, _ key: String) -> String? {
        sections[section]?[key.lowercased()] ?? sections["DEFAULT"]?[key.lowercased()]
    }

    /// The value with `%(name)s` and `%%` interpolated, as configparser's BasicInterpolation does.
    public func value(_ section: String, _ key: String, defaults: [String: String] = [:]) throws -> String? {
        guard let raw = raw(section, key) else { return nil }
        return try interpolate(raw, section: section, defaults: defaults, depth: 0)
    }

    private func interpolate(_ text: String, section: String, defaults: [String: String], depth: Int) throws -> String {
        guard depth < 10 else {
            throw MigsnapError.invalidInput("\(path): interpolation in [\(section)] is nested too deeply (a loop?).")
        }
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            guard c == "%" else {
                out.append(c)
                i = text.index(after: i)
                continue
            }
            let next = text.index(after: i)
            if next < text.endIndex, text[next] == "%" {
                out.append("%")
                i = text.index(after: next)
                continue
            }
            guard next < text.endIndex, text[next] == "(",
                  let close = text[next...].range(of: ")s") else {
                throw MigsnapError.invalidInput("\(path): a '%' in [\(section)] must be written '%%' or start '%(name)s'.")
            }
            let name = String(text[text.index(after: next)..<close.lowerBound]).lowercased()
            let replacement: String
            if let v = sections[section]?[name] ?? sections["DEFAULT"]?[name] {
                replacement = try interpolate(v, section: section, defaults: defaults, depth: depth + 1)
            } else if let v = defaults[name] {
                replacement = v
            } else {
                throw MigsnapError.invalidInput("\(path): [\(section)] refers to %(\(name))s, which is not defined.")
            }
            out += replacement
            i = close.upperBound
        }
        return out
    }
}
