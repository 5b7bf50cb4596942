import Crypto
import Foundation
import MigsnapCore

/// An object in a listing: its full key.
public struct S3Object: Sendable, Equatable {
    public var key: String
    public var size: Int64
    public var modified: Date?
    public var etag: String
}

/// An incomplete multipart upload.
public struct S3Upload: Sendable, Equatable {
    public var key: String
    public var uploadID: String
    public var initiated: Date?
}

/// A response's body and the headers callers need.
public struct S3Reply: Sendable {
    public var status: Int
    public var body: Data
    public var etag: String?
    public var contentLength: Int64?
    /// The server's clock when it answered (the `Date` header).
    public var serverDate: Date?
    public var lastModified: Date?
    /// A ranged answer's `Content-Range`.
    public var contentRange: String?
    /// With a file sink: the SHA-256 of the bytes written to the file, computed as they arrived.
    public var sinkSHA256: String? = nil
}

/// S3 requests over libcurl: signed with SigV4, path-style, retried with backoff on 5xx and on
/// connection failures (never on 4xx). Safe to use from several threads at once.
public final class S3Client: @unchecked Sendable {
    public let configuration: S3Configuration
    let maxAttempts: Int
    let firstBackoff: TimeInterval
    let trace: S3RequestTrace?
    private let poolLock = NSLock()
    private var idleHandles: [CurlHandle] = []

    /// `maxAttempts` and `firstBackoff` are for tests; the backoff doubles per try. With `trace`,
    /// every request is reported when it ends (see `S3RequestTrace`).
    public init(configuration: S3Configuration, maxAttempts: Int = 4, firstBackoff: TimeInterval = 0.25, trace: S3RequestTrace? = nil) {
        self.configuration = configuration
        self.maxAttempts = max(1, maxAttempts)
        self.firstBackoff = firstBackoff
        self.trace = trace
    }

    // MARK: Objects

    /// Puts bytes (signed with their SHA-256) or a file (UNSIGNED-PAYLOAD: the store checks SHA-256
    /// itself). With `ifNoneMatch` it only creates: false when the key exists (412).
    @discardableResult
    public func putObject(bucket: String, key: String, data: Data, ifNoneMatch: Bool = false) throws -> Bool {
        try put(bucket: bucket, key: key, body: .data(data), ifNoneMatch: ifNoneMatch, progress: nil)
    }

    @discardableResult
    public func putObject(bucket: String, key: String, file: String, ifNoneMatch: Bool = false, progress: ((Int64) -> Void)? = nil) throws -> Bool {
        guard let size = FileSystem.fileSize(file) else { throw FileSystem.osError("read \(file)") }
        return try put(bucket: bucket, key: key, body: .file(path: file, offset: 0, length: size), ifNoneMatch: ifNoneMatch, progress: progress)
    }

    private func put(bucket: String, key: String, body: RequestBody, ifNoneMatch: Bool, progress: ((Int64) -> Void)?) throws -> Bool {
        let reply = try send(S3Request(method: "PUT", bucket: bucket, key: key, headers: ifNoneMatch ? [("If-None-Match", "*")] : [], body: body),
                             progress: progress, accepting: ifNoneMatch ? [412] : [])
        return reply.status != 412
    }

    /// The whole object in memory, or nil when there is no such key.
    public func getObject(bucket: String, key: String) throws -> S3Reply? {
        let reply = try send(S3Request(method: "GET", bucket: bucket, key: key), missingKeyIsNil: true)
        return reply.status == 404 ? nil : reply
    }

    /// Streams the object into `file` (created 0600, replaced). False when there is no such key.
    public func getObject(bucket: String, key: String, into file: String, progress: ((Int64) -> Void)? = nil) throws -> Bool {
        try download(bucket: bucket, key: key, into: file, progress: progress) != nil
    }

    /// Downloads into `file` and returns the SHA-256 of the bytes written, computed on the way;
    /// nil when there is no such key.
    public func download(bucket: String, key: String, into file: String, progress: ((Int64) -> Void)? = nil) throws -> String? {
        let reply = try send(S3Request(method: "GET", bucket: bucket, key: key), sink: .file(file), progress: progress,
                             missingKeyIsNil: true)
        guard reply.status != 404 else { return nil }
        // An empty object writes nothing; its digest is that of no bytes all the same.
        return reply.sinkSHA256 ?? Hashing.sha256(of: Data())
    }

