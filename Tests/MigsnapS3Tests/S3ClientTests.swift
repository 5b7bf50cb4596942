import Foundation
import MigsnapCore
@testable import MigsnapS3
import Testing

/// Against the real server scripts/test starts; each test in its own bucket.
@Suite struct S3ClientTests {
    @Test func putGetRangeHeadDelete() throws {
        let client = try TestServer.client()
        let bucket = try TestServer.freshBucket(client)
        let data = Data("hello world\n".utf8)
        #expect(try client.putObject(bucket: bucket, key: "dir/small.txt", data: data))
        #expect(try client.getObject(bucket: bucket, key: "dir/small.txt")?.body == data)
        #expect(try client.getRange(bucket: bucket, key: "dir/small.txt", offset: 6, length: 5) == Data("world".utf8))
        #expect(try client.getRange(bucket: bucket, key: "dir/small.txt", offset: 10, length: 100) == Data("d\n".utf8))
        #expect(try client.getRange(bucket: bucket, key: "dir/small.txt", offset: 50, length: 5) == Data())
        #expect(try client.headObject(bucket: bucket, key: "dir/small.txt")?.size == 12)
        try client.deleteObject(bucket: bucket, key: "dir/small.txt")
        #expect(try client.getObject(bucket: bucket, key: "dir/small.txt") == nil)
        #expect(try client.headObject(bucket: bucket, key: "dir/small.txt") == nil)
        try client.deleteObject(bucket: bucket, key: "dir/small.txt")
    }

    @Test func conditionalCreateIsRefusedWith412() throws {
        let client = try TestServer.client()
        let bucket = try TestServer.freshBucket(client)
        #expect(try client.putObject(bucket: bucket, key: "once", data: Data("first".utf8), ifNoneMatch: true))
        #expect(try client.putObject(bucket: bucket, key: "once", data: Data("second".utf8), ifNoneMatch: true) == false)
        #expect(try client.getObject(bucket: bucket, key: "once")?.body == Data("first".utf8))
    }

    @Test func listsMoreThanOnePage() throws {
        let client = try TestServer.client()
        let bucket = try TestServer.freshBucket(client)
        let count = 1_100
        try concurrently(count) { i in
            try client.putObject(bucket: bucket, key: String(format: "many/k%05d", i), data: Data("\(i)".utf8))
        }
        try client.putObject(bucket: bucket, key: "other", data: Data())
        let keys = try client.listObjects(bucket: bucket, prefix: "many/").map(\.key)
        #expect(keys == (0..<count).map { String(format: "many/k%05d", $0) })
    }

    @Test func wrongSecretIsBadInputNamingTheVariables() throws {
        let good = try TestServer.client()
        let bucket = try TestServer.freshBucket(good)
        let bad = S3Client(configuration: try TestServer.configuration(secret: "not-the-secret"), maxAttempts: 1)
        #expect {
            _ = try bad.getObject(bucket: bucket, key: "x")
        } throws: { error in
            guard case MigsnapError.invalidInput(let message, let hint) = error else { return false }
            return hint?.contains("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY") == true
                && !message.contains("not-the-secret") && !message.contains("\n")
        }
    }

    @Test func missingBucketIsBadInput() throws {
        let client = try TestServer.client()
        #expect {
            _ = try client.listObjects(bucket: "migsnap-no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())", prefix: "")
        } throws: { error in
            guard case MigsnapError.invalidInput(let message, _) = error else { return false }
            return message.contains("does not exist")
        }
        let backend = S3Backend(location: try S3Location(bucket: "migsnap-no-such-bucket", prefix: "p"), client: client)
        #expect(throws: MigsnapError.self) { try backend.initialize() }
    }

    @Test func unreachableEndpointFailsNamingItAndNoSecret() throws {
        // A port that was free a moment ago: nothing listens there.
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(socket, $0, length); _ = getsockname(socket, $0, &length) } }
        close(socket)
        let endpoint = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        let client = S3Client(configuration: try TestServer.configuration(endpoint: endpoint), maxAttempts: 2, firstBackoff: 0.05)
        #expect {
            _ = try client.getObject(bucket: "any-bucket", key: "x")
        } throws: { error in
            guard case MigsnapError.failed(let message, _) = error else { return false }
            return message.contains(endpoint) && !message.contains(TestServer.secret) && !message.contains("\n")
        }
    }
}
