import CCurl
import Crypto
import Foundation
import MigsnapCore

/// What a request sends. A file part is read straight from disk, so a retry can send it again and
/// memory does not grow with the part.
enum RequestBody: Sendable {
    case empty
    case data(Data)
    case file(path: String, offset: Int64, length: Int64)

    var length: Int64 {
        switch self {
        case .empty: return 0
        case .data(let data): return Int64(data.count)
        case .file(_, _, let length): return length
        }
    }
}

/// Where a successful response's body goes; an error body always stays in memory.
enum ResponseSink: Sendable {
    case memory
    case file(String)
    /// Into an existing file from `offset` on, leaving the rest of it as it is (a ranged GET;
    /// a retry writes the same bytes to the same places again).
    case region(String, offset: Int64)
}

struct HTTPResponse: Sendable {
    var status: Int
    /// Names lowercased; the last of repeated headers.
    var headers: [String: String]
    var body: Data
    /// With a file sink: the SHA-256 of what was written to it, hex, computed as it arrived.
    var sinkSHA256: String? = nil
}

/// A transfer that ended without an HTTP response: libcurl's code and its words for it.
struct TransportFailure: Error {
    var code: CURLcode
    var message: String

    /// Worth another try: the connection failed or stalled, not the request.
    var isTransient: Bool {
        [CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR,
         CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE].contains(code)
    }
}

/// One libcurl easy handle. Reused across requests so its connections are kept alive.
final class CurlHandle {
    private static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    let raw: UnsafeMutableRawPointer
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init() throws {
        guard CurlHandle.globalInit == CURLE_OK, let raw = curl_easy_init() else {
            throw MigsnapError.failed("Could not initialise libcurl.")
        }
        self.raw = raw
    }

    deinit {
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }

    /// Sends one request and collects the response. Throws `TransportFailure` when no response came,
    /// `MigsnapError` when a local file could not be read or written.
    func perform(method: String, url: String, headers: [(String, String)], body: RequestBody,
                 sink: ResponseSink, progress: ((Int64) -> Void)?) throws -> HTTPResponse {
        curl_easy_reset(raw)
        let transfer = try Transfer(body: body, sink: sink, progress: progress)
        defer { transfer.close() }
        var list: UnsafeMutablePointer<curl_slist>?
        // No "Expect: 100-continue" round trip before uploads.
        for line in headers.map({ "\($0.0): \($0.1)" }) + ["Expect:"] {
            list = curl_slist_append(list, line)
        }
        defer { curl_slist_free_all(list) }
        errorBuffer[0] = 0
        let context = Unmanaged.passUnretained(transfer).toOpaque()

        migsnap_curl_setopt_pointer(raw, CURLOPT_URL, url)
        migsnap_curl_setopt_pointer(raw, CURLOPT_PROTOCOLS_STR, "http,https")
        migsnap_curl_setopt_pointer(raw, CURLOPT_ERRORBUFFER, errorBuffer)
        migsnap_curl_setopt_pointer(raw, CURLOPT_HTTPHEADER, list)
        migsnap_curl_setopt_long(raw, CURLOPT_NOSIGNAL, 1)
        migsnap_curl_setopt_long(raw, CURLOPT_CONNECTTIMEOUT, 10)
        // A stalled transfer fails; a slow but moving one of many GiB does not.
        migsnap_curl_setopt_long(raw, CURLOPT_LOW_SPEED_LIMIT, 1)
        migsnap_curl_setopt_long(raw, CURLOPT_LOW_SPEED_TIME, 60)
        // Payloads move in large pieces: bigger buffers than libcurl's 16 KiB (receive) and 64 KiB
        // (send) mean fewer callbacks, writes and hash updates per byte; a few handles at most.
        migsnap_curl_setopt_long(raw, CURLOPT_BUFFERSIZE, 256 << 10)
        migsnap_curl_setopt_long(raw, CURLOPT_UPLOAD_BUFFERSIZE, 256 << 10)
        migsnap_curl_setopt_data_callback(raw, CURLOPT_HEADERFUNCTION, headerCallback)
        migsnap_curl_setopt_pointer(raw, CURLOPT_HEADERDATA, context)
        migsnap_curl_setopt_data_callback(raw, CURLOPT_WRITEFUNCTION, writeCallback)
        migsnap_curl_setopt_pointer(raw, CURLOPT_WRITEDATA, context)
        switch (method, body) {
        case ("GET", _):
            migsnap_curl_setopt_long(raw, CURLOPT_HTTPGET, 1)
        case ("HEAD", _):
            migsnap_curl_setopt_long(raw, CURLOPT_NOBODY, 1)
        case ("DELETE", _):
            migsnap_curl_setopt_pointer(raw, CURLOPT_CUSTOMREQUEST, "DELETE")
        default:
            migsnap_curl_setopt_long(raw, CURLOPT_UPLOAD, 1)
            migsnap_curl_setopt_off(raw, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.length))
            migsnap_curl_setopt_data_callback(raw, CURLOPT_READFUNCTION, readCallback)
            migsnap_curl_setopt_pointer(raw, CURLOPT_READDATA, context)
            if method != "PUT" { migsnap_curl_setopt_pointer(raw, CURLOPT_CUSTOMREQUEST, method) }
        }

