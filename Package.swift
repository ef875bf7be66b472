// swift-tools-version:6.3
// 6.3 is the real requirement: `@c @implementation` needs the 6.3 compiler
// (docs/BUILDING.md §3).
import PackageDescription

let package = Package(
    name: "SVAKit",
    products: [
        // Static: libSVAKit.a holds the Swift core and CSVAKit's objects, so C
        // harnesses can link it directly (docs/BUILDING.md §0 "Product .a").
        .library(name: "SVAKit", type: .static, targets: ["SVAKit"]),
        // A library and an executable product cannot share a name, hence the case.
        .executable(name: "svakit", targets: ["SVAKitCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // The C target owns the hand-written header (the contract) and the
        // compile-time layout checks. SwiftPM will not mix C and Swift in one
        // target, and publicHeadersPath must lie inside the target's path, hence
        // path "." (docs/BUILDING.md §0).
        .target(
            name: "CSVAKit",
            path: ".",
            sources: ["Sources/CSVAKit"],
            publicHeadersPath: "include"
        ),
        // Private to the engine: atomic access to shared memory and the
        // per-thread lock ranks. Not part of the C ABI, not installed.
        .target(name: "CSVAKitCore"),
        .target(
            name: "SVAKit",
            dependencies: ["CSVAKit", "CSVAKitCore"]
        ),
        // Plain-C references for the benchmarks; not part of the library.
        .target(name: "CSVAKitBench"),
        .executableTarget(
            name: "SVAKitCLI",
            dependencies: [
                "SVAKit",
                "CSVAKitBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "SVAKitTests",
            dependencies: ["SVAKit", "CSVAKit"]
        ),
        // The CLI's outputs (JSON, traces) and options. The CLI encodes with
        // FoundationEssentials; the library never imports Foundation.
        .testTarget(
            name: "SVAKitCLITests",
            dependencies: ["SVAKitCLI", "SVAKit"]
        ),
    ]
)
