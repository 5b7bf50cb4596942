import Foundation
import MigsnapCore
import Testing

/// The backends the conformance suite runs on. Each fixture is a fresh, empty place.
enum BackendKind: String, CaseIterable, CustomTestStringConvertible {
    case directory

    var testDescription: String { rawValue }

    func make() throws -> Fixture {
        switch self {
        case .directory:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("migsnap-conformance-\(UUID().uuidString)").path
            return Fixture(backend: DirectoryBackend(directory: dir),
                           second: { DirectoryBackend(directory: dir) },
                           plant: { name, data in
                               try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                               try data.write(to: URL(fileURLWithPath: dir + "/" + name))
                           },
                           remove: { try? FileManager.default.removeItem(atPath: dir) })
        }
    }
}

/// One store location for a test: its backend, a second backend on the same place (another run),
/// a way to put a foreign object there, and its removal when the test ends.
final class Fixture {
    let backend: StoreBackend
    private let makeSecond: () throws -> StoreBackend
    private let planter: (String, Data) throws -> Void
    private let remove: () -> Void

    init(backend: StoreBackend, second: @escaping () throws -> StoreBackend, plant: @escaping (String, Data) throws -> Void,
         remove: @escaping () -> Void) {
        self.backend = backend
        self.makeSecond = second
        self.planter = plant
        self.remove = remove
    }

    func initialized() throws -> StoreBackend {
        try backend.initialize()
        return backend
    }

    func second() throws -> StoreBackend { try makeSecond() }
    func plant(_ name: String, _ data: Data) throws { try planter(name, data) }

    deinit { remove() }
}
