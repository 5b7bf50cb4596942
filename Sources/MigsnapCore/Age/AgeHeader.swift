import Crypto
import Foundation

/// Why a file is not a well-formed age v1 file, or its header does not hold together. Each case
/// ends in `.verificationFailed` except `noMatch`, which is the caller's key, not the file.
enum AgeFormatError: Error, Equatable {
    case notAgeFile
    case unsupportedVersion
    case malformedHeader(String)
    case badMAC
    case noMatch
    case badPayload(String)
}

/// One recipient stanza: `-> TYPE ARG…` and a base64 body.
struct AgeStanza: Equatable {
    var arguments: [String]
    var body: [UInt8]

    var type: String { arguments[0] }
}

/// The textual header of an age v1 file, as the spec's ABNF defines it.
struct AgeHeader {
    static let versionLine = "age-encryption.org/v1"
    static let maximumSize = 1 << 20

    var stanzas: [AgeStanza]
    /// The header's bytes up to and including `---`: what the MAC covers.
    var macInput: [UInt8]
    var mac: [UInt8]

    /// The whole header of a new file, MAC line included.
    static func encode(_ stanzas: [AgeStanza], fileKey: SymmetricKey) -> [UInt8] {
        let header = encodeUpToMAC(stanzas)
        let mac = HMAC<SHA256>.authenticationCode(for: header, using: macKey(fileKey: fileKey))
        return header + Array(" \(RawBase64.encode(Array(mac)))\n".utf8)
    }

    private static func encodeUpToMAC(_ stanzas: [AgeStanza]) -> [UInt8] {
        var text = versionLine + "\n"
        for stanza in stanzas {
            text += "-> " + stanza.arguments.joined(separator: " ") + "\n"
            let body = RawBase64.encode(stanza.body)
            var line = body.startIndex
            // Full 64-column lines, then a shorter final line — empty when the body fills the last one.
            while true {
                let next = body.index(line, offsetBy: 64, limitedBy: body.endIndex) ?? body.endIndex
                text += body[line..<next] + "\n"
                if body.distance(from: line, to: next) < 64 { break }
                line = next
            }
        }
        return Array((text + "---").utf8)
    }

    static func macKey(fileKey: SymmetricKey) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: fileKey, salt: [UInt8](), info: Array("header".utf8), outputByteCount: 32)
    }

    /// Reads the header and leaves `input` at the first byte of the payload. Checks syntax only:
    /// the MAC needs the file key.
    static func read(from input: AgeInputFile) throws -> AgeHeader {
        var raw: [UInt8] = []
        func nextLine(_ what: String) throws -> [UInt8] {
            guard let line = try input.readLine(maxLength: maximumSize), raw.count + line.count < maximumSize else {
                throw AgeFormatError.malformedHeader("the header ends early or is too long (\(what))")
            }
            return line
        }

        let version = try input.readLine(maxLength: 256)
        guard let version, version == Array(versionLine.utf8) else {
            if let version, version.starts(with: Array("age-encryption.org/".utf8)) { throw AgeFormatError.unsupportedVersion }
            throw AgeFormatError.notAgeFile
        }
        raw += version + [0x0A]

        var stanzas: [AgeStanza] = []
        while true {
            let line = try nextLine("a stanza or the MAC line")
            if line.starts(with: Array("---".utf8)) {
                guard !stanzas.isEmpty else { throw AgeFormatError.malformedHeader("the header has no recipient stanza") }
                guard line.count == 4 + 43, line[3] == 0x20, let mac = RawBase64.decode(line[4...]), mac.count == 32 else {
                    throw AgeFormatError.malformedHeader("the MAC line is malformed")
                }
                raw += line[..<3]
                return AgeHeader(stanzas: stanzas, macInput: raw, mac: mac)
            }
            guard line.starts(with: Array("-> ".utf8)) else {
                throw AgeFormatError.malformedHeader("a line starts with neither '-> ' nor '---'")
            }
            let arguments = line[3...].split(separator: 0x20, omittingEmptySubsequences: false)
            guard arguments.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 >= 0x21 && $0 <= 0x7E } }) else {
                throw AgeFormatError.malformedHeader("a stanza has an empty or invalid argument")
            }
            raw += line + [0x0A]
            var body: [UInt8] = []
            while true {
                let bodyLine = try nextLine("a stanza body")
                guard bodyLine.count <= 64, bodyLine.allSatisfy(RawBase64.isAlphabet) else {
                    throw AgeFormatError.malformedHeader("a stanza body line is not base64 of at most 64 columns")
                }
                raw += bodyLine + [0x0A]
                body += bodyLine
                if bodyLine.count < 64 { break }
            }
            guard let decoded = RawBase64.decode(body) else {
                throw AgeFormatError.malformedHeader("a stanza body is not canonical base64")
            }
            stanzas.append(AgeStanza(arguments: arguments.map { String(decoding: $0, as: UTF8.self) }, body: decoded))
        }
    }
}
