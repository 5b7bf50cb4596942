import Foundation
import MigsnapCore
@testable import MigsnapS3
import Testing

/// AWS's Signature Version 4 test suite (SigV4Vectors/ORIGIN.md): each case's request signed with
/// its context must give the published canonical request and Authorization header.
@Suite struct SigV4Tests {
    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("SigV4Vectors")

    struct Vector {
        var method: String
        var path: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var body: Data
        var credentials: S3Credentials
        var region: String
        var service: String
        var date: Date
        var signBody: Bool
        var canonicalRequest: String
        var authorization: String

        init(_ name: String) throws {
            let dir = SigV4Tests.vectors.appendingPathComponent(name)
            let context = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("context.json"))) as! [String: Any]
            let keys = context["credentials"] as! [String: String]
            credentials = S3Credentials(accessKeyID: keys["access_key_id"]!, secretAccessKey: keys["secret_access_key"]!, sessionToken: keys["token"])
            region = context["region"] as! String
            service = context["service"] as! String
            date = RFC3339.date(from: context["timestamp"] as! String)!
            signBody = context["sign_body"] as! Bool

            let request = try String(contentsOf: dir.appendingPathComponent("request.txt"), encoding: .utf8)
            let (head, body) = request.range(of: "\n\n").map { (String(request[..<$0.lowerBound]), String(request[$0.upperBound...])) } ?? (request, "")
            var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let requestLine = lines.removeFirst()
            method = String(requestLine.prefix { $0 != " " })
            let target = String(requestLine.dropFirst(method.count + 1).dropLast(" HTTP/1.1".count))
            let pathPart = target.prefix { $0 != "?" }
            path = String(pathPart)
            query = target.dropFirst(pathPart.count + 1).split(separator: "&").map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]).removingPercentEncoding!, parts.count > 1 ? String(parts[1]).removingPercentEncoding! : "")
            }
            headers = lines.filter { !$0.isEmpty }.map { line in
                let colon = line.firstIndex(of: ":")!
                return (String(line[..<colon]), String(line[line.index(after: colon)...]))
            }
            self.body = Data(body.utf8)
            canonicalRequest = try String(contentsOf: dir.appendingPathComponent("header-canonical-request.txt"), encoding: .utf8)
            let signed = try String(contentsOf: dir.appendingPathComponent("header-signed-request.txt"), encoding: .utf8)
            authorization = signed.split(separator: "\n").first { $0.hasPrefix("Authorization:") }!.dropFirst("Authorization:".count)
                .trimmingCharacters(in: .whitespaces)
        }
    }

    @Test(arguments: [
        "get-vanilla", "get-vanilla-query-order-key-case", "get-vanilla-query-unreserved", "get-utf8",
        "get-space-unnormalized", "get-vanilla-with-session-token", "post-x-www-form-urlencoded", "get-header-value-trim",
    ])
    func publishedVector(_ name: String) throws {
        let v = try Vector(name)
        let payloadHash = Hashing.sha256(of: v.body)
        let added = SigV4.sign(method: v.method, path: v.path, query: v.query, headers: v.headers, payloadHash: payloadHash,
                               date: v.date, region: v.region, service: v.service, credentials: v.credentials, contentHashHeader: v.signBody)
        let (canonical, _) = SigV4.canonicalRequest(method: v.method, path: v.path, query: v.query,
                                                    headers: v.headers + added.filter { $0.0 != "Authorization" }, payloadHash: payloadHash)
        #expect(canonical == v.canonicalRequest)
        #expect(added.first { $0.0 == "Authorization" }?.1 == v.authorization)
    }

    @Test func canonicalQuerySortsEncodesAndKeepsEquals() {
        #expect(SigV4.canonicalQuery([("prefix", "a/b c"), ("uploads", ""), ("list-type", "2")]) == "list-type=2&prefix=a%2Fb%20c&uploads=")
        #expect(SigV4.canonicalQuery([("b", "1"), ("B", "2"), ("a", "é")]) == "B=2&a=%C3%A9&b=1")
    }

    @Test func credentialsNeverShowTheSecret() {
        let text = "\(S3Credentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t", sessionToken: "t0ken"))"
        #expect(text.contains("AKID") && !text.contains("s3cr3t") && !text.contains("t0ken"))
    }
}
