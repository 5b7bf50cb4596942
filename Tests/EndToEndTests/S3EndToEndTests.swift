import Foundation
import MigsnapCore
import MigsnapS3
import Testing

/// A bucket of its own on the S3-compatible server scripts/test starts, and the AWS environment
/// that points migsnap at it. Without the server these tests fail; they never skip.
final class Bucket {
    let name: String
    let environment: [String: String]

    init() throws {
        let env = ProcessInfo.processInfo.environment
        let endpoint = try #require(env["MIGSNAP_TEST_S3_ENDPOINT"], "MIGSNAP_TEST_S3_ENDPOINT is unset: run the tests through scripts/test, which starts the S3 server.")
        environment = ["AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": env["MIGSNAP_TEST_S3_ACCESS_KEY"] ?? "",
                       "AWS_SECRET_ACCESS_KEY": env["MIGSNAP_TEST_S3_SECRET_KEY"] ?? "", "AWS_REGION": env["MIGSNAP_TEST_S3_REGION"] ?? "us-east-1"]
        name = "e2e-\(UUID().uuidString.lowercased().prefix(12))"
        try S3Client(configuration: S3Configuration.fromEnvironment(environment)).createBucket(name)
    }

    func store(_ prefix: String = "shop") -> String { "s3://\(name)/\(prefix)" }

    /// Flips one byte of snapshot `id`'s payload in place, `fraction` of the way into it.
    func flipByte(ofPayload id: String, at fraction: Double, prefix: String = "shop") throws {
        let name = try #require(try names(prefix).first { $0.hasPrefix(id) && $0.hasSuffix(".gz") })
        let client = try S3Client(configuration: S3Configuration.fromEnvironment(environment))
        var bytes = try #require(try client.getObject(bucket: self.name, key: "\(prefix)/" + name)?.body)
        bytes[Int(Double(bytes.count) * fraction)] ^= 0x20
        _ = try client.putObject(bucket: self.name, key: "\(prefix)/" + name, data: bytes)
    }

    /// The object names under a prefix, as a person listing the bucket would see them.
    func names(_ prefix: String = "shop") throws -> [String] {
        try S3Backend(url: store(prefix), environment: environment).list().map(\.name)
    }
}

extension Project {
    /// Points migsnap at a store in `bucket`, with the server's endpoint and credentials.
    func useStore(in bucket: Bucket, prefix: String = "shop") {
        environment.merge(bucket.environment) { $1 }
        environment["MIGSNAP_STORE"] = bucket.store(prefix)
    }
}