    /// Writes bytes `offset..<offset+length` of the object to the same place in `file`, leaving the
    /// rest of the file alone. Returns how many bytes came and the object's whole size, nil when
    /// there is no such key.
    func download(bucket: String, key: String, offset: Int64, length: Int64, into file: String,
                  progress: ((Int64) -> Void)? = nil) throws -> (count: Int64, objectSize: Int64)? {
        let reply = try send(S3Request(method: "GET", bucket: bucket, key: key, headers: [("Range", "bytes=\(offset)-\(offset + length - 1)")]),
                             sink: .region(file, offset: offset), progress: progress, missingKeyIsNil: true)
        guard reply.status != 404 else { return nil }
        // "bytes FIRST-LAST/SIZE"; a server that ignored the range would have written the whole object at `offset`.
        guard reply.status == 206, let range = reply.contentRange, let total = range.split(separator: "/").last.flatMap({ Int64($0) }),
              let count = reply.contentLength else {
            throw MigsnapError.failed("The S3 service at \(configuration.endpoint) did not answer a ranged GET of s3://\(bucket)/\(key) with the range.")
        }
        return (count, total)
    }

    /// `length` bytes from `offset`, fewer at the end, none past it; nil when there is no such key.
    public func getRange(bucket: String, key: String, offset: Int64, length: Int64) throws -> Data? {
        guard length > 0 else { return try headObject(bucket: bucket, key: key) == nil ? nil : Data() }
        let reply = try send(S3Request(method: "GET", bucket: bucket, key: key, headers: [("Range", "bytes=\(offset)-\(offset + length - 1)")]),
                             accepting: [416], missingKeyIsNil: true)
        switch reply.status {
        case 404: return nil
        case 416: return Data()
        case 206: return reply.body
        default:
            // A server that ignores Range sends everything.
            let start = Int(min(offset, Int64(reply.body.count)))
            return reply.body.subdata(in: start..<min(reply.body.count, start + Int(length)))
        }
    }

    /// The object's size and ETag, or nil when there is no such key.
    public func headObject(bucket: String, key: String) throws -> (size: Int64, etag: String)? {
        let reply = try send(S3Request(method: "HEAD", bucket: bucket, key: key), missingKeyIsNil: true)
        guard reply.status != 404 else { return nil }
        return (reply.contentLength ?? 0, reply.etag ?? "")
    }

    /// Deletes the key; a missing key is not an error.
    public func deleteObject(bucket: String, key: String) throws {
        _ = try send(S3Request(method: "DELETE", bucket: bucket, key: key), missingKeyIsNil: true)
    }

    /// Every object whose key starts with `prefix`, in key order, one page of up to 1000 at a time.
    public func listObjects(bucket: String, prefix: String) throws -> [S3Object] {
        var objects: [S3Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")]
            if let token { query.append(("continuation-token", token)) }
            let reply = try send(S3Request(method: "GET", bucket: bucket, query: query))
            guard let xml = S3XML(reply.body, record: "Contents") else { throw malformed("ListObjectsV2", bucket) }
            objects += xml.records.compactMap { record in
                guard let key = record["Key"] else { return nil }
                return S3Object(key: key, size: Int64(record["Size"] ?? "") ?? 0, modified: record["LastModified"].flatMap(S3Time.iso8601),
                                etag: record["ETag"] ?? "")
            }
            token = xml.fields["IsTruncated"] == "true" ? xml.fields["NextContinuationToken"] : nil
        } while token != nil
        return objects
    }

    /// Creates a bucket (for tests and first setup); one that we already own is fine.
    public func createBucket(_ bucket: String) throws {
        let body = configuration.region == "us-east-1" ? Data()
            : Data("<CreateBucketConfiguration><LocationConstraint>\(configuration.region.xmlEscaped)</LocationConstraint></CreateBucketConfiguration>".utf8)
        let reply = try send(S3Request(method: "PUT", bucket: bucket, body: .data(body)), accepting: [409])
        if reply.status == 409 && errorCode(reply.body) != "BucketAlreadyOwnedByYou" {
            throw MigsnapError.invalidInput("The S3 bucket '\(bucket)' exists and belongs to someone else.")
        }
    }

    // MARK: Multipart uploads

