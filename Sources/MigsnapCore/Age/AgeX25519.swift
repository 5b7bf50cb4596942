import Crypto
import Foundation

/// The X25519 recipient type: the file key wrapped with ChaCha20-Poly1305 under a key derived
/// from an ephemeral Diffie-Hellman share.
enum AgeX25519 {
    static let stanzaType = "X25519"
    private static let info = Array("age-encryption.org/v1/X25519".utf8)
    private static var zeroNonce: ChaChaPoly.Nonce { try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)) }

    static func wrap(fileKey: SymmetricKey, to recipient: AgeRecipient) throws -> AgeStanza {
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let share = Array(ephemeral.publicKey.rawRepresentation)
        let publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient.publicKey)
        guard let wrapKey = try wrapKey(secret: ephemeral, peer: publicKey, share: share, recipient: recipient) else {
            throw MigsnapError.invalidInput(
                "The age recipient \(recipient.text) is a weak (low-order) key that cannot be encrypted to.",
                hint: "Use a recipient made by age-keygen.")
        }
        let box = try ChaChaPoly.seal(fileKey.withUnsafeBytes { Array($0) }, using: wrapKey, nonce: zeroNonce)
        return AgeStanza(arguments: [stanzaType, RawBase64.encode(share)], body: Array(box.ciphertext + box.tag))
    }

    /// The file key when `stanza` is addressed to `identity`; nil when it is another recipient's
    /// or another type. Throws on a malformed X25519 stanza or an all-zero shared secret.
    static func unwrap(_ stanza: AgeStanza, with identity: AgeIdentity) throws -> SymmetricKey? {
        guard stanza.type == stanzaType else { return nil }
        guard stanza.arguments.count == 2, let share = RawBase64.decode(Array(stanza.arguments[1].utf8)), share.count == 32 else {
            throw AgeFormatError.malformedHeader("an X25519 stanza does not have exactly one 32-byte share")
        }
        // Checked before decrypting, against partitioning oracles (the spec's requirement).
        guard stanza.body.count == 32 else {
            throw AgeFormatError.malformedHeader("an X25519 stanza body is not 32 bytes")
        }
        let secret = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: identity.secretKey)
        let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: share)
        guard let wrapKey = try wrapKey(secret: secret, peer: peer, share: share, recipient: identity.recipient) else {
            throw AgeFormatError.malformedHeader("an X25519 share is a low-order point")
        }
        let box = try ChaChaPoly.SealedBox(nonce: zeroNonce, ciphertext: stanza.body[..<16], tag: stanza.body[16...])
        guard let fileKey = try? ChaChaPoly.open(box, using: wrapKey) else { return nil }
        return SymmetricKey(data: fileKey)
    }

    /// HKDF over the shared secret; nil when the secret is all zeros (a low-order share or
    /// recipient), which swift-crypto does not reject by itself.
    private static func wrapKey(secret: Curve25519.KeyAgreement.PrivateKey, peer: Curve25519.KeyAgreement.PublicKey,
                                share: [UInt8], recipient: AgeRecipient) throws -> SymmetricKey? {
        let shared = try secret.sharedSecretFromKeyAgreement(with: peer)
        let isZero = shared.withUnsafeBytes { bytes in bytes.reduce(0) { $0 | $1 } == 0 }
        guard !isZero else { return nil }
        return shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: share + recipient.publicKey,
                                              sharedInfo: info, outputByteCount: 32)
    }
}
