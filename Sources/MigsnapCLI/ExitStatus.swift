import ArgumentParser
import Foundation
import MigsnapCore

/// The one table from errors to exit statuses (DESIGN.md, "Exit status").
enum ExitStatus {
    static func code(for error: MigsnapError) -> Int32 {
        switch error {
        case .failed: return 1
        case .invalidInput: return 2
        case .verificationFailed: return 3
        case .refused: return 4
        }
    }
}

/// Runs a command body: a `MigsnapError` is printed once as `Error: …` / `Try: …` on stderr and
/// becomes its exit status; anything unexpected is reported the same way with status 1, never a trace.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as MigsnapError {
        Terminal.error(error.message, hint: error.hint)
        throw ExitCode(ExitStatus.code(for: error))
    } catch let error as ExitCode {
        throw error
    } catch {
        Terminal.error("\(error)", hint: nil)
        throw ExitCode(1)
    }
}
