import Foundation
import MigsnapCore

/// The endpoint, region and credentials of an S3 service, found the way the AWS CLI finds them.
public struct S3Configuration: Sendable, CustomStringConvertible {
    /// `scheme://host[:port]`, without a path or a trailing slash. Requests use path-style addressing.
    public var endpoint: String
    public var region: String
    public var credentials: S3Credentials

    public init(endpoint: String, region: String, credentials: S3Credentials) throws {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.user == nil, url.password == nil,
              url.query == nil, url.path.isEmpty || url.path == "/" else {
            throw MigsnapError.invalidInput(
                "The S3 endpoint '\(UserText.line(endpoint))' is not an http:// or https:// URL of a host.",
                hint: "Set AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) to e.g. http://127.0.0.1:9000, without a path.")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        self.endpoint = "\(scheme)://\(hostPart)\(url.port.map { ":\($0)" } ?? "")"
        self.region = region
        self.credentials = credentials
    }

    public var description: String {
        "S3Configuration(endpoint: \(endpoint), region: \(region), credentials: \(credentials))"
    }

    /// Reads `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_DEFAULT_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, and `AWS_PROFILE` with the
    /// shared files (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, by default under ~/.aws).
    /// Keys in the environment win over a profile's, as they do for the AWS CLI.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Configuration {
        let env = environment.filter { !$0.value.isEmpty }
        let home = env["HOME"] ?? NSHomeDirectory()
        let profileName = env["AWS_PROFILE"] ?? env["AWS_DEFAULT_PROFILE"] ?? "default"
        let credentialsFile = try sharedFile(env["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials", explicit: env["AWS_SHARED_CREDENTIALS_FILE"] != nil)
        let configFile = try sharedFile(env["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config", explicit: env["AWS_CONFIG_FILE"] != nil)
        let configSection = profileName == "default" ? "default" : "profile \(profileName)"
        func fromProfile(_ key: String) -> String? {
            credentialsFile?.sections[profileName]?[key] ?? configFile?.sections[configSection]?[key]
        }

        let region = env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? fromProfile("region") ?? "us-east-1"
        let endpoint = env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"] ?? fromProfile("endpoint_url") ?? "https://s3.\(region).amazonaws.com"

        let credentials: S3Credentials
        if let key = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"] {
            credentials = S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: env["AWS_SESSION_TOKEN"])
        } else if let key = fromProfile("aws_access_key_id"), let secret = fromProfile("aws_secret_access_key") {
            credentials = S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: fromProfile("aws_session_token"))
        } else {
            let explicitProfile = env["AWS_PROFILE"] ?? env["AWS_DEFAULT_PROFILE"]
            throw MigsnapError.invalidInput(
                explicitProfile.map { "The AWS profile '\(UserText.line($0))' has no access key (aws_access_key_id and aws_secret_access_key)." }
                    ?? "No AWS credentials were found for the S3 store.",
                hint: "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials.")
        }
        return try S3Configuration(endpoint: endpoint, region: region, credentials: credentials)
    }

    /// A shared AWS file, or nil when it is absent and was not named explicitly.
    private static func sharedFile(_ path: String, explicit: Bool) throws -> IniFile? {
        guard explicit || FileManager.default.fileExists(atPath: path) else { return nil }
        return try IniFile(path: path)
    }
}
