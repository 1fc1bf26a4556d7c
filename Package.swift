// swift-tools-version:6.1
import PackageDescription

// Layers follow shared/design/architecture.md; dependencies point down only:
// xds → Console → ServingEngine → PodModel → SimKit.
let package = Package(
    name: "xds",
    products: [
        .executable(name: "xds", targets: ["xds"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The HTTP face (APIServer). No HummingbirdTesting/AsyncHTTPClient: tests talk to a live
        // server with URLSession, which keeps a clean build ~4 min cheaper (swift-notes.md §2).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Already in the graph through hummingbird; named so APIServer can keep its logs quiet
        // (the console owns the terminal when it runs the server with --listen).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Also already in the graph through hummingbird; APIServer watches a connection's input
        // side with a channel handler (keep-alive without losing "the client left").
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.0.0"),
        // Also in the graph through hummingbird (its HTTP/1 codec hands requests on as HTTPTypes
        // parts); APIServer answers `Expect: 100-continue` in a handler on those parts.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // Also in the graph through hummingbird; APIServer turns its task's cancellation into the
        // service group's graceful shutdown (accepted connections are handed on, not dropped).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.0.0"),
    ],
    targets: [
        .target(
            name: "SimKit",
            dependencies: [.product(name: "HeapModule", package: "swift-collections")]
        ),
        .target(
            name: "PodModel",
            dependencies: ["SimKit", .product(name: "TOMLKit", package: "TOMLKit")]
        ),
        .target(
            name: "ServingEngine",
            dependencies: [
                "SimKit", "PodModel",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            // The engine is single-threaded: release builds skip the dynamic exclusivity checks on
            // its class properties (7.5% of a superpod run's instructions in callgrind). Debug
            // builds and tests keep them.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // NIO (already in the binary through Hummingbird) is the remote link's HTTP client:
        // URLSession would load FoundationNetworking and libcurl's ~30 libraries into every process.
        .target(
            name: "EngineRuntime",
            dependencies: [
                "SimKit", "ServingEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .systemLibrary(name: "CNcursesw", providers: [.apt(["libncurses-dev"])]),
        .target(
            name: "Console",
            dependencies: [
                "ServingEngine", "PodModel", "CNcursesw",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(
            name: "APIServer",
            dependencies: [
                "ServingEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // XDSTestSupport also carries the fake completion backend, so it sees APIServer's seam,
        // and a fake engine core for EngineHost tests (EngineRuntime's seam).
        .target(name: "XDSTestSupport", dependencies: ["SimKit", "PodModel", "ServingEngine", "APIServer", "EngineRuntime"]),
        .executableTarget(
            name: "xds",
            dependencies: [
                "PodModel", "ServingEngine", "EngineRuntime", "Console", "APIServer", "XDSTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // Release builds link the Swift runtime and Foundation in (ncurses and libc stay
            // shared): a process starts ~7 ms sooner, without loading and binding libFoundation's
            // symbols, an eighth of a whole Azure trace replay (issue 12 times whole processes).
            // The compile flag makes this target's imports name the static libraries to link.
            swiftSettings: [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release))],
            linkerSettings: [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release))]
        ),
        .testTarget(name: "SimKitTests", dependencies: ["SimKit"]),
        .testTarget(name: "PodModelTests", dependencies: ["SimKit", "PodModel", "ServingEngine", "XDSTestSupport"]),
        // Golden/Recorded holds the recorded golden runs (JSON read by path, not bundled).
        .testTarget(name: "ServingEngineTests", dependencies: ["ServingEngine", "XDSTestSupport"],
                    exclude: ["Golden/Recorded"]),
        .testTarget(name: "EngineRuntimeTests", dependencies: ["EngineRuntime", "XDSTestSupport"]),
        .testTarget(name: "ConsoleTests", dependencies: ["Console", "XDSTestSupport"]),
        .testTarget(name: "APIServerTests", dependencies: ["APIServer", "EngineRuntime", "XDSTestSupport"]),
    ]
)
