import Foundation
import MigsnapCore
@testable import MigsnapS3
import Testing

@Suite struct S3LocationTests {
    @Test(arguments: [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my-bucket/team/app", "my-bucket", "team/app"),
        ("s3://my.bucket.1//team//app/", "my.bucket.1", "team/app"),
    ])
    func parses(_ url: String, _ bucket: String, _ prefix: String) throws {
        let location = try S3Location(url: url)
        #expect(location.bucket == bucket && location.prefix == prefix)
        #expect(location.key("x.json") == (prefix.isEmpty ? "x.json" : "\(prefix)/x.json"))
    }

    @Test(arguments: ["s3://", "s3:///prefix", "s3://UPPER/x", "s3://ab", "s3://-bucket", "s3://bucket-", "s3://a..b",
                      "s3://192.168.1.1", "s3://bucket_x", "https://bucket/x", "s3://bucket/../x", "s3://bucket/a/./b"])
    func rejects(_ url: String) {
        #expect {
            try S3Location(url: url)
        } throws: { error in
            guard case MigsnapError.invalidInput(let message, _) = error else { return false }
            return !message.contains("\n")
        }
    }
}

@Suite struct S3ConfigurationTests {
    private func files(_ credentials: String, _ config: String) throws -> (String, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let c = dir.appendingPathComponent("credentials").path
        let f = dir.appendingPathComponent("config").path
        try credentials.write(toFile: c, atomically: true, encoding: .utf8)
        try config.write(toFile: f, atomically: true, encoding: .utf8)
        return (c, f)
    }

    @Test func profileFromTheSharedFiles() throws {
        let (credentials, config) = try files("""
            [default]
            aws_access_key_id = DEFAULTKEY
            aws_secret_access_key = defaultsecret

            [work]
            aws_access_key_id = WORKKEY
            aws_secret_access_key = worksecret
            aws_session_token = worktoken
            """, """
            [default]
            region = eu-west-1

            [profile work]
            region = eu-central-1
            endpoint_url = http://127.0.0.1:9000
            """)
        let env = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config, "HOME": "/nonexistent"]
        let work = try S3Configuration.fromEnvironment(env.merging(["AWS_PROFILE": "work"]) { $1 })
        #expect(work.credentials == S3Credentials(accessKeyID: "WORKKEY", secretAccessKey: "worksecret", sessionToken: "worktoken"))
        #expect(work.region == "eu-central-1" && work.endpoint == "http://127.0.0.1:9000")

        let standard = try S3Configuration.fromEnvironment(env)
        #expect(standard.credentials.accessKeyID == "DEFAULTKEY" && standard.region == "eu-west-1")
        #expect(standard.endpoint == "https://s3.eu-west-1.amazonaws.com")

        let overridden = try S3Configuration.fromEnvironment(env.merging([
            "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_REGION": "us-west-2",
            "AWS_ENDPOINT_URL": "http://localhost:1", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:2/",
        ]) { $1 })
        #expect(overridden.credentials.accessKeyID == "ENVKEY" && overridden.region == "us-west-2")
        #expect(overridden.endpoint == "http://127.0.0.1:2")
    }

    @Test func missingCredentialsSayWhatToSetWithoutSecrets() throws {
        let (credentials, config) = try files("[other]\naws_access_key_id = K\naws_secret_access_key = hidden\n", "")
        let env = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config, "AWS_PROFILE": "nope"]
        #expect {
            try S3Configuration.fromEnvironment(env)
        } throws: { error in
            guard case MigsnapError.invalidInput(let message, let hint) = error else { return false }
            return message.contains("nope") && hint?.contains("AWS_ACCESS_KEY_ID") == true && !message.contains("hidden")
        }
    }

    @Test func endpointMustBeAnHTTPURLOfAHost() {
        let keys = S3Credentials(accessKeyID: "k", secretAccessKey: "s")
        #expect(throws: MigsnapError.self) { try S3Configuration(endpoint: "ftp://host", region: "us-east-1", credentials: keys) }
        #expect(throws: MigsnapError.self) { try S3Configuration(endpoint: "http://host/path", region: "us-east-1", credentials: keys) }
        #expect(throws: MigsnapError.self) { try S3Configuration(endpoint: "http://user:pw@host", region: "us-east-1", credentials: keys) }
    }
}
