import Foundation

/// `MIGSNAP_S3_TRACE=1`: one line per HTTP request on stderr, for counting and timing what a
/// command asks of the bucket. A line says what was asked and how it went: the method, the store
/// object (its key less the store's prefix), the operation where the query names one, conditions,
/// the byte range and size, the status and the milliseconds. Never a header's value, the query's
/// tokens or the URL: no signature, no credentials, no upload id.
///
///     s3: PUT 20261127-120000-000.sqlite.gz part=2 range=8388608-16777215 size=8388608 status=200 ms=41
///     s3: PUT .lock if-none-match size=212 status=412 ms=3
///     s3: GET / list status=200 ms=5
public struct S3RequestTrace: Sendable {
    /// Stripped from keys: the store's prefix and its slash.
    let keyPrefix: String
    let write: @Sendable (String) -> Void

    public init(keyPrefix: String, write: @escaping @Sendable (String) -> Void = S3RequestTrace.toStandardError) {
        self.keyPrefix = keyPrefix
        self.write = write
    }

    /// The trace `MIGSNAP_S3_TRACE` asks for (any value but empty or `0`), or nil.
    public static func fromEnvironment(_ environment: [String: String], keyPrefix: String) -> S3RequestTrace? {
        guard let value = environment["MIGSNAP_S3_TRACE"], !value.isEmpty, value != "0" else { return nil }
        return S3RequestTrace(keyPrefix: keyPrefix)
    }

    public static let toStandardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// How one attempt ended: a status and the size of what came back, or no answer at all.
    enum Outcome {
        case answered(status: Int, size: Int64?)
        case noAnswer
    }

    func record(_ request: S3Client.S3Request, attempt: Int, outcome: Outcome, since start: Date) {
        var fields = ["s3:", request.method, target(request)] + operation(request)
        if request.headers.contains(where: { $0.0 == "If-None-Match" }) { fields.append("if-none-match") }
        if request.headers.contains(where: { $0.0 == "If-Match" }) { fields.append("if-match") }
        if let range = request.headers.first(where: { $0.0 == "Range" })?.1 {
            fields.append("range=" + range.dropFirst("bytes=".count))
        }
        switch request.body {
        case .empty: break
        case .data(let data): fields.append("size=\(data.count)")
        case .file(_, let offset, let length):
            if request.query.contains(where: { $0.0 == "partNumber" }) { fields.append("range=\(offset)-\(offset + length - 1)") }
            fields.append("size=\(length)")
        }
        switch outcome {
        case .answered(let status, let size):
            // What came back, where it is the object's bytes (an error's body is not).
            if request.body.length == 0, (200..<300).contains(status), let size { fields.append("size=\(size)") }
            fields.append("status=\(status)")
        case .noAnswer:
            fields.append("status=none")
        }
        fields.append("ms=\(Int((Date().timeIntervalSince(start) * 1000).rounded()))")
        if attempt > 1 { fields.append("attempt=\(attempt)") }
        write(fields.joined(separator: " "))
    }

    private func target(_ request: S3Client.S3Request) -> String {
        guard let key = request.key else { return "/" }
        return key.hasPrefix(keyPrefix) ? String(key.dropFirst(keyPrefix.count)) : key
    }

    /// The operation a query selects, without its values (tokens, upload ids).
    private func operation(_ request: S3Client.S3Request) -> [String] {
        let names = Set(request.query.map(\.0))
        if names.contains("list-type") { return names.contains("continuation-token") ? ["list", "next-page"] : ["list"] }
        if names.contains("uploads") { return request.key == nil ? ["list-uploads"] : ["create-upload"] }
        if let part = request.query.first(where: { $0.0 == "partNumber" }) { return ["part=\(part.1)"] }
        if names.contains("uploadId") { return [request.method == "POST" ? "complete-upload" : "abort-upload"] }
        return []
    }
}