@Suite("S3 store end to end (real S3-compatible server)")
struct S3EndToEndTests {
    func keys(_ p: Project) throws -> (file: String, recipient: String) {
        let file = p.dir + "/key.txt"
        try #require(try run("/usr/bin/age-keygen", ["-o", file], in: p.dir).status == 0, "age-keygen (scripts/test installs age)")
        return (file, try run("/usr/bin/age-keygen", ["-y", file], in: p.dir).stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func theDataLossStoryFromAFreshContainer() throws {
        let bucket = try Bucket()
        let db = try PostgresDatabase()
        let deploy = try Project.postgres(db)
        let k = try keys(deploy)
        deploy.useStore(in: bucket)
        deploy.environment["MIGSNAP_AGE_RECIPIENT"] = k.recipient
        try deploy.ok("upgrade", "0002")
        try deploy.seedPostgres(db)
        let before = try db.state()
        try deploy.ok("upgrade")
        #expect(!FileManager.default.fileExists(atPath: deploy.store), "nothing is kept on the machine")
        #expect(try bucket.names().contains { $0.hasSuffix(".pgdump.age") })

        // A new container: a fresh copy of the project, only the store location, credentials and key.
        let fresh = try Project.postgres(db)
        fresh.useStore(in: bucket)
        fresh.environment["MIGSNAP_AGE_IDENTITY"] = k.file
        let listed = try #require(try fresh.json(try fresh.ok("list", "--json").stdout) as? [[String: Any]])
        #expect(listed.count == 5, "a snapshot before each of the three steps, and one after each upgrade")
        try fresh.ok("rollback", "-1", "--yes")
        expectSameState(try db.state(), before)
    }

    @Test func sqliteUpgradeRollbackVerifyPruneOnABucket() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.useStore(in: bucket)
        let before = try p.dump()
        try p.ok("upgrade")
        try p.ok("verify")
        let status = try p.ok("status").stdout
        #expect(status.contains(bucket.store()), "\(status)")
        try p.ok("rollback", "--yes")
        #expect(try p.dump() == before)
        let id = try #require(try p.manifests().first?["id"] as? String)
        try p.ok("pin", id)
        #expect(try p.manifests().first?["pinned"] as? Bool == true)
        let plan = try #require(try p.json(try p.ok("prune", "--dry-run", "--json").stdout) as? [[String: Any]])
        #expect(plan.count == 3)
        #expect(!FileManager.default.fileExists(atPath: p.store))
    }

    @Test func theRequestTraceNamesEachRequestAndNoSecret() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.useStore(in: bucket)
        let untraced = try p.ok("snapshot", "--quiet")
        #expect(!untraced.stderr.contains("s3:"), "no trace unless asked: \(untraced.stderr)")
        let r = try p.migsnap("snapshot", "--quiet", env: ["MIGSNAP_S3_TRACE": "1"])
        #expect(r.status == 0, "\(r.output)")
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.allSatisfy { $0.hasPrefix("s3: ") && $0.contains(" status=") && $0.contains(" ms=") }, "\(r.stderr)")
        // Keys relative to the store's prefix; the lock taken with a conditional write, the payload
        // before its manifest, the lock given back last.
        #expect(lines.first { $0.contains(".lock") }?.hasPrefix("s3: PUT .lock if-none-match size=") == true, "\(r.stderr)")
        let payload = try #require(lines.firstIndex { $0.hasPrefix("s3: PUT \(id).sqlite.gz size=") && $0.contains(" status=200 ") }, "\(r.stderr)")
        let manifest = try #require(lines.firstIndex { $0.hasPrefix("s3: PUT \(id).json size=") }, "\(r.stderr)")
        #expect(payload < manifest)
        #expect(lines.last?.hasPrefix("s3: DELETE .lock") == true, "\(r.stderr)")
        #expect(!r.stderr.contains("shop/"), "\(r.stderr)")
        let secret = try #require(bucket.environment["AWS_SECRET_ACCESS_KEY"])
        for hidden in [secret, "Signature", "Credential", "AWS4-HMAC-SHA256", "Authorization", "uploadId"] {
            #expect(!r.stderr.contains(hidden), "\(hidden) in \(r.stderr)")
        }
    }

    @Test func aRunAsksTheBucketForEachObjectOnce() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.useStore(in: bucket)
        let first = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for command in [["snapshot"], ["upgrade"], ["restore", first, "--yes"], ["list"], ["verify"]] {
            let r = try p.migsnap(command, env: ["MIGSNAP_S3_TRACE": "1"])
            #expect(r.status == 0, "\(r.output)")
            // "GET index.json", "GET / list", …: what was asked, without how it went.
            let reads = r.stderr.split(separator: "\n").filter { $0.hasPrefix("s3: GET ") }.map { line in
                line.split(separator: " ").prefix { !$0.contains("=") }.joined(separator: " ")
            }
            #expect(reads.count == Set(reads).count, "\(command): \(r.stderr)")
            // The index holds every manifest with the version its writer got back: none is read.
            #expect(!reads.contains { $0.hasSuffix(".json") && !$0.hasSuffix(" index.json") && !$0.hasSuffix(" guards.json") },
                    "\(command): \(r.stderr)")
            #expect(!r.stderr.contains("s3: GET .lock"), "the lock is given back by its ETag: \(r.stderr)")
        }
        let listed = try #require(try p.json(try p.ok("list", "--json").stdout) as? [[String: Any]])
        #expect(listed.count == 5, "the index kept up to date: \(listed.count)")
    }

    @Test func aSecondRunWaitsThenRefusesNamingTheHolder() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.useStore(in: bucket)
        try p.ok("snapshot")
        // Another machine's run holds the bucket's lock.
        let other = try S3Backend(url: bucket.store(), environment: bucket.environment)
        let held = try other.lock(purpose: "upgrade head on deploy-2", wait: 1)
        let r = try p.migsnap("upgrade")
        #expect(r.status == 4, "\(r.output)")
        #expect(r.stderr.contains("deploy-2"), "\(r.stderr)")
        #expect(try p.sqlite("SELECT version_num FROM alembic_version") == "0002", "the refused run changed nothing")
        held.release()
        try p.ok("upgrade")
    }

    @Test func twoDeploysFromTwoDirectoriesAgainstOneBucket() throws {
        let bucket = try Bucket()
        let db = try PostgresDatabase()
        let deploys = try (0..<2).map { _ in try Project.postgres(db) }
        for d in deploys { d.useStore(in: bucket) }
        nonisolated(unsafe) var results = [RunResult?](repeating: nil, count: 2)
        nonisolated(unsafe) let both = deploys
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = try? both[i].migsnap("upgrade")
            lock.lock(); results[i] = r; lock.unlock()
        }
        let statuses = results.map { $0?.status ?? -1 }
        #expect(statuses.allSatisfy { $0 == 0 || $0 == 4 } && statuses.contains(0), "\(results.map { $0?.output ?? "" })")
        #expect(try db.psql("SELECT version_num FROM alembic_version") == "0003")
        // One run took the steps, each with one snapshot; the other waited and found nothing to do, or was refused.
        let reasons = try deploys[0].manifests().map { $0["reason"] as? String }
        #expect(reasons.filter { $0 == "pre-upgrade" }.count == 3, "\(reasons)")
    }

    @Test func aPayloadChangedInTheBucketIsCaughtBeforeTheDatabaseIsTouched() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.useStore(in: bucket)
        let (id, after) = try p.snapshotThenMigrate()
        // Someone with write access to the bucket replaces the payload by one of the same size.
        try bucket.flipByte(ofPayload: id, at: 1.0 / 2)
        let r = try p.migsnap("restore", id, "--yes")
        #expect(r.status == 3 && r.stderr.contains("checksum"), "\(r.output)")
        #expect(try p.dump() == after)
        #expect(try p.migsnap("verify").status == 3)
    }

    @Test func faultsAreOneLineErrorsAndChangeNothing() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.useStore(in: bucket)
        let (id, after) = try p.snapshotThenMigrate()
        let secret = bucket.environment["AWS_SECRET_ACCESS_KEY"] ?? ""

        let wrong = try p.migsnap("restore", id, "--yes", env: ["AWS_SECRET_ACCESS_KEY": "not-the-secret"])
        #expect(wrong.status == 2 && wrong.stderr.contains("AWS_SECRET_ACCESS_KEY"), "\(wrong.output)")
        let missing = try p.migsnap("list", env: ["MIGSNAP_STORE": "s3://no-such-bucket-\(UUID().uuidString.lowercased().prefix(8))/shop"])
        #expect(missing.status == 2 && missing.stderr.contains("does not exist"), "\(missing.output)")
        let down = try p.migsnap("restore", id, "--yes", env: ["AWS_ENDPOINT_URL": "http://127.0.0.1:9"])
        #expect(down.status == 1 && down.stderr.contains("127.0.0.1:9"), "\(down.output)")
        let badURL = try p.migsnap("list", env: ["MIGSNAP_STORE": "s3://Bad_Bucket!/x"])
        #expect(badURL.status == 2, "\(badURL.output)")
        for r in [wrong, missing, down, badURL] {
            #expect(!r.output.contains(secret), "a secret in the output")
            #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1)
        }
        #expect(try p.dump() == after)
        #expect(try p.manifests().count == 1)
    }
}

