/// A size in bytes as a person writes it in retention.json: `20GiB`, `500MB`, `1.5GB`, `4096`.
public struct ByteSize: Equatable, Hashable, Sendable, PolicyText {
    public let bytes: Int64

    public init(bytes: Int64) {
        self.bytes = bytes
    }

    /// Units as DESIGN.md spells them. Only these spellings: `gb` or `Gb` (gigabits) is more
    /// likely a mistake than a size, so it is refused rather than guessed.
    static let units: [(name: String, multiplier: Int64)] = [
        ("B", 1),
        ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
    ]

    static let accepted = "a number of bytes or a number with a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. \"20GiB\" or \"1.5GB\""

    /// Parses `<digits>[.<digits>]<unit>` or bare `<digits>` (bytes). What a fraction leaves
    /// below one byte is dropped: `0.1KiB` is 102 bytes.
    public static func parse(_ text: String) throws(MigsnapError) -> ByteSize {
        func malformed(_ problem: String = "is not a size") -> MigsnapError {
            .invalidInput("\"\(text)\" \(problem); expected \(accepted)")
        }
        let number = text.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unitName = String(text.dropFirst(number.count))
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty else { throw malformed() }
        let fraction = parts.count == 2 ? parts[1] : nil
        if let fraction, fraction.isEmpty { throw malformed() }

        let multiplier: Int64
        if unitName.isEmpty {
            multiplier = 1
        } else {
            guard let unit = units.first(where: { $0.name == unitName }) else {
                throw malformed("has an unknown unit \"\(unitName)\"")
            }
            multiplier = unit.multiplier
        }
        guard multiplier > 1 || fraction == nil else { throw malformed("has a fraction of a byte") }
        guard let wholeValue = Int64(whole) else { throw malformed("is too large") }
        let (wholeBytes, overflow) = wholeValue.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw malformed("is too large") }

        guard let fraction else { return ByteSize(bytes: wholeBytes) }
        // Exact decimal arithmetic: `1.1GB` must be 1_100_000_000, not a float's neighbour.
        guard fraction.count <= 18, let fractionValue = Int64(fraction) else {
            throw malformed("has too many decimal places")
        }
        var scale: Int64 = 1
        for _ in 0..<fraction.count { scale *= 10 }
        let product = fractionValue.multipliedFullWidth(by: multiplier)
        let fractionBytes = scale.dividingFullWidth(product).quotient
        let (total, totalOverflow) = wholeBytes.addingReportingOverflow(fractionBytes)
        guard !totalOverflow else { throw malformed("is too large") }
        return ByteSize(bytes: total)
    }

    /// The shortest exact spelling in the largest unit that fits, e.g. `20GiB`, `1.5GB`, `123B`;
    /// `parse(description)` gives the same number of bytes back.
    public var description: String {
        for unit in Self.units.dropFirst().sorted(by: { $0.multiplier > $1.multiplier })
        where bytes >= unit.multiplier {
            let (hundredths, overflow) = bytes.multipliedReportingOverflow(by: 100)
            guard !overflow, hundredths % unit.multiplier == 0 else { continue }
            let value = hundredths / unit.multiplier
            let fraction = value % 100
            let fractionText = fraction == 0 ? "" : fraction % 10 == 0 ? ".\(fraction / 10)" : ".\(fraction < 10 ? "0" : "")\(fraction)"
            return "\(value / 100)\(fractionText)\(unit.name)"
        }
        return "\(bytes)B"
    }
}
