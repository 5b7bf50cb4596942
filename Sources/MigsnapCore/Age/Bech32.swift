/// Bech32 as BIP 173 specifies it (not bech32m), without BIP 173's 90-character limit, as age uses it
/// for `age1…` recipients and `AGE-SECRET-KEY-1…` identities. A string is all lowercase or all
/// uppercase; the checksum is always computed over the lowercase form.
enum Bech32 {
    private static let charset = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]

    enum DecodingError: Error, Equatable {
        case mixedCase, missingSeparator, invalidCharacter, badChecksum, badPadding
    }

    /// The human-readable part (in the case it was written) and the decoded bytes.
    static func decode(_ text: String) throws(DecodingError) -> (hrp: String, data: [UInt8]) {
        let bytes = Array(text.utf8)
        let hasLower = bytes.contains { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }
        let hasUpper = bytes.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
        guard !(hasLower && hasUpper) else { throw .mixedCase }
        guard let separator = bytes.lastIndex(of: UInt8(ascii: "1")), separator >= 1, separator + 7 <= bytes.count else {
            throw .missingSeparator
        }
        let hrp = Array(bytes[..<separator])
        guard hrp.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { throw .invalidCharacter }
        var values: [UInt8] = []
        values.reserveCapacity(bytes.count - separator - 1)
        for byte in bytes[(separator + 1)...] {
            guard let value = charset.firstIndex(of: lowercased(byte)) else { throw .invalidCharacter }
            values.append(UInt8(value))
        }
        guard polymod(expand(hrp) + values) == 1 else { throw .badChecksum }
        let data = try regroup(values.dropLast(6), from: 5, to: 8, pad: false)
        return (String(decoding: hrp, as: UTF8.self), data)
    }

    /// Encodes in the case of `hrp` (age writes identities uppercase, recipients lowercase).
    static func encode(hrp: String, data: [UInt8]) -> String {
        // Regrouping 8-bit bytes into padded 5-bit groups cannot fail.
        let values = (try? regroup(data, from: 8, to: 5, pad: true)) ?? []
        let lowerHRP = Array(hrp.lowercased().utf8)
        let checksumInput = expand(lowerHRP) + values + [0, 0, 0, 0, 0, 0]
        let mod = polymod(checksumInput) ^ 1
        let checksum = (0..<6).map { UInt8((mod >> (5 * (5 - UInt32($0)))) & 31) }
        let text = String(decoding: lowerHRP + [UInt8(ascii: "1")] + (values + checksum).map { charset[Int($0)] }, as: UTF8.self)
        return hrp == hrp.lowercased() ? text : text.uppercased()
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        let lower = hrp.map(lowercased)
        return lower.map { $0 >> 5 } + [0] + lower.map { $0 & 31 }
    }

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(value)
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 {
                checksum ^= generator[i]
            }
        }
        return checksum
    }

    private static func regroup<C: Collection<UInt8>>(_ data: C, from: Int, to: Int, pad: Bool) throws(DecodingError) -> [UInt8] {
        var result: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        let mask = UInt32(1 << to - 1)
        for value in data {
            accumulator = accumulator << UInt32(from) | UInt32(value)
            bits += from
            while bits >= to {
                bits -= to
                result.append(UInt8((accumulator >> UInt32(bits)) & mask))
            }
        }
        if pad {
            if bits > 0 { result.append(UInt8((accumulator << UInt32(to - bits)) & mask)) }
        } else if bits >= from || (accumulator << UInt32(to - bits)) & mask != 0 {
            throw .badPadding
        }
        return result
    }
}
