import ArgumentParser
import Foundation
import MigsnapCore
#if canImport(Glibc)
import Glibc
#endif

/// Where output goes: results on stdout, diagnostics and progress on stderr; escape sequences
/// (colour, the progress line) only on a TTY that understands them (not TERM=dumb), and colour
/// never with NO_COLOR.
enum Terminal {
    static var stdinIsTTY: Bool { isatty(STDIN_FILENO) == 1 }
    static var escapes: Bool {
        isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }
    static var colour: Bool {
        escapes && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
    }

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func err(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func error(_ message: String, hint: String?) {
        err(paint("Error:", "31") + " " + UserText.message(message))
        if let hint { err(paint("Try:", "33") + " " + UserText.message(hint)) }
    }

    static func warn(_ message: String) {
        err(paint("Warning:", "33") + " " + UserText.message(message))
    }

    static func paint(_ text: String, _ code: String) -> String {
        colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let data = try JSON.encoder().encode(value)
        out(String(decoding: data, as: UTF8.self))
    }

    /// JSON already laid out as `JSON.encoder()` lays it out (see `ListingJSON`): megabytes for a
    /// large store, written from where they lie rather than copied twice more.
    static func printJSON(bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard let start = raw.baseAddress else { return }
            FileHandle.standardOutput.write(Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: start), count: raw.count, deallocator: .none))
        }
        out("")
    }

    /// Asks on a TTY; without one, refuses unless `--yes` was given (never hangs on a closed stdin).
    /// A "no" is the user's choice, not a failure: it is said plainly, and the run exits 1.
    static func confirm(_ question: String, yes: Bool) throws {
        if yes { return }
        guard stdinIsTTY else {
            throw MigsnapError.refused("Refusing to continue without confirmation: stdin is not a terminal.",
                                       hint: "Re-run with --yes once you have read the plan (or --dry-run to see it).")
        }
        FileHandle.standardError.write(Data("\(question) [y/N] ".utf8))
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard answer == "y" || answer == "yes" else {
            err("Nothing was changed.")
            throw ExitCode(1)
        }
    }
}

/// A progress line on stderr (bytes or pages, rate, ETA), drawn only where escape sequences are;
/// with the count of a transfer that runs alongside the phase where there is one. Reporters on
/// several threads (an engine, a bucket upload's part threads) may share it.
final class TerminalProgress: ProgressReporter, @unchecked Sendable {
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var phaseStart = Date()
    private var phase = ""
    private var current: (done: Int64, total: Int64?, unit: ProgressUnit)?
    private var alongside: (label: String, done: Int64, total: Int64?, since: Date)?
    private var drawn = false
    private let enabled: Bool

    /// When the command's first progress began: a command has several reporters, and the times
    /// `MIGSNAP_TIMINGS` prints all count from here.
    private static let firstStart = Date()

    init(enabled: Bool = Terminal.escapes) {
        _ = Self.firstStart
        self.enabled = enabled
    }

    func update(phase: String, done: Int64, total: Int64?, unit: ProgressUnit) {
        lock.withLock {
            if phase != self.phase {
                if Self.timings {
                    FileHandle.standardError.write(Data(String(format: "[%7.3f s] %@\n", Date().timeIntervalSince(Self.firstStart), phase).utf8))
                }
                self.phase = phase
                phaseStart = Date()
                // A transfer that has ended is not shown beside the phases after it.
                if let alongside, let total = alongside.total, alongside.done >= total { self.alongside = nil }
            }
            guard enabled else { return }
            current = (done, total, unit)
            draw()
        }
    }

    func update(alongside label: String, done: Int64, total: Int64?) {
        guard enabled else { return }
        lock.withLock {
            alongside = (label, done, total, alongside?.label == label ? alongside!.since : Date())
            draw()
        }
    }

    /// The line, at most ten times a second. Called with the lock held.
    private func draw() {
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        var parts: [String] = []
        if let current {
            parts.append("\(phase): " + Self.describe(done: current.done, total: current.total, unit: current.unit, since: phaseStart, now: now))
        }
        if let alongside {
            parts.append("\(alongside.label) " + Self.describe(done: alongside.done, total: alongside.total, unit: .bytes, since: alongside.since, now: now))
        }
        guard !parts.isEmpty else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(parts.joined(separator: "  ·  "))".utf8))
        drawn = true
    }

    /// "12.0 MiB / 40.0 MiB (30%)  4.0 MiB/s  ETA 7s", or without a total "12.0 MiB  4.0 MiB/s".
    private static func describe(done: Int64, total: Int64?, unit: ProgressUnit, since: Date, now: Date) -> String {
        let rate = Double(done) / max(now.timeIntervalSince(since), 0.001)
        guard let total, total > 0 else { return "\(Format.amount(done, unit))  \(Format.rate(rate, unit))" }
        let pct = min(100, Int(Double(done) * 100 / Double(total)))
        let remaining = rate > 0 ? Double(max(0, total - done)) / rate : 0
        return "\(Format.amount(done, unit)) / \(Format.amount(total, unit)) (\(pct)%)  \(Format.rate(rate, unit))  ETA \(Format.duration(remaining))"
    }

    private static let timings = ProcessInfo.processInfo.environment["MIGSNAP_TIMINGS"] != nil

    func finish() {
        lock.withLock {
            // Once per phase: a reporter may be finished again, or without a phase begun.
            if Self.timings, !phase.isEmpty {
                FileHandle.standardError.write(Data(String(format: "[%7.3f s] (%@ done)\n", Date().timeIntervalSince(Self.firstStart), phase).utf8))
            }
            phase = ""
            current = nil
            alongside = nil
            guard enabled, drawn else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
            drawn = false
        }
    }
}

enum Format {
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func amount(_ n: Int64, _ unit: ProgressUnit) -> String {
        switch unit {
        case .bytes: bytes(n)
        case .pages: UserText.count(Int(n), "page")
        }
    }

    static func rate(_ perSecond: Double, _ unit: ProgressUnit) -> String {
        switch unit {
        case .bytes: "\(bytes(Int64(perSecond)))/s"
        case .pages: "\(Int64(perSecond)) pages/s"
        }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\((s % 3600) / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }

    static func time(_ date: Date) -> String {
        RFC3339.human(date)
    }

    /// A plain text table: a header, then rows, columns padded to the widest cell.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        // Built by appending, not with NSString padding and a reversed copy: `list` of 10,000
        // snapshots spent more time here than in reading the store.
        func line(_ cells: [String]) -> String {
            var text = ""
            for (i, cell) in cells.enumerated() {
                if i > 0 { text += "  " }
                text += cell
                if i < cells.count - 1 { text += String(repeating: " ", count: max(0, widths[i] - cell.count)) }
            }
            // An empty last cell leaves padding behind: no line ends in spaces.
            while text.utf8.last == UInt8(ascii: " ") { text.removeLast() }
            return text
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
