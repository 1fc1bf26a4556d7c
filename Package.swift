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
            ]
        ),
        .target(name: "EngineRuntime", dependencies: ["SimKit", "ServingEngine"]),
        .systemLibrary(name: "CNcursesw", providers: [.apt(["libncurses-dev"])]),
        .target(
            name: "Console",
            dependencies: [
                "ServingEngine", "PodModel", "CNcursesw",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .target(name: "XDSTestSupport", dependencies: ["SimKit", "PodModel", "ServingEngine"]),
        .executableTarget(
            name: "xds",
            dependencies: [
                "PodModel", "ServingEngine", "EngineRuntime", "Console", "XDSTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SimKitTests", dependencies: ["SimKit"]),
        .testTarget(name: "PodModelTests", dependencies: ["SimKit", "PodModel", "ServingEngine", "XDSTestSupport"]),
        .testTarget(name: "ServingEngineTests", dependencies: ["ServingEngine", "XDSTestSupport"]),
        .testTarget(name: "EngineRuntimeTests", dependencies: ["EngineRuntime", "XDSTestSupport"]),
        .testTarget(name: "ConsoleTests", dependencies: ["Console", "XDSTestSupport"]),
    ]
)