    public func createMultipartUpload(bucket: String, key: String) throws -> String {
        let reply = try send(S3Request(method: "POST", bucket: bucket, key: key, query: [("uploads", "")]))
        guard let id = S3XML(reply.body)?.fields["UploadId"], !id.isEmpty else { throw malformed("CreateMultipartUpload", bucket) }
        return id
    }

    /// Sends bytes `offset..<offset+length` of `file` as part `number`; returns its ETag.
    func uploadPart(bucket: String, key: String, uploadID: String, number: Int, file: String, offset: Int64, length: Int64,
                    progress: ((Int64) -> Void)?) throws -> String {
        let reply = try send(S3Request(method: "PUT", bucket: bucket, key: key, query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
                                       body: .file(path: file, offset: offset, length: length)), progress: progress)
        guard let etag = reply.etag else { throw malformed("UploadPart", bucket) }
        return etag
    }

    /// Joins the parts into the object, which appears whole.
    func completeMultipartUpload(bucket: String, key: String, uploadID: String, etags: [String]) throws {
        let parts = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\($0.element.xmlEscaped)</ETag></Part>" }
        let body = Data("<CompleteMultipartUpload>\(parts.joined())</CompleteMultipartUpload>".utf8)
        let reply = try send(S3Request(method: "POST", bucket: bucket, key: key, query: [("uploadId", uploadID)], body: .data(body)))
        // S3 may answer 200 and report the failure in the body.
        if let code = errorCode(reply.body) {
            throw MigsnapError.failed("S3 could not complete the upload of s3://\(bucket)/\(key): \(code).")
        }
    }

