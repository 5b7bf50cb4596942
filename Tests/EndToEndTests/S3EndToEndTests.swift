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

    /// The object names under a prefix, as a person listing the bucket would see them.
    func names(_ prefix: String = "shop") throws -> [String] {
        try S3Backend(url: store(prefix), environment: environment).list().map(\.name)
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
        deploy.environment.merge(bucket.environment) { $1 }
        deploy.environment["MIGSNAP_STORE"] = bucket.store()
        deploy.environment["MIGSNAP_AGE_RECIPIENT"] = k.recipient
        try deploy.ok("upgrade", "0002")
        try deploy.seedPostgres(db)
        let before = try db.state()
        try deploy.ok("upgrade")
        #expect(!FileManager.default.fileExists(atPath: deploy.store), "nothing is kept on the machine")
        #expect(try bucket.names().contains { $0.hasSuffix(".pgdump.age") })

        // A new container: a fresh copy of the project, only the store location, credentials and key.
        let fresh = try Project.postgres(db)
        fresh.environment.merge(bucket.environment) { $1 }
        fresh.environment["MIGSNAP_STORE"] = bucket.store()
        fresh.environment["MIGSNAP_AGE_IDENTITY"] = k.file
        let listed = try #require(try fresh.json(try fresh.ok("list", "--json").stdout) as? [[String: Any]])
        #expect(listed.count == 3)
        try fresh.ok("rollback", "-1", "--yes")
        expectSameState(try db.state(), before)
    }

    @Test func sqliteUpgradeRollbackVerifyPruneOnABucket() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.environment.merge(bucket.environment) { $1 }
        p.environment["MIGSNAP_STORE"] = bucket.store()
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
        #expect(plan.count == 2)
        #expect(!FileManager.default.fileExists(atPath: p.store))
    }

    @Test func aSecondRunWaitsThenRefusesNamingTheHolder() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.environment.merge(bucket.environment) { $1 }
        p.environment["MIGSNAP_STORE"] = bucket.store()
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

    @Test func faultsAreOneLineErrorsAndChangeNothing() throws {
        let bucket = try Bucket()
        let p = try Project().seeded()
        p.environment.merge(bucket.environment) { $1 }
        p.environment["MIGSNAP_STORE"] = bucket.store()
        let id = try p.ok("snapshot", "--quiet").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try p.alembic("upgrade", "head")
        let after = try p.dump()
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
