/// Text that came from outside (an id, a target, a URL, a path, a child's stderr) as it may
/// appear in a message: on one line, control characters escaped, and shortened when long, so
/// that a pasted 100,000-character id or a URL with a newline cannot flood or split an error.
public enum UserText {
    /// `text` escaped and, beyond `limit` characters, cut in the middle with the length said.
    public static func line(_ text: String, limit: Int = 120) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                    || [0x2028, 0x2029].contains(scalar.value) {
                    escaped += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
        }
        guard escaped.count > limit else { return escaped }
        let keep = max(limit / 2 - 10, 1)
        return "\(escaped.prefix(keep))…(\(text.count) characters)…\(escaped.suffix(keep))"
    }

    /// A count with its noun, singular for one: "1 snapshot", "2 snapshots".
    public static func count(_ n: Int, _ singular: String, plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : plural ?? singular + "s")"
    }

    /// The candidate a typo most likely meant: the nearest by edit distance, if within `within`.
    public static func closest(to typed: String, among candidates: [String], within: Int) -> String? {
        let scored = candidates.map { ($0, editDistance(typed, $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= within else { return nil }
        return best.0
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let b = Array(b)
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1]
            for (j, cb) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// `line(text)` in single quotes, for echoing what the user typed.
    public static func quoted(_ text: String, limit: Int = 120) -> String {
        "'\(line(text, limit: limit))'"
    }

    /// A whole message made safe to print as one line: control characters escaped and every run
    /// of text without spaces longer than `word` characters (an id, a URL, a path) shortened. The
    /// last line of defence for text a message echoed without `line(_:)`.
    public static func message(_ text: String, word: Int = 300) -> String {
        line(text, limit: .max).split(separator: " ", omittingEmptySubsequences: false)
            .map { $0.count > word ? line(String($0), limit: word) : String($0) }
            .joined(separator: " ")
    }
}
