import Crypto
import Foundation
import Testing
@testable import MigsnapCore

@Suite("age encryption")
struct AgeTests {
    static let vectorDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("AgeVectors")

    // MARK: Round trips

    static let sizes = [0, 1, 65535, 65536, 65537, 3 * 65536, (1 << 20) + 123]

    @Test(arguments: sizes)
    func roundTripsForEitherOfTwoRecipients(size: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let plaintext = Self.randomBytes(size, seed: UInt64(size))
        try Data(plaintext).write(to: URL(fileURLWithPath: dir.sub("plain")))
        let alice = AgeIdentity.generate()
        let bob = AgeIdentity.generate()

        var reported: [Int64] = []
        try Age.encrypt(input: dir.sub("plain"), output: dir.sub("sealed"), recipients: [alice.recipient, bob.recipient]) {
            reported.append($0)
        }
        #expect(Age.isEncrypted(file: dir.sub("sealed")))
        #expect(FileSystem.permissions(dir.sub("sealed")) == 0o600)
        #expect(reported.last == Int64(size))
        #expect(reported == reported.sorted())
        // One tag per chunk and no empty chunk after a full one: the sealed size is exact.
        let chunks = max(1, (size + 65535) / 65536)
        let sealed = try Data(contentsOf: URL(fileURLWithPath: dir.sub("sealed")))
        let headerEnd = try #require(sealed.range(of: Data("\n--- ".utf8))).upperBound + 44
        #expect(sealed.count == headerEnd + 16 + size + 16 * chunks)

        for (name, identity) in [("alice", alice), ("bob", bob)] {
            try Age.decrypt(input: dir.sub("sealed"), output: dir.sub(name), identities: [identity])
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir.sub(name))) == Data(plaintext))
            #expect(FileSystem.permissions(dir.sub(name)) == 0o600)
        }
    }

    @Test func encryptsAFileWhileItIsStillBeingWritten() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let plaintext = Data(Self.randomBytes(3 * 65536 + 4321, seed: 7))
        let identity = AgeIdentity.generate()
        let writing = SharedFlag(true)
        _ = FileManager.default.createFile(atPath: dir.sub("growing"), contents: nil)
        // The writer appends in uneven pieces, pausing, while the encryption follows it.
        let writer = Background {
            let handle = try #require(FileHandle(forWritingAtPath: dir.sub("growing")))
            var offset = 0
            for piece in [1000, 70000, 65536, 3, 60000] + [plaintext.count] {
                let end = min(plaintext.count, offset + piece)
                try handle.write(contentsOf: plaintext[offset..<end])
                offset = end
                Thread.sleep(forTimeInterval: 0.02)
            }
            try handle.close()
            writing.value = false
        }
        try Age.encrypt(input: dir.sub("growing"), output: dir.sub("sealed"), recipients: [identity.recipient], waitFor: { offset, count in
            try GrowingFile.wait(for: dir.sub("growing"), bytes: offset + Int64(count), while: writing)
        })
        try writer.wait()
        try Age.decrypt(input: dir.sub("sealed"), output: dir.sub("opened"), identities: [identity])
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.sub("opened"))) == plaintext)
    }

    @Test func refusesToOverwriteAnExistingOutput() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("plain", "secret")
        try dir.write("existing", "keep me")
        #expect(throws: MigsnapError.self) {
            try Age.encrypt(input: dir.sub("plain"), output: dir.sub("existing"), recipients: [AgeIdentity.generate().recipient])
        }
        #expect(try String(contentsOfFile: dir.sub("existing"), encoding: .utf8) == "keep me")
        #expect(!Age.isEncrypted(file: dir.sub("plain")))
        #expect(!Age.isEncrypted(file: dir.sub("missing")))
    }

    // MARK: Failures

    @Test func wrongIdentityIsInvalidInputAndLeavesNoOutput() throws {
        let dir = try Self.sealedFile(size: 100_000, to: [AgeIdentity.generate().recipient])
        defer { dir.remove() }
        let error = try #require(throws: MigsnapError.self) {
            try Age.decrypt(input: dir.sub("sealed"), output: dir.sub("out"), identities: [AgeIdentity.generate()])
        }
        guard case .invalidInput(let message, _) = error else { Issue.record("\(error)"); return }
        #expect(message.contains("none of the identities in MIGSNAP_AGE_IDENTITY can decrypt it"))
        #expect(!FileManager.default.fileExists(atPath: dir.sub("out")))
    }

    /// Offsets counted back from the end of the file land in the payload: its last chunk, and the
    /// first of the two chunks.
    @Test(arguments: [1, 17, 40_000])
    func flippedPayloadByteFailsVerificationAndLeavesNoOutput(offsetFromEnd: Int) throws {
        let identity = AgeIdentity.generate()
        let dir = try Self.sealedFile(size: 100_000, to: [identity.recipient])
        defer { dir.remove() }
        try Self.modify(dir.sub("sealed")) { $0[$0.count - offsetFromEnd] ^= 0x01 }
        try Self.expectVerificationFailure(dir, identity)
    }

    @Test func truncatedPayloadFailsVerification() throws {
        let identity = AgeIdentity.generate()
        let dir = try Self.sealedFile(size: 3 * 65536, to: [identity.recipient])
        defer { dir.remove() }
        // Cut exactly at a chunk boundary: what is left authenticates, but no chunk is final.
        try Self.modify(dir.sub("sealed")) { $0.removeLast(65536 + 16) }
        try Self.expectVerificationFailure(dir, identity)
    }

    @Test func alteredMACFailsVerification() throws {
        let identity = AgeIdentity.generate()
        let dir = try Self.sealedFile(size: 10, to: [identity.recipient])
        defer { dir.remove() }
        try Self.modify(dir.sub("sealed")) { data in
            let mac = data.range(of: Data("\n--- ".utf8))!.upperBound
            data[mac + 5] = data[mac + 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        }
        try Self.expectVerificationFailure(dir, identity)
    }

    /// Another recipient's stanza, altered, still parses and unwraps nothing — only the MAC notices.
    @Test func alteredStanzaOfAnotherRecipientFailsVerification() throws {
        let identity = AgeIdentity.generate()
        let dir = try Self.sealedFile(size: 10, to: [identity.recipient, AgeIdentity.generate().recipient])
        defer { dir.remove() }
        try Self.modify(dir.sub("sealed")) { data in
            let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            // Lines: version, stanza 1 (2 lines), stanza 2 (2 lines), MAC.
            let secondBody = lines[0..<4].reduce(0) { $0 + $1.count + 1 }
            data[secondBody + 3] = data[secondBody + 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        }
        try Self.expectVerificationFailure(dir, identity)
    }

    @Test func rejectsAFileThatIsNotAge() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("plain", "just some text\n")
        try Self.expectVerificationFailure(dir, AgeIdentity.generate(), input: "plain")
    }

    // MARK: STREAM's last-chunk rules, on payloads crafted chunk by chunk

    @Test func acceptsAFullFinalChunk() throws {
        let (dir, identity) = try Self.craftedFile(chunks: [(65536, true)])
        defer { dir.remove() }
        try Age.decrypt(input: dir.sub("sealed"), output: dir.sub("out"), identities: [identity])
        #expect(FileSystem.fileSize(dir.sub("out")) == 65536)
    }

    @Test(arguments: [
        [(65536, false), (0, true)],      // an empty final chunk after a full one
        [(65536, false)],                 // no final chunk
        [(100, true), (100, true)],       // data after the final chunk
        [(65536, true), (10, true)],      // a full chunk marked final, then more
        [(100, false), (10, true)],       // a short chunk that is not final
    ])
    func rejectsBrokenChunkSequences(chunks: [(Int, Bool)]) throws {
        let (dir, identity) = try Self.craftedFile(chunks: chunks)
        defer { dir.remove() }
        try Self.expectVerificationFailure(dir, identity)
    }

    // MARK: C2SP/CCTV test vectors

    static var vectors: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: vectorDirectory.path)) ?? [])
            .filter { $0 != "README.md" }.sorted()
    }

    @Test(arguments: vectors)
    func cctvVector(name: String) throws {
        let file = try Data(contentsOf: Self.vectorDirectory.appendingPathComponent(name))
        let split = try #require(file.range(of: Data("\n\n".utf8)))
        var fields: [String: [String]] = [:]
        for line in String(decoding: file[..<split.lowerBound], as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            fields[parts[0], default: []].append(parts[1])
        }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try file[split.upperBound...].write(to: URL(fileURLWithPath: dir.sub("sealed")))
        let identities = try (fields["identity"] ?? []).map { try AgeIdentity(parsing: $0) }
        let expect = try #require(fields["expect"]?.first)

        let result = Result { try Age.decrypt(input: dir.sub("sealed"), output: dir.sub("out"), identities: identities) }
        switch (expect, result) {
        case ("success", .success):
            let out = try Data(contentsOf: URL(fileURLWithPath: dir.sub("out")))
            #expect(Hashing.sha256(of: out) == fields["payload"]?.first)
        case ("no match", .failure(MigsnapError.invalidInput)):
            break
        case ("HMAC failure", .failure(MigsnapError.verificationFailed)),
             ("header failure", .failure(MigsnapError.verificationFailed)),
             ("payload failure", .failure(MigsnapError.verificationFailed)):
            #expect(!FileManager.default.fileExists(atPath: dir.sub("out")))
        default:
            Issue.record("\(name): expected \(expect), got \(result)")
        }
    }

    // MARK: Keys

    /// The example from the age spec.
    @Test func derivesTheSpecsRecipientFromItsIdentity() throws {
        let identity = try AgeIdentity(parsing: "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        #expect(identity.recipient.text == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
        #expect(identity.secretText == "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        #expect(!"\(identity)".contains("SECRET"))
        #expect(try AgeRecipient(parsing: identity.recipient.text) == identity.recipient)
    }

    @Test func rejectsACorruptedBech32Checksum() throws {
        let recipient = AgeIdentity.generate().recipient.text
        let corrupted = String(recipient.dropLast()) + (recipient.last == "q" ? "p" : "q")
        #expect(throws: MigsnapError.self) { try AgeRecipient(parsing: corrupted) }
        #expect(throws: MigsnapError.self) { try AgeRecipient(parsing: String(recipient.prefix(10)) + recipient.dropFirst(10).uppercased()) }
        #expect(throws: Bech32.DecodingError.badChecksum) { try Bech32.decode(corrupted) }

        let secret = AgeIdentity.generate().secretText
        let badSecret = String(secret.dropLast()) + (secret.last == "Q" ? "P" : "Q")
        let error = try #require(throws: MigsnapError.self) { try AgeIdentity(parsing: badSecret) }
        #expect(!error.message.contains(badSecret.dropFirst(16).prefix(20)))
        // Identities are uppercase, recipients lowercase, as age itself insists.
        #expect(throws: MigsnapError.self) { try AgeIdentity(parsing: secret.lowercased()) }
        #expect(throws: MigsnapError.self) { try AgeRecipient(parsing: recipient.uppercased()) }
    }

    @Test func parsesRecipientLists() throws {
        let a = AgeIdentity.generate().recipient
        let b = AgeIdentity.generate().recipient
        let text = "# the team\n\(a.text), \(b.text)  # both\n\n  \(a.text)\n"
        #expect(try Age.parseRecipients(text) == [a, b])
        #expect(try Age.parseRecipients("# none yet\n").isEmpty)

        let secret = AgeIdentity.generate().secretText
        let error = try #require(throws: MigsnapError.self) { try Age.parseRecipients("\(a.text) \(secret)") }
        #expect(!error.message.contains(secret))
        #expect(throws: MigsnapError.self) { try Age.parseRecipients("age1notarecipient") }
    }

    @Test func loadsKeyFilesAndNamesTheBadLineWithoutItsContents() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let one = AgeIdentity.generate()
        let two = AgeIdentity.generate()
        try dir.write("keys", "# created: today\n# public key: \(one.recipient.text)\n\(one.secretText)\n\n\(two.secretText)\n")
        #expect(try AgeIdentity.load(file: dir.sub("keys")).map(\.recipient) == [one.recipient, two.recipient])

        let broken = String(two.secretText.dropLast(2))
        try dir.write("broken", "# a comment\n\(one.secretText)\n\(broken)\n")
        let error = try #require(throws: MigsnapError.self) { try AgeIdentity.load(file: dir.sub("broken")) }
        #expect(error == .invalidInput(
            "Line 3 of \(dir.sub("broken")) is not an age X25519 identity (AGE-SECRET-KEY-1…).",
            hint: "A key file holds one AGE-SECRET-KEY-1… per line, as age-keygen writes it."))

        try dir.write("empty", "# nothing\n")
        #expect(throws: MigsnapError.self) { try AgeIdentity.load(file: dir.sub("empty")) }
    }

    // MARK: Interoperability with the age command

    @Test func ageDecryptsOurFilesAndWeDecryptAges() throws {
        let age = try Self.ageTool("age")
        let keygen = try Self.ageTool("age-keygen")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try Self.run(keygen, ["-o", dir.sub("key")])
        let identities = try AgeIdentity.load(file: dir.sub("key"))
        let recipient = try Self.run(keygen, ["-y", dir.sub("key")]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(identities.map(\.recipient.text) == [recipient])

        let plaintext = Data(Self.randomBytes(3 * 65536 + 77, seed: 7))
        try plaintext.write(to: URL(fileURLWithPath: dir.sub("plain")))

        try Age.encrypt(input: dir.sub("plain"), output: dir.sub("ours.age"), recipients: [try AgeRecipient(parsing: recipient)])
        _ = try Self.run(age, ["-d", "-i", dir.sub("key"), "-o", dir.sub("ours.out"), dir.sub("ours.age")])
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.sub("ours.out"))) == plaintext)

        _ = try Self.run(age, ["-r", recipient, "-o", dir.sub("theirs.age"), dir.sub("plain")])
        try Age.decrypt(input: dir.sub("theirs.age"), output: dir.sub("theirs.out"), identities: identities)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.sub("theirs.out"))) == plaintext)

        // Empty input: one empty final chunk. (age creates an -o file only on its first write, so
        // the empty plaintext is read from its stdout.)
        try dir.write("empty", "")
        try Age.encrypt(input: dir.sub("empty"), output: dir.sub("empty.age"), recipients: identities.map(\.recipient))
        #expect(try Self.run(age, ["-d", "-i", dir.sub("key"), dir.sub("empty.age")]).isEmpty)
    }

    // MARK: Helpers

    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// A directory holding `sealed`: `size` random bytes encrypted to `recipients`.
    static func sealedFile(size: Int, to recipients: [AgeRecipient]) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try Data(randomBytes(size, seed: 1)).write(to: URL(fileURLWithPath: dir.sub("plain")))
        try Age.encrypt(input: dir.sub("plain"), output: dir.sub("sealed"), recipients: recipients)
        return dir
    }

    /// A directory holding `sealed`, a valid header followed by the chunks given as
    /// (plaintext size, sealed as final), in order — what `encrypt` would never write.
    static func craftedFile(chunks: [(Int, Bool)]) throws -> (TemporaryDirectory, AgeIdentity) {
        let identity = AgeIdentity.generate()
        let fileKey = SymmetricKey(size: .bits128)
        var file = AgeHeader.encode([try AgeX25519.wrap(fileKey: fileKey, to: identity.recipient)], fileKey: fileKey)
        let nonce = randomBytes(16, seed: 2)
        file += nonce
        var cipher = AgePayloadCipher(fileKey: fileKey, nonce: nonce)
        for (size, last) in chunks {
            file += try cipher.seal(randomBytes(size, seed: 3), last: last)
        }
        let dir = try TemporaryDirectory()
        try Data(file).write(to: URL(fileURLWithPath: dir.sub("sealed")))
        return (dir, identity)
    }

    static func modify(_ path: String, _ change: (inout Data) -> Void) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        change(&data)
        try data.write(to: URL(fileURLWithPath: path))
    }

    static func expectVerificationFailure(_ dir: TemporaryDirectory, _ identity: AgeIdentity, input: String = "sealed",
                                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        let error = try #require(throws: MigsnapError.self, sourceLocation: sourceLocation) {
            try Age.decrypt(input: dir.sub(input), output: dir.sub("out"), identities: [identity])
        }
        guard case .verificationFailed = error else {
            Issue.record("expected a verification failure, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(!FileManager.default.fileExists(atPath: dir.sub("out")), sourceLocation: sourceLocation)
    }

    /// The age command, or a recorded failure saying how to install it: the interop test never skips.
    static func ageTool(_ name: String) throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(path, "\(name) is not installed; the age interoperability test needs it (apt-get install age).")
    }

    /// Runs a tool with small outputs; its stdout, or an error with its stderr.
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw MigsnapError.failed("\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): "
                + String(decoding: err, as: UTF8.self))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
