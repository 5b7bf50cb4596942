import Foundation

/// How far back `keep_within` reaches from the newest snapshot: `36h`, `7d`, `2w`, `3m`, `1y`.
public struct RetentionDuration: Equatable, Hashable, Sendable, PolicyText {
    public enum Unit: String, Sendable, CaseIterable {
        case hours = "h"
        case days = "d"
        case weeks = "w"
        /// Calendar months: `1m` back from 31 March is 28 or 29 February, not 30 days.
        case months = "m"
        case years = "y"
    }

    public let value: Int
    public let unit: Unit

    public init(value: Int, unit: Unit) {
        self.value = value
        self.unit = unit
    }

    public static let zero = RetentionDuration(value: 0, unit: .days)

    public var isZero: Bool { value == 0 }

    public static func parse(_ text: String) throws(MigsnapError) -> RetentionDuration {
        let digits = text.dropLast()
        guard let last = text.last, let unit = Unit(rawValue: String(last)), !digits.isEmpty,
              digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits)
        else {
            throw .invalidInput("\"\(text)\" is not a duration; expected a whole number and a unit: h (hours), d (days), w (weeks), m (months) or y (years), e.g. \"7d\"")
        }
        return RetentionDuration(value: value, unit: unit)
    }

    /// The moment this duration before `date`, counted on the UTC Gregorian calendar so months
    /// and years have their real lengths. A duration longer than any calendar reaches (say
    /// `99999999y`) means "everything", so it saturates at the distant past.
    public func subtracted(from date: Date) -> Date {
        let (component, perUnit): (Calendar.Component, Int) = switch unit {
        case .hours: (.hour, 1)
        case .days: (.day, 1)
        case .weeks: (.day, 7)
        case .months: (.month, 1)
        case .years: (.year, 1)
        }
        let (amount, overflow) = value.multipliedReportingOverflow(by: perUnit)
        guard !overflow, amount <= Self.largestAmount[component, default: 0] else { return .distantPast }
        return Self.calendar.date(byAdding: component, value: -amount, to: date) ?? .distantPast
    }

    /// About ten thousand years in each calendar component: well past any snapshot, well inside
    /// what Calendar computes without overflowing.
    private static let largestAmount: [Calendar.Component: Int] = [
        .hour: 10_000 * 366 * 24, .day: 10_000 * 366, .month: 10_000 * 12, .year: 10_000,
    ]

    private static let calendar: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = .gmt
        return c
    }()

    public var description: String { "\(value)\(unit.rawValue)" }
}
