import Crypto
import Foundation

/// The payload's STREAM construction: 64 KiB chunks sealed with ChaCha20-Poly1305 under a key
/// derived from the file key and a random 16-byte nonce; each chunk's nonce is an 11-byte
/// big-endian counter and a last-chunk flag, so chunks cannot be reordered, dropped or cut off.
struct AgePayloadCipher {
    static let chunkSize = 64 * 1024
    static let tagSize = 16
    static let nonceSize = 16

    private let key: SymmetricKey
    private(set) var counter: UInt64 = 0

    init(fileKey: SymmetricKey, nonce: [UInt8]) {
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: fileKey, salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
    }

    /// One sealed chunk: ciphertext then tag.
    mutating func seal(_ plaintext: [UInt8], last: Bool) throws -> Data {
        let box = try ChaChaPoly.seal(plaintext, using: key, nonce: nextNonce(last: last))
        counter += 1
        // `combined` is nonce, ciphertext, tag; the nonce is implicit in the file.
        return box.combined.dropFirst(12)
    }

    /// The plaintext of one chunk (ciphertext and tag); throws when it does not authenticate.
    mutating func open(_ chunk: [UInt8], last: Bool) throws -> Data {
        let box = try ChaChaPoly.SealedBox(nonce: nextNonce(last: last), ciphertext: chunk.dropLast(Self.tagSize),
                                           tag: chunk.suffix(Self.tagSize))
        let plaintext = try ChaChaPoly.open(box, using: key)
        counter += 1
        return plaintext
    }

    private func nextNonce(last: Bool) throws -> ChaChaPoly.Nonce {
        var nonce = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { nonce[3 + i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(7 - i))) }
        nonce[11] = last ? 1 : 0
        return try ChaChaPoly.Nonce(data: nonce)
    }
}
