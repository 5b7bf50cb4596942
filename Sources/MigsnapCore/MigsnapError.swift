/// The one error type of the domain. Each case is a kind of failure that maps to one exit status
/// (the table lives in the CLI); the message names the problem, the hint the next step.
public enum MigsnapError: Error, Equatable, Sendable {
    /// The operation failed; the message says what, and what was or was not changed. Exit 1.
    case failed(String, hint: String? = nil)
    /// Bad input: configuration, URL, policy file, unknown or ambiguous id, missing database. Exit 2.
    case invalidInput(String, hint: String? = nil)
    /// A snapshot failed verification (checksum, decompression, content). Exit 3.
    case verificationFailed(String, hint: String? = nil)
    /// Refused for safety: a guard, a lock held by another run, no `--yes` without a TTY. Exit 4.
    case refused(String, hint: String? = nil)

    public var message: String {
        switch self {
        case .failed(let m, _), .invalidInput(let m, _), .verificationFailed(let m, _), .refused(let m, _):
            return m
        }
    }

    public var hint: String? {
        switch self {
        case .failed(_, let h), .invalidInput(_, let h), .verificationFailed(_, let h), .refused(_, let h):
            return h
        }
    }

    /// The same kind of error with a further sentence after the message.
    public func appending(_ sentence: String) -> MigsnapError {
        switch self {
        case .failed(let m, let h): return .failed("\(m) \(sentence)", hint: h)
        case .invalidInput(let m, let h): return .invalidInput("\(m) \(sentence)", hint: h)
        case .verificationFailed(let m, let h): return .verificationFailed("\(m) \(sentence)", hint: h)
        case .refused(let m, let h): return .refused("\(m) \(sentence)", hint: h)
        }
    }

    /// The same kind of error with more context in front of the message.
    public func prefixed(_ context: String) -> MigsnapError {
        switch self {
        case .failed(let m, let h): return .failed("\(context): \(m)", hint: h)
        case .invalidInput(let m, let h): return .invalidInput("\(context): \(m)", hint: h)
        case .verificationFailed(let m, let h): return .verificationFailed("\(context): \(m)", hint: h)
        case .refused(let m, let h): return .refused("\(context): \(m)", hint: h)
        }
    }
}
