import Foundation
import Testing
@testable import MigsnapCore

@Suite("RFC 3339 times")
struct RFC3339Tests {
    @Test(arguments: [
        ("2026-11-27T07:16:22.429Z", 1_795_763_782.429),
        ("2026-11-27T07:16:22Z", 1_795_763_782.0),
        ("2026-11-27T08:16:22.5+01:00", 1_795_763_782.5),
        ("1970-01-01T00:00:00.000Z", 0.0),
        ("2024-02-29T23:59:59.999z", 1_709_251_199.999),
    ])
    func parses(_ text: String, _ seconds: Double) throws {
        let date = try #require(RFC3339.date(from: text))
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.0005)
    }

    @Test(arguments: ["", "2026-11-27", "2026-11-27 07:16:22Z", "2026-13-27T07:16:22Z", "2026-11-27T07:16:22", "2026-11-27T07:16:22.Z",
                      "2026-11-27T07:16:22Zjunk", "x026-11-27T07:16:22Z"])
    func rejects(_ text: String) {
        #expect(RFC3339.date(from: text) == nil)
    }

    @Test func formatsMillisecondsInUTCAndRoundTrips() throws {
        for seconds in [0.0, 1_795_763_782.429, 1_795_763_782.007, 1_795_763_782.07, 951_782_400.5] {
            let text = RFC3339.string(from: Date(timeIntervalSince1970: seconds))
            #expect(text.count == 24 && text.hasSuffix("Z"), "\(text)")
            #expect(abs(try #require(RFC3339.date(from: text)).timeIntervalSince1970 - seconds) < 0.0005)
        }
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 1_795_763_782.429)) == "2026-11-27T07:16:22.429Z")
    }
}
