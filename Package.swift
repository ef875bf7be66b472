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
        // The seed scenarios as a table, for tools and tests built on SVAKit.
        .library(name: "SVAKitScenarios", targets: ["SVAKitScenarios"]),
        // A library and an executable product cannot share a name, hence the case.
        .executable(name: "svakit", targets: ["SVAKitCLI"]),
    ],
    // The IOMMU_DEBUG_PAGEALLOC sanitizer is compiled in by default (its key
    // off unless a machine asks for it); `--disable-default-traits` compiles
    // it out, as CONFIG_IOMMU_DEBUG_PAGEALLOC=n (docs/KERNEL-MODEL.md §5).
    traits: [
        .default(enabledTraits: ["IOMMUDebugPagealloc"]),
        .trait(name: "IOMMUDebugPagealloc", description: "Compile in the IOMMU_DEBUG_PAGEALLOC sanitizer."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // `swift package generate-documentation`: the API reference (docs/API.md).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
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
            dependencies: ["CSVAKit", "CSVAKitCore"],
            swiftSettings: [.define("SVAKIT_IOMMU_DEBUG_PAGEALLOC", .when(traits: ["IOMMUDebugPagealloc"]))]
        ),
        // The seed scenarios (name, story, expected verdict per free mode) and
        // the attacker's helpers, on the public API only: the CLI and both
        // Swift test suites share them.
        .target(name: "SVAKitScenarios", dependencies: ["SVAKit"]),
        // Plain-C references for the benchmarks; not part of the library.
        .target(name: "CSVAKitBench"),
        .executableTarget(
            name: "SVAKitCLI",
            dependencies: [
                "SVAKit",
                "SVAKitScenarios",
                "CSVAKitBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "SVAKitTests",
            dependencies: ["SVAKit", "SVAKitScenarios", "CSVAKit"]
        ),
        // The CLI's outputs (JSON, traces) and options. The CLI encodes with
        // FoundationEssentials; the library never imports Foundation.
        .testTarget(
            name: "SVAKitCLITests",
            dependencies: ["SVAKitCLI", "SVAKit", "SVAKitScenarios"]
        ),
    ]
)