/// A relay to the test server that dies after so many bytes (Fixtures/cut-proxy.py): the server
/// stopped in the middle of an upload or a download, while the real server keeps the evidence.
final class DyingRelay {
    let endpoint: String
    private let process: Process

    init(upLimit: Int = Int.max / 2, downLimit: Int = Int.max / 2) throws {
        let target = try #require(ProcessInfo.processInfo.environment["MIGSNAP_TEST_S3_ENDPOINT"].flatMap { URL(string: $0)?.port })
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Paths.repository + "/Tests/EndToEndTests/Fixtures/cut-proxy.py", "\(target)", "\(upLimit)", "\(downLimit)"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try #require(Int(line), "cut-proxy printed '\(line)'")
        endpoint = "http://127.0.0.1:\(port)"
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}

@Suite("S3 store: the server dies mid-transfer")
struct S3MidTransferTests {
    /// A project whose database holds 24 MiB that do not compress, so the payload goes up in parts.
    func bigProject(_ bucket: Bucket) throws -> Project {
        let p = try Project().seeded()
        p.useStore(in: bucket)
        _ = try p.sqlite("CREATE TABLE blobs (b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 24) INSERT INTO blobs SELECT randomblob(1048576) FROM n;")
        return p
    }

    @Test func anUploadCutOffListsNothing() throws {
        let bucket = try Bucket()
        let p = try bigProject(bucket)
        let first = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let relay = try DyingRelay(upLimit: 12 << 20)
        let r = try p.migsnap("snapshot", env: ["AWS_ENDPOINT_URL": relay.endpoint])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains(relay.endpoint), "names the endpoint: \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count == 1)
        // Seen through the live server: only the first snapshot is listed, and it verifies.
        #expect(try p.manifests().map { $0["id"] as? String } == [first])
        try p.ok("verify")
        // The cut-off run could not delete its lock either: until its lease runs out, the next
        // run is refused with the holder and the expiry named, never raced.
        let next = try p.migsnap("snapshot")
        #expect(next.status == 4 && next.stderr.contains("expires"), "\(next.output)")
    }

