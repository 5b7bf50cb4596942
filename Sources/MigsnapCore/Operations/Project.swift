import Foundation

extension Configuration {
    /// The project's revision graph, read from its migration files.
    public func revisionGraph() throws -> RevisionGraph {
        let locations = try requireVersionLocations()
        return try RevisionGraph(RevisionFileReader.load(versionLocations: locations, recursive: recursiveVersionLocations))
    }
}

extension RevisionGraph {
    /// The migrations undone going from `current` to `target` (any revision sets), newest first.
    public func undone(from current: [String], to target: [String]) -> [String] {
        let known = current.filter { script($0) != nil }
        let gone = ancestors(of: known).subtracting(ancestors(of: target.filter { script($0) != nil }))
        return (try? topologicalSort(gone, heads: known)) ?? sortedByLoadOrder(gone).reversed()
    }
}