        let code = curl_easy_perform(raw)
        if let failure = transfer.failure { throw failure }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            throw TransportFailure(code: code, message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
        }
        var status = 0
        migsnap_curl_getinfo_long(raw, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: transfer.headers, body: transfer.received,
                            sinkSHA256: transfer.sinkPath == nil ? nil : transfer.sinkDigest())
    }
}

/// The state one transfer's callbacks share.
private final class Transfer {
    let body: RequestBody
    let progress: ((Int64) -> Void)?
    var headers: [String: String] = [:]
    var status = 0
    var received = Data()
    var sent: Int64 = 0
    var written: Int64 = 0
    var failure: MigsnapError?
    private var sourceFD: Int32 = -1
    private var sinkFD: Int32 = -1
    let sinkPath: String?
    /// With a region sink: where in the file the body goes.
    private var regionOffset: Int64?
    /// What reached the sink file, hashed as it was written: the store checks a download against
    /// its manifest without reading the file a second time.
    private var sinkHasher = SHA256()

    init(body: RequestBody, sink: ResponseSink, progress: ((Int64) -> Void)?) throws {
        self.body = body
        self.progress = progress
        if case .file(let path, _, _) = body {
            sourceFD = open(path, O_RDONLY | O_CLOEXEC)
            guard sourceFD >= 0 else { throw FileSystem.osError("open \(path) for upload") }
        }
        switch sink {
        case .memory: sinkPath = nil
        case .file(let path): sinkPath = path
        case .region(let path, let offset):
            sinkPath = path
            regionOffset = offset
        }
    }

    func close() {
        if sourceFD >= 0 { Glibc.close(sourceFD) }
        if sinkFD >= 0 { Glibc.close(sinkFD) }
        sourceFD = -1
        sinkFD = -1
    }

    func header(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            // A new response (after a 100 Continue, say) starts its headers afresh.
            headers = [:]
            status = Int(trimmed.split(separator: " ").dropFirst().first ?? "") ?? 0
        } else if let colon = trimmed.firstIndex(of: ":") {
            headers[trimmed[..<colon].lowercased()] = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }

    /// Body bytes: into the sink file when the response succeeded, else into memory.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let sinkPath, (200..<300).contains(status) else {
            received.append(contentsOf: bytes)
            return true
        }
        if sinkFD < 0 {
            sinkFD = open(sinkPath, O_WRONLY | O_CREAT | (regionOffset == nil ? O_TRUNC : 0) | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard sinkFD >= 0 else {
                failure = FileSystem.osError("create \(sinkPath)")
                return false
            }
        }
        var offset = 0
        while offset < bytes.count {
            let n = pwrite(sinkFD, bytes.baseAddress! + offset, bytes.count - offset, off_t((regionOffset ?? 0) + written) + off_t(offset))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                failure = FileSystem.osError("write \(sinkPath)")
                return false
            }
            offset += n
        }
        sinkHasher.update(bufferPointer: bytes)
        written += Int64(bytes.count)
        progress?(written)
        return true
    }

    func sinkDigest() -> String {
        sinkHasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Up to `capacity` body bytes to send; 0 at the end, nil on a read error.
    func send(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int? {
        let remaining = Int(min(Int64(capacity), body.length - sent))
        guard remaining > 0 else { return 0 }
        switch body {
        case .empty:
            return 0
        case .data(let data):
            data.withUnsafeBytes { source in
                buffer.copyMemory(from: source.baseAddress! + Int(sent), byteCount: remaining)
            }
        case .file(let path, let offset, _):
            let n = pread(sourceFD, buffer, remaining, off_t(offset + sent))
            guard n > 0 else {
                failure = n == 0 ? .failed("\(path) became shorter during the upload.") : FileSystem.osError("read \(path)")
                return nil
            }
            sent += Int64(n)
            progress?(sent)
            return n
        }
        sent += Int64(remaining)
        return remaining
    }
}

private let headerCallback: migsnap_curl_data_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: length), as: UTF8.self)
    transfer.header(line)
    return length
}

private let writeCallback: migsnap_curl_data_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    return transfer.receive(UnsafeRawBufferPointer(start: buffer, count: length)) ? length : 0
}

private let readCallback: migsnap_curl_data_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    return transfer.send(into: UnsafeMutableRawPointer(buffer!), capacity: size * count) ?? Int(CURL_READFUNC_ABORT)
}
