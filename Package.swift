// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "migsnap",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "migsnap", targets: ["migsnap"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C libraries, each behind a one-line shim; only the engine, compression and S3 modules import them.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Whole-buffer deflate for blocked gzip: faster per core than zlib, and blocks are whole buffers.
        .systemLibrary(name: "CLibDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),

        .target(name: "MigsnapCompression", dependencies: ["CZlib", "CLibDeflate"]),
        .target(name: "MigsnapCore", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "MigsnapSQLite", dependencies: ["MigsnapCore", "MigsnapCompression", "CSQLite"]),
        .target(name: "MigsnapPostgres", dependencies: ["MigsnapCore", "CLibPQ"]),
        .target(name: "MigsnapS3", dependencies: ["MigsnapCore", "CCurl", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "MigsnapCLI",
            dependencies: [
                "MigsnapCore", "MigsnapSQLite", "MigsnapPostgres", "MigsnapS3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "migsnap", dependencies: ["MigsnapCLI"]),

        .testTarget(name: "MigsnapCoreTests", dependencies: ["MigsnapCore"], exclude: ["Golden", "AgeVectors"]),
        .testTarget(name: "MigsnapCompressionTests", dependencies: ["MigsnapCompression"]),
        .testTarget(name: "MigsnapSQLiteTests", dependencies: ["MigsnapSQLite", "MigsnapCore"]),
        .testTarget(name: "MigsnapPostgresTests", dependencies: ["MigsnapPostgres", "MigsnapCore"]),
        .testTarget(name: "MigsnapS3Tests", dependencies: ["MigsnapS3", "MigsnapCore"], exclude: ["SigV4Vectors"]),
        .testTarget(name: "StoreConformanceTests", dependencies: ["MigsnapCore", "MigsnapS3"]),
        .testTarget(name: "EndToEndTests", dependencies: ["MigsnapCore", "MigsnapS3", "MigsnapPostgres"], exclude: ["Fixtures", "Golden"]),
    ]
)
