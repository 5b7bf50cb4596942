/// A value retention.json writes as a string (`"20GiB"`, `"7d"`): it is encoded as its
/// description and decoded through the same strict parser the policy file uses.
public protocol PolicyText: Codable, CustomStringConvertible {
    static func parse(_ text: String) throws(MigsnapError) -> Self
}

extension PolicyText {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Self.parse(text)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
