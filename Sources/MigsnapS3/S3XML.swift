import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The little XML that S3 answers with: leaf elements outside the repeated records (`IsTruncated`,
/// `NextContinuationToken`, an error's `Code`), and each repeated record (`Contents`, `Upload`) as
/// its leaves by name.
struct S3XML {
    var fields: [String: String] = [:]
    var records: [[String: String]] = []

    /// Parses `data`; `record` names the repeated element, if any. Nil when it is not XML.
    init?(_ data: Data, record: String? = nil) {
        let delegate = Delegate(record: record)
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        parser.shouldProcessNamespaces = false
        guard parser.parse() else { return nil }
        fields = delegate.fields
        records = delegate.records
    }

    private final class Delegate: NSObject, XMLParserDelegate {
        let record: String?
        var fields: [String: String] = [:]
        var records: [[String: String]] = []
        private var current: [String: String]?
        private var text = ""

        init(record: String?) {
            self.record = record
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            if name == record { current = [:] }
            text = ""
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            text += string
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == record, let done = current {
                records.append(done)
                current = nil
            } else if current != nil {
                if current?[name] == nil { current?[name] = text }
            } else {
                fields[name] = text
            }
            text = ""
        }
    }
}

/// Times as S3 writes them.
enum S3Time {
    /// `2024-05-01T12:00:00.000Z` in listings.
    static func iso8601(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt).parse(text) { return date }
        return try? Date.ISO8601FormatStyle(timeZone: .gmt).parse(text)
    }

    /// `Wed, 01 May 2024 12:00:00 GMT` in `Date` and `Last-Modified` headers.
    static func http(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}

extension String {
    /// Escaped for XML text.
    var xmlEscaped: String {
        var out = ""
        for c in self {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
