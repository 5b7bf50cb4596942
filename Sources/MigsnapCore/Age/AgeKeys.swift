import Crypto
import Foundation

/// An age X25519 recipient: the public key a file is encrypted to, written `age1…`.
public struct AgeRecipient: Sendable, Hashable, CustomStringConvertible {
    static let hrp = "age"

    /// The Curve25519 public key, 32 bytes.
    let publicKey: [UInt8]

    /// Parses `age1…`; anything else (a secret key included) is `.invalidInput`, and the message
    /// never repeats a secret key.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.uppercased().hasPrefix("AGE-SECRET-KEY-") {
            throw MigsnapError.invalidInput(
                "An age secret key was given where a recipient (age1…) belongs.",
                hint: "Give its public key instead: age-keygen -y KEYFILE prints it. Keep the secret key out of recipient lists.")
        }
        guard let (hrp, data) = try? Bech32.decode(trimmed), hrp == Self.hrp, data.count == 32 else {
            throw MigsnapError.invalidInput(
                "'\(trimmed)' is not an age X25519 recipient (age1…, as age-keygen prints).")
        }
        self.init(publicKey: data)
    }

    init(publicKey: [UInt8]) {
        self.publicKey = publicKey
    }

    /// The `age1…` encoding.
    public var text: String { Bech32.encode(hrp: Self.hrp, data: publicKey) }

    public var description: String { text }
}

/// An age X25519 identity: the secret key that decrypts files encrypted to its recipient,
/// written `AGE-SECRET-KEY-1…`. Its description shows only the recipient, so the secret never
/// reaches a log by accident.
public struct AgeIdentity: Sendable, CustomStringConvertible {
    static let hrp = "AGE-SECRET-KEY-"

    /// The Curve25519 secret scalar, 32 bytes.
    let secretKey: [UInt8]
    public let recipient: AgeRecipient

    /// Parses `AGE-SECRET-KEY-1…` (uppercase, as age-keygen writes it). The error never repeats
    /// the text: it may be a secret key with a typo.
    public init(parsing text: String) throws {
        guard let identity = Self.parse(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw MigsnapError.invalidInput("The text given is not an age X25519 identity (AGE-SECRET-KEY-1…).")
        }
        self = identity
    }

    private init(secretKey: [UInt8]) throws {
        self.secretKey = secretKey
        let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: secretKey)
        self.recipient = AgeRecipient(publicKey: Array(key.publicKey.rawRepresentation))
    }

    private static func parse(_ text: String) -> AgeIdentity? {
        guard let (hrp, data) = try? Bech32.decode(text), hrp == Self.hrp, data.count == 32 else { return nil }
        return try? AgeIdentity(secretKey: data)
    }

    /// A fresh random identity (what `age-keygen` makes).
    public static func generate() -> AgeIdentity {
        let key = Curve25519.KeyAgreement.PrivateKey()
        // A freshly generated key is 32 valid bytes.
        return try! AgeIdentity(secretKey: Array(key.rawRepresentation))
    }

    /// The `AGE-SECRET-KEY-1…` encoding, for writing a key file; never log it.
    public var secretText: String { Bech32.encode(hrp: Self.hrp, data: secretKey) }

    public var description: String { "AgeIdentity(\(recipient.text))" }

    /// Reads a key file in age-keygen's format: one identity a line, `#` comment lines and blank
    /// lines ignored. Errors name the line, never its contents.
    public static func load(file path: String) throws -> [AgeIdentity] {
        let contents: String
        do {
            contents = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw MigsnapError.invalidInput(
                "Cannot read the age identity file \(path).",
                hint: "Point MIGSNAP_AGE_IDENTITY at a readable key file made by age-keygen.")
        }
        var identities: [AgeIdentity] = []
        for (index, line) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let identity = parse(trimmed) else {
                throw MigsnapError.invalidInput(
                    "Line \(index + 1) of \(path) is not an age X25519 identity (AGE-SECRET-KEY-1…).",
                    hint: "A key file holds one AGE-SECRET-KEY-1… per line, as age-keygen writes it.")
            }
            identities.append(identity)
        }
        guard !identities.isEmpty else {
            throw MigsnapError.invalidInput(
                "\(path) holds no age identity.",
                hint: "A key file holds one AGE-SECRET-KEY-1… per line, as age-keygen writes it.")
        }
        return identities
    }
}