    @Test func aLargePayloadChangedInTheBucketIsCaughtWhileItArrives() throws {
        let bucket = try Bucket()
        let p = try bigProject(bucket)
        let (id, after) = try p.snapshotThenMigrate()
        // One flipped byte in a block the restore inflates while the rest is still arriving.
        try bucket.flipByte(ofPayload: id, at: 1.0 / 3)
        let r = try p.migsnap("restore", id, "--yes")
        #expect(r.status == 3 && r.stderr.contains("checksum"), "\(r.output)")
        #expect(try p.dump() == after, "the database is untouched")
        #expect(try p.manifests().count == 1, "no safety snapshot was made")
    }

    @Test func aLargeEncryptedSnapshotGoesUpAndComesBackWhileItIsMade() throws {
        let bucket = try Bucket()
        let p = try bigProject(bucket)
        let key = p.dir + "/key.txt"
        try #require(try run("/usr/bin/age-keygen", ["-o", key], in: p.dir).status == 0, "age-keygen (scripts/test installs age)")
        p.environment["MIGSNAP_AGE_RECIPIENT"] = try run("/usr/bin/age-keygen", ["-y", key], in: p.dir).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        p.environment["MIGSNAP_AGE_IDENTITY"] = key
        let before = try p.dump()
        let (id, after) = try p.snapshotThenMigrate()
        #expect(before != after)
        #expect(try bucket.names().contains("\(id).sqlite.gz.age"))
        try p.ok("restore", id, "--yes", "--no-safety-snapshot")
        #expect(try p.dump() == before)
        try p.ok("verify", id)
    }

    @Test func aDownloadCutOffLeavesTheDatabaseAlone() throws {
        let bucket = try Bucket()
        let p = try bigProject(bucket)
        let (id, after) = try p.snapshotThenMigrate()
        let relay = try DyingRelay(downLimit: 12 << 20)
        let r = try p.migsnap("restore", id, "--yes", env: ["AWS_ENDPOINT_URL": relay.endpoint])
        #expect(r.status == 1, "\(r.output)")
        #expect(try p.dump() == after, "the database is untouched")
        #expect(try p.manifests().count == 1, "no safety snapshot was half made")
    }
}
