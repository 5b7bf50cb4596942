/// Just enough of Python's tokenizer to read the module-level literals of an Alembic revision file
/// without running it: strings (all quote styles and prefixes), comments, brackets spanning lines,
/// backslash continuations and indentation. Anything else is kept as an opaque token, so that a
/// value we cannot read is reported instead of guessed.
struct PythonSourceScanner {
    enum Kind: Equatable {
        case name(String)
        /// A string literal's value; nil when it is not a plain `str` constant (f-string, bytes).
        case string(String?)
        case number
        case op(String)
    }

    struct Token: Equatable {
        var kind: Kind
        var line: Int
    }

    /// One logical line: the physical lines joined by brackets, continuations or triple quotes.
    struct LogicalLine {
        var indent: Int
        var line: Int
        var tokens: [Token]
    }

    struct SyntaxError: Error {
        var line: Int
        var reason: String
    }

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1

    static func logicalLines(_ source: String) throws(SyntaxError) -> [LogicalLine] {
        var scanner = PythonSourceScanner(bytes: Array(source.utf8))
        return try scanner.scanAll()
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private func peek(_ offset: Int = 0) -> UInt8? {
        let i = index + offset
        return i < bytes.count ? bytes[i] : nil
    }

    private mutating func scanAll() throws(SyntaxError) -> [LogicalLine] {
        var lines: [LogicalLine] = []
        var current: [Token] = []
        var depth = 0
        var indent = 0
        var atLineStart = true
        var startLine = 1

        while let c = peek() {
            if atLineStart {
                indent = 0
                while let s = peek(), s == UInt8(ascii: " ") || s == UInt8(ascii: "\t") || s == 0x0C {
                    indent += 1
                    index += 1
                }
                atLineStart = false
                startLine = line
                continue
            }
            switch c {
            case UInt8(ascii: "#"):
                while let s = peek(), s != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\n"):
                index += 1
                line += 1
                if depth == 0 {
                    if !current.isEmpty {
                        lines.append(LogicalLine(indent: indent, line: startLine, tokens: current))
                        current = []
                    }
                    atLineStart = true
                }
            case UInt8(ascii: "\\") where peek(1) == UInt8(ascii: "\n")
                || (peek(1) == UInt8(ascii: "\r") && peek(2) == UInt8(ascii: "\n")):
                index += peek(1) == UInt8(ascii: "\n") ? 2 : 3
                line += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), 0x0C:
                index += 1
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                current.append(try scanString(prefix: ""))
            case _ where Self.isIdentifierStart(c):
                let tokenLine = line
                let start = index
                while let s = peek(), Self.isIdentifierPart(s) { index += 1 }
                let name = String(decoding: bytes[start..<index], as: UTF8.self)
                if let q = peek(), q == UInt8(ascii: "'") || q == UInt8(ascii: "\""),
                    Self.stringPrefixes.contains(name.lowercased())
                {
                    current.append(try scanString(prefix: name.lowercased()))
                } else {
                    current.append(Token(kind: .name(name), line: tokenLine))
                }
            case _ where Self.isDigit(c) || (c == UInt8(ascii: ".") && peek(1).map(Self.isDigit) == true):
                while let s = peek(), Self.isIdentifierPart(s) || s == UInt8(ascii: ".") { index += 1 }
                current.append(Token(kind: .number, line: line))
            default:
                let op = scanOperator()
                if ["(", "[", "{"].contains(op) { depth += 1 }
                if [")", "]", "}"].contains(op) { depth = max(0, depth - 1) }
                current.append(Token(kind: .op(op), line: line))
            }
        }
        if !current.isEmpty {
            lines.append(LogicalLine(indent: indent, line: startLine, tokens: current))
        }
        return lines
    }

    private static let stringPrefixes: Set<String> = ["r", "u", "b", "f", "br", "rb", "fr", "rf"]

    private mutating func scanOperator() -> String {
        let c = bytes[index]
        let two = peek(1).map { String(decoding: [c, $0], as: UTF8.self) }
        if let two, ["==", "!=", "<=", ">=", ":=", "->", "+=", "-=", "*=", "/=", "|=", "&=", "**", "//"].contains(two) {
            index += 2
            return two
        }
        index += 1
        return String(decoding: [c], as: UTF8.self)
    }

    private mutating func scanString(prefix: String) throws(SyntaxError) -> Token {
        let startLine = line
        let quote = bytes[index]
        let triple = peek(1) == quote && peek(2) == quote
        index += triple ? 3 : 1
        let raw = prefix.contains("r")
        var value: [UInt8] = []
        while true {
            guard let c = peek() else {
                throw SyntaxError(line: startLine, reason: "unterminated string literal")
            }
            if c == quote && (!triple || (peek(1) == quote && peek(2) == quote)) {
                index += triple ? 3 : 1
                break
            }
            if c == UInt8(ascii: "\n") {
                guard triple else { throw SyntaxError(line: startLine, reason: "unterminated string literal") }
                line += 1
            }
            if c == UInt8(ascii: "\\"), let next = peek(1) {
                index += 2
                if next == UInt8(ascii: "\n") { line += 1 }
                if raw {
                    value += [c, next]
                } else {
                    value += Self.unescape(next)
                }
                continue
            }
            value.append(c)
            index += 1
        }
        let isPlainString = !prefix.contains("b") && !prefix.contains("f")
        return Token(kind: .string(isPlainString ? String(decoding: value, as: UTF8.self) : nil), line: startLine)
    }

    /// The common escapes; a revision id or branch label never needs the numeric ones.
    private static func unescape(_ c: UInt8) -> [UInt8] {
        switch c {
        case UInt8(ascii: "n"): return [UInt8(ascii: "\n")]
        case UInt8(ascii: "t"): return [UInt8(ascii: "\t")]
        case UInt8(ascii: "r"): return [UInt8(ascii: "\r")]
        case UInt8(ascii: "\n"): return []
        case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): return [c]
        default: return [UInt8(ascii: "\\"), c]
        }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func isIdentifierStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || c == UInt8(ascii: "_") || c >= 0x80
    }

    private static func isIdentifierPart(_ c: UInt8) -> Bool { isIdentifierStart(c) || isDigit(c) }
}
