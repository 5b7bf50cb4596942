import Foundation
import Testing

extension Project {
    /// Every name in the store with its size and modification time: what a reading command must not change.
    func storeListing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store).sorted().filter { !$0.hasPrefix(".scratch-") }.map { name in
            let attributes = try FileManager.default.attributesOfItem(atPath: store + "/" + name)
            return "\(name) \(attributes[.size] ?? "-") \((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        }
    }
}

/// `verify` checks hot copies and `list` marks them (issue 11).
extension HotTierTests {
    @Test func verifyChecksTheHotCopyAndChangesNothing() throws {
        let (p, _, hot) = try afterABadUpgrade()
        let good = try p.ok("verify")
        let line = try #require(good.stdout.split(separator: "\n").first { $0.contains(hot) })
        #expect(line.hasPrefix("ok ") && line.hasSuffix("hot copy: ok"), "\(good.stdout)")
        // The other snapshot (post-upgrade) has none, and says nothing about one.
        #expect(good.stdout.components(separatedBy: "hot copy").count == 2, "\(good.stdout)")
        let json = try #require(try p.json(try p.ok("verify", "--json").stdout) as? [[String: Any]])
        let entry = try #require(json.first { $0["id"] as? String == hot })
        #expect(entry["hot_copy"] as? String == "ok" && entry["hot_copy_problem"] is NSNull && entry["ok"] as? Bool == true, "\(entry)")
        #expect(json.filter { $0["id"] as? String != hot }.allSatisfy { $0["hot_copy"] is NSNull && $0.keys.count == entry.keys.count })

        for damage in Damage.allCases {
            let (p, _, hot) = try afterABadUpgrade()
            try damage.apply(to: p.store + "/\(hot).sqlite.hot")
            let listing = try p.storeListing()
            let problem = damage == .missing ? "missing" : "does not match its checksum"
            for arguments in [["verify"], ["verify", hot]] {
                let bad = try p.migsnap(arguments)
                #expect(bad.status == 3, "\(bad.output)")
                #expect(bad.stdout.contains("\(hot)  0002  hot copy: damaged (\(problem)); a restore will not use it"), "\(bad.stdout)")
                #expect(bad.stderr.hasPrefix("Error: The hot copy of snapshot \(hot) is damaged; a restore will not use it, and the compressed snapshot is sound.\n"),
                        "\(bad.stderr)")
                #expect(!bad.stderr.contains("Fatal error") && !bad.stderr.contains("Stack"), "\(bad.stderr)")
            }
            let badJSON = try #require(try p.json(try p.migsnap("verify", "--json").stdout) as? [[String: Any]])
            let badEntry = try #require(badJSON.first { $0["id"] as? String == hot })
            #expect(badEntry["ok"] as? Bool == true && badEntry["hot_copy"] as? String == "damaged"
                    && badEntry["hot_copy_problem"] as? String == problem, "\(badEntry)")
            // Reading commands write nothing: the damaged copy and its record stay for a restore to settle.
            #expect(try p.storeListing() == listing)
            #expect(try p.hotIDs() == [hot])
        }
    }

    @Test func listMarksTheSnapshotsWithAHotCopy() throws {
        let (p, _, hot) = try afterABadUpgrade()
        let lines = try p.ok("list").stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first)
        let column = try #require(header.range(of: "HOT "))
        let start = header.distance(from: header.startIndex, to: column.lowerBound)
        for line in lines.dropFirst() {
            let mark = String(line.dropFirst(start).prefix(3)).trimmingCharacters(in: .whitespaces)
            #expect(mark == (line.hasPrefix(hot) ? "yes" : ""), "\(lines.joined(separator: "\n"))")
        }
    }
}

extension PostgresHotTierTests {
    /// `verify` checks the clone (there, the recorded oid, still closed) and changes nothing: an
    /// opened clone stays opened for the next restore to distrust and drop.
    @Test func verifyChecksTheCloneAndLeavesItAlone() throws {
        let (db, p, _, hot) = try afterABadUpgrade()
        let clone = try #require(db.hotCopies().first)
        let good = try p.ok("verify", hot)
        #expect(good.stdout.hasPrefix("ok      \(hot)  0002  hot copy: ok"), "\(good.stdout)")
        try db.psql("ALTER DATABASE \(clone) ALLOW_CONNECTIONS true", database: "postgres")
        let opened = try p.migsnap("verify")
        #expect(opened.status == 3, "\(opened.output)")
        #expect(opened.stdout.contains("\(hot)  0002  hot copy: damaged (\(clone) was opened to connections since it was made, so it may have changed); a restore will not use it"),
                "\(opened.stdout)")
        #expect(opened.stderr.hasPrefix("Error: The hot copy of snapshot \(hot) is damaged"), "\(opened.stderr)")
        #expect(try db.psql("SELECT datallowconn FROM pg_database WHERE datname = '\(clone)'", database: "postgres") == "t")
        #expect(try p.hotIDs() == [hot])
        let json = try #require(try p.json(try p.migsnap("verify", "--json").stdout) as? [[String: Any]])
        #expect(json.first { $0["id"] as? String == hot }?["hot_copy"] as? String == "damaged", "\(json)")
        try db.psql("DROP DATABASE \(clone)", database: "postgres")
        let missing = try p.migsnap("verify", hot)
        #expect(missing.status == 3 && missing.stdout.contains("hot copy: damaged (the clone \(clone) is missing on the server)"), "\(missing.output)")
        // From a project whose database is another, the clone is not looked for: not a failure.
        let elsewhere = try p.migsnap(["verify", hot, "--url", "sqlite:///other.db"])
        #expect(elsewhere.status == 0, "\(elsewhere.output)")
        #expect(elsewhere.stdout.contains("hot copy: not checked (it is a clone on the server of "), "\(elsewhere.stdout)")
    }
}
