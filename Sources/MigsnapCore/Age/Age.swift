import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// age v1 file encryption (https://age-encryption.org/v1) with X25519 recipients, file to file and
/// streaming: memory stays at a few 64 KiB chunks whatever the file's size, and `age -d -i KEY`
/// decrypts what `encrypt` writes.
public enum Age {
    static let magic = Array((AgeHeader.versionLine + "\n").utf8)

    /// Recipients separated by whitespace, commas or newlines; `#` starts a comment that runs to
    /// the end of its line (as in MIGSNAP_AGE_RECIPIENTS or a recipients file). Duplicates are
    /// dropped; an empty list is returned as such.
    public static func parseRecipients(_ text: String) throws -> [AgeRecipient] {
        var recipients: [AgeRecipient] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let content = line.prefix { $0 != "#" }
            for token in content.split(whereSeparator: { $0 == "," || $0.isWhitespace }) {
                let recipient = try AgeRecipient(parsing: String(token))
                if !recipients.contains(recipient) { recipients.append(recipient) }
            }
        }
        return recipients
    }

    /// Whether the file starts with the age v1 version line (false when it cannot be read).
    public static func isEncrypted(file path: String) -> Bool {
        guard let input = try? AgeInputFile(path: path), let start = try? input.read(upTo: magic.count) else { return false }
        return start == magic
    }

    /// Encrypts `input` into the new file `output` (created exclusively, mode 0600, fsynced unless
    /// `fsync` is false) for every recipient, front to back. `progress` receives the plaintext
    /// bytes read so far. On any failure the output file is removed.
    /// `waitFor` is for an input still being written: see `AgeInputFile`.
    public static func encrypt(input: String, output: String, recipients: [AgeRecipient], fsync: Bool = true,
                               progress: ((Int64) -> Void)? = nil,
                               waitFor: ((_ offset: Int64, _ count: Int) throws -> Void)? = nil) throws {
        guard !recipients.isEmpty else {
            throw MigsnapError.invalidInput("No age recipient was given to encrypt \(input) to.")
        }
        let source = try AgeInputFile(path: input, waitFor: waitFor)
        let fileKey = SymmetricKey(size: .bits128)
        let stanzas = try recipients.map { try AgeX25519.wrap(fileKey: fileKey, to: $0) }
        let destination = try AgeOutputFile(creating: output)

        let nonce = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        try destination.write(AgeHeader.encode(stanzas, fileKey: fileKey) + nonce)

        var cipher = AgePayloadCipher(fileKey: fileKey, nonce: nonce)
        var chunk: [UInt8] = []
        while true {
            try source.read(upTo: AgePayloadCipher.chunkSize, into: &chunk)
            // A short chunk is the last; a full one is the last only at the end of the file, so a
            // file of whole chunks never ends in an empty chunk (the spec forbids it).
            let last = try chunk.count < AgePayloadCipher.chunkSize || source.isAtEnd()
            try destination.write(cipher.seal(chunk, last: last))
            progress?(source.consumed)
            if last { break }
        }
        try destination.finish(sync: fsync)
    }

    /// Decrypts `input` into the new file `output` (created exclusively, mode 0600, fsynced unless
    /// `fsync` is false) with the first identity that a stanza is addressed to. `progress` receives
    /// the encrypted bytes read so far. On any failure the output file is removed: a damaged file yields no partial
    /// plaintext.
    public static func decrypt(input: String, output: String, identities: [AgeIdentity], fsync: Bool = true,
                               progress: ((Int64) -> Void)? = nil,
                               waitFor: ((_ offset: Int64, _ count: Int) throws -> Void)? = nil) throws {
        let source = try AgeInputFile(path: input, waitFor: waitFor)
        do {
            let header = try AgeHeader.read(from: source)
            let fileKey = try unwrapFileKey(header, identities: identities)
            guard HMAC<SHA256>.isValidAuthenticationCode(header.mac, authenticating: header.macInput,
                                                         using: AgeHeader.macKey(fileKey: fileKey)) else {
                throw AgeFormatError.badMAC
            }
            let nonce = try source.read(upTo: AgePayloadCipher.nonceSize)
            guard nonce.count == AgePayloadCipher.nonceSize else {
                throw AgeFormatError.malformedHeader("the payload nonce is missing")
            }
            let destination = try AgeOutputFile(creating: output)
            var cipher = AgePayloadCipher(fileKey: fileKey, nonce: nonce)
            let sealedChunkSize = AgePayloadCipher.chunkSize + AgePayloadCipher.tagSize
            var chunk: [UInt8] = []
            while true {
                try source.read(upTo: sealedChunkSize, into: &chunk)
                guard chunk.count >= AgePayloadCipher.tagSize else {
                    throw AgeFormatError.badPayload("it ends before its final chunk")
                }
                let last = try chunk.count < sealedChunkSize || source.isAtEnd()
                // Only an empty file is an empty final chunk; elsewhere one could be appended.
                if last && chunk.count == AgePayloadCipher.tagSize && cipher.counter > 0 {
                    throw AgeFormatError.badPayload("it ends in an empty chunk")
                }
                guard let plaintext = try? cipher.open(chunk, last: last) else {
                    throw AgeFormatError.badPayload("chunk \(cipher.counter) does not authenticate"
                        + (last ? " as the final chunk (truncated or altered)" : " (altered, or data follows the final chunk)"))
                }
                try destination.write(plaintext)
                progress?(source.consumed)
                if last { break }
            }
            try destination.finish(sync: fsync)
        } catch let error as AgeFormatError {
            throw describe(error, file: input)
        }
    }

    private static func unwrapFileKey(_ header: AgeHeader, identities: [AgeIdentity]) throws -> SymmetricKey {
        // A passphrase protects a file only if nothing else can open it (the spec's rule).
        if header.stanzas.contains(where: { $0.type == "scrypt" }) && header.stanzas.count > 1 {
            throw AgeFormatError.malformedHeader("an scrypt stanza is not the only stanza")
        }
        for identity in identities {
            for stanza in header.stanzas {
                if let fileKey = try AgeX25519.unwrap(stanza, with: identity) { return fileKey }
            }
        }
        throw AgeFormatError.noMatch
    }

    private static func describe(_ error: AgeFormatError, file: String) -> MigsnapError {
        let damaged = "The file may be damaged or altered; restore it from another copy."
        switch error {
        case .notAgeFile:
            return .verificationFailed("\(file) is not an age-encrypted file.", hint: damaged)
        case .unsupportedVersion:
            return .verificationFailed("\(file) is in an age format version other than v1.",
                                       hint: "Decrypt it with a newer age and store it again.")
        case .malformedHeader(let reason):
            return .verificationFailed("\(file) has a malformed age header: \(reason).", hint: damaged)
        case .badMAC:
            return .verificationFailed("\(file) failed age header authentication (its MAC does not match).", hint: damaged)
        case .badPayload(let reason):
            return .verificationFailed("\(file) has a damaged age payload: \(reason).", hint: damaged)
        case .noMatch:
            return .invalidInput(
                "\(file) is encrypted to other recipients: none of the identities in MIGSNAP_AGE_IDENTITY can decrypt it.",
                hint: "Point MIGSNAP_AGE_IDENTITY at the key file of one of the recipients it was encrypted to.")
        }
    }
}
