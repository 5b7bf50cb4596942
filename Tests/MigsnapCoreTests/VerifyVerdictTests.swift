import MigsnapCore
import Testing

/// What `verify`'s report means as a whole (its exit status), from pure report entries.
@Suite("verify's verdict")
struct VerifyVerdictTests {
    private func hot(_ id: String, _ state: String?) -> VerifyResult {
        var result = VerifyResult(id: id, ok: true)
        result.hotCopy = state
        result.hotCopyProblem = state == "damaged" ? "missing" : nil
        return result
    }

    private func failsVerification(_ error: MigsnapError?) -> Bool {
        if case .verificationFailed = error { return true }
        return false
    }

    @Test func soundSnapshotsAndHotCopiesPass() {
        #expect(VerifySnapshot.verdict([], unchecked: []) == nil)
        #expect(VerifySnapshot.verdict([hot("a", nil), hot("b", "ok"), hot("c", "unchecked")], unchecked: []) == nil)
    }

    @Test func aDamagedHotCopyFailsVerificationAndNamesItsSnapshot() {
        let verdict = VerifySnapshot.verdict([hot("a", "ok"), hot("b", "damaged")], unchecked: [])
        #expect(failsVerification(verdict))
        #expect(verdict?.message.contains("hot copy of snapshot b is damaged") == true, "\(String(describing: verdict))")
    }

    @Test func aFailedSnapshotOutweighsOnesThatCouldNotBeChecked() {
        let results = [VerifyResult(id: "a", ok: false, error: "checksum"),
                       VerifyResult(id: "b", ok: false, error: "disk full", checked: false), hot("c", "damaged")]
        let verdict = VerifySnapshot.verdict(results, unchecked: [.failed("disk full")])
        #expect(failsVerification(verdict))
        #expect(verdict?.message == "1 of 3 snapshots failed verification.")
    }

    @Test func snapshotsThatCouldNotBeCheckedExitAsTheirError() {
        let results = [VerifyResult(id: "a", ok: true), VerifyResult(id: "b", ok: false, error: "no key", checked: false)]
        let badInput = VerifySnapshot.verdict(results, unchecked: [.invalidInput("no key")])
        guard case .invalidInput(let message, _) = badInput else {
            Issue.record("expected bad input, got \(String(describing: badInput))")
            return
        }
        #expect(message.contains("1 of 2 snapshots could not be checked"), "\(message)")
        guard case .failed = VerifySnapshot.verdict(results, unchecked: [.failed("disk full")]) else {
            Issue.record("expected a failure")
            return
        }
    }
}
