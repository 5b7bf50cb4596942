// Interim: the age implementation is being written on branch wt-age and replaces this file.
import Foundation

public struct AgeRecipient: Sendable, Equatable {
    public var text: String
    public init(parsing text: String) throws { throw MigsnapError.invalidInput("age encryption is not available in this build.") }
}

public struct AgeIdentity: Sendable {
    public var recipient: AgeRecipient
    public static func load(file path: String) throws -> [AgeIdentity] { throw MigsnapError.invalidInput("age encryption is not available in this build.") }
}

public enum Age {
    public static func parseRecipients(_ text: String) throws -> [AgeRecipient] { throw MigsnapError.invalidInput("age encryption is not available in this build.") }
    public static func encrypt(input: String, output: String, recipients: [AgeRecipient], progress: ((Int64) -> Void)? = nil) throws { throw MigsnapError.invalidInput("age encryption is not available in this build.") }
    public static func decrypt(input: String, output: String, identities: [AgeIdentity], progress: ((Int64) -> Void)? = nil) throws { throw MigsnapError.invalidInput("age encryption is not available in this build.") }
}