    public func abortMultipartUpload(bucket: String, key: String, uploadID: String) throws {
        _ = try send(S3Request(method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)]), missingKeyIsNil: true)
    }

    /// Incomplete multipart uploads whose keys start with `prefix`, and the server's time when it answered.
    public func listMultipartUploads(bucket: String, prefix: String) throws -> (uploads: [S3Upload], serverDate: Date?) {
        var uploads: [S3Upload] = []
        var markers: (key: String, id: String)?
        var serverDate: Date?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.id)] }
            let reply = try send(S3Request(method: "GET", bucket: bucket, query: query))
            serverDate = serverDate ?? reply.serverDate
            guard let xml = S3XML(reply.body, record: "Upload") else { throw malformed("ListMultipartUploads", bucket) }
            uploads += xml.records.compactMap { record in
                guard let key = record["Key"], let id = record["UploadId"] else { return nil }
                return S3Upload(key: key, uploadID: id, initiated: record["Initiated"].flatMap(S3Time.iso8601))
            }
            markers = xml.fields["IsTruncated"] == "true" ? (xml.fields["NextKeyMarker"] ?? "", xml.fields["NextUploadIdMarker"] ?? "") : nil
        } while markers != nil
        return (uploads, serverDate)
    }

    // MARK: Sending

    struct S3Request {
        var method: String
        var bucket: String
        var key: String? = nil
        var query: [(String, String)] = []
        var headers: [(String, String)] = []
        var body: RequestBody = .empty
    }

    /// Sends with retries. A 2xx or a status in `accepting` is returned; anything else throws.
    /// With `missingKeyIsNil`, a 404 that is not NoSuchBucket counts as the accepted 404.
    func send(_ request: S3Request, sink: ResponseSink = .memory, progress: ((Int64) -> Void)? = nil,
              accepting: Set<Int> = [], missingKeyIsNil: Bool = false) throws -> S3Reply {
        let path = "/\(request.bucket)" + (request.key.map { "/\($0)" } ?? "")
        let query = SigV4.canonicalQuery(request.query)
        let url = configuration.endpoint + SigV4.encode(path, keepSlash: true) + (query.isEmpty ? "" : "?\(query)")
        let payloadHash: String
        switch request.body {
        case .empty: payloadHash = SigV4.hex(SHA256.hash(data: Data()))
        case .data(let data): payloadHash = SigV4.hex(SHA256.hash(data: data))
        case .file: payloadHash = SigV4.unsignedPayload
        }
        let host = String(configuration.endpoint.drop { $0 != "/" }.dropFirst(2))
        var attempt = 1
        while true {
            let headers = [("Host", host)] + request.headers
            let signed = SigV4.sign(method: request.method, path: path, query: request.query, headers: headers, payloadHash: payloadHash,
                                    date: Date(), region: configuration.region, service: "s3", credentials: configuration.credentials)
            let response: HTTPResponse
            let started = Date()
            do {
                response = try withHandle {
                    try $0.perform(method: request.method, url: url, headers: headers + signed, body: request.body, sink: sink, progress: progress)
                }
            } catch let failure as TransportFailure {
                trace?.record(request, attempt: attempt, outcome: .noAnswer, since: started)
                if failure.isTransient && attempt < maxAttempts {
                    backoff(attempt)
                    attempt += 1
                    continue
                }
                throw MigsnapError.failed(
                    "Could not reach the S3 endpoint \(configuration.endpoint): \(failure.message).",
                    hint: "Check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and that the service is running; nothing was changed by this request.")
            }
            trace?.record(request, attempt: attempt, outcome: .answered(
                status: response.status, size: response.headers["content-length"].flatMap { Int64($0) } ?? Int64(response.body.count)), since: started)
            // 501 is an answer, not a hiccup: the server lacks the feature.
            if response.status >= 500 && response.status != 501 && attempt < maxAttempts {
                backoff(attempt)
                attempt += 1
                continue
            }
            let reply = S3Reply(status: response.status, body: response.body, etag: response.headers["etag"],
                                contentLength: response.headers["content-length"].flatMap { Int64($0) },
                                serverDate: response.headers["date"].flatMap(S3Time.http),
                                lastModified: response.headers["last-modified"].flatMap(S3Time.http),
                                contentRange: response.headers["content-range"],
                                sinkSHA256: response.sinkSHA256)
            if (200..<300).contains(response.status) { return reply }
            if response.status == 404 && missingKeyIsNil {
                if errorCode(response.body) == "NoSuchBucket" { throw error(for: response, request) }
                return reply
            }
            if accepting.contains(response.status) { return reply }
            throw error(for: response, request)
        }
    }

    private func withHandle<T>(_ body: (CurlHandle) throws -> T) throws -> T {
        poolLock.lock()
        let idle = idleHandles.popLast()
        poolLock.unlock()
        let handle = try idle ?? CurlHandle()
        defer {
            poolLock.lock()
            if idleHandles.count < 16 { idleHandles.append(handle) }
            poolLock.unlock()
        }
        return try body(handle)
    }

    private func backoff(_ attempt: Int) {
        let delay = firstBackoff * pow(2, Double(attempt - 1)) * Double.random(in: 0.8...1.2)
        Thread.sleep(forTimeInterval: delay)
    }

    private func errorCode(_ body: Data) -> String? {
        guard !body.isEmpty, let xml = S3XML(body), xml.fields["Code"] != nil, xml.records.isEmpty else { return nil }
        return xml.fields["Code"]
    }

    /// One line for people; never the credentials, never the server's long message for auth failures.
    private func error(for response: HTTPResponse, _ request: S3Request) -> MigsnapError {
        let code = errorCode(response.body)
        let target = "s3://\(request.bucket)" + (request.key.map { "/\($0)" } ?? "")
        switch (response.status, code) {
        case (403, "InvalidAccessKeyId"), (403, "SignatureDoesNotMatch"), (403, nil):
            return .invalidInput(
                "The S3 service at \(configuration.endpoint) rejected the credentials (\(code ?? "403 Forbidden")).",
                hint: "Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the keys of AWS_PROFILE).")
        case (403, let code?):
            return .invalidInput("Access to \(target) was denied (\(code)).",
                                 hint: code == "RequestTimeTooSkewed" ? "Check this machine's clock." : "Check the credentials' permissions on the bucket.")
        case (404, "NoSuchBucket"):
            return .invalidInput("The S3 bucket '\(request.bucket)' does not exist at \(configuration.endpoint).",
                                 hint: "Create the bucket, or check the store URL and AWS_ENDPOINT_URL.")
        default:
            return .failed("S3 \(request.method) \(target) failed: HTTP \(response.status)\(code.map { " \($0)" } ?? "").")
        }
    }

    private func malformed(_ operation: String, _ bucket: String) -> MigsnapError {
        .failed("The S3 service at \(configuration.endpoint) sent an unreadable \(operation) answer for bucket '\(bucket)'.")
    }
}
