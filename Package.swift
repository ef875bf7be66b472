// swift-tools-version:6.3
// 6.3 is the real requirement: `@c @implementation` needs the 6.3 compiler
// (docs/BUILDING.md §3).
import PackageDescription

/// Every engine target: the sanitizer's trait and the explorer's schedule
/// points as compile-time conditions.
let engine: [SwiftSetting] = [
    .define("SVAKIT_IOMMU_DEBUG_PAGEALLOC", .when(traits: ["IOMMUDebugPagealloc"])),
    .define("SVAKIT_SCHEDULE_POINTS", .when(traits: ["ScheduleExplorer"])),
]

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
        // Off by default: the schedule points of `svakit explore` compile to
        // nothing in the ordinary build (docs/TESTING.md, "Every interleaving").
        .trait(
            name: "ScheduleExplorer",
            description: "Compile in the schedule points the interleaving explorer drives (svakit explore)."
        ),
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
        // The engine, one target per layer group, bottom up; each may import
        // only the ones above it in this list, so an upward reference does not
        // build (docs/ARCHITECTURE.md, "Layers"). Layers share `package`
        // declarations; the one library product is still `SVAKit`, which
        // re-exports the rest. CMake compiles the same sources as one module
        // (SVAKIT_SINGLE_MODULE), as swift-collections does.
        // Errors, ids, frame vocabulary, config enums, locks, the event log.
        .target(name: "SVAKitBase", dependencies: ["CSVAKit", "CSVAKitCore"], swiftSettings: engine),
        // Frames, ptdesc, the allocator, the sanitizer's page_ext; CPU page tables.
        .target(name: "SVAKitMemory", dependencies: ["SVAKitBase", "CSVAKit", "CSVAKitCore"], swiftSettings: engine),
        // IOMMU hardware (caches, walker, profiles) and the IOMMU core (iommu.c).
        .target(name: "SVAKitIOMMU", dependencies: ["SVAKitBase", "SVAKitMemory", "CSVAKit", "CSVAKitCore"], swiftSettings: engine),
        // SVA (iommu-sva.c), the key and the gate; deferred freeing of kernel tables.
        .target(
            name: "SVAKitSVA", dependencies: ["SVAKitBase", "SVAKitMemory", "SVAKitIOMMU", "CSVAKit", "CSVAKitCore"],
            swiftSettings: engine
        ),
        // DMA domains, the IOVA allocator, the DMA API, flush queue, swiotlb: on the core, never on SVA.
        .target(
            name: "SVAKitDMA", dependencies: ["SVAKitBase", "SVAKitMemory", "SVAKitIOMMU", "CSVAKit", "CSVAKitCore"],
            swiftSettings: engine
        ),
        // The machine, the kernel paths, the oracle's reports and the C ABI.
        .target(
            name: "SVAKit",
            dependencies: ["SVAKitBase", "SVAKitMemory", "SVAKitIOMMU", "SVAKitSVA", "SVAKitDMA", "CSVAKit", "CSVAKitCore"],
            swiftSettings: engine
        ),
        // The seed scenarios (name, story, expected verdict per free mode) and
        // the attacker's helpers, on the public API only: the CLI and both
        // Swift test suites share them.
        .target(name: "SVAKitScenarios", dependencies: ["SVAKit", "SVAKitExplorer"], swiftSettings: engine),
        // The interleaving explorer's search (DPOR over the schedule points
        // of SVAKitBase/Schedule); the machine-free half, so its own tests
        // can check it against brute force on small programs.
        .target(name: "SVAKitExplorer", dependencies: ["SVAKitBase"], swiftSettings: engine),
        // Plain-C references for the benchmarks; not part of the library.
        .target(name: "CSVAKitBench"),
        .executableTarget(
            name: "SVAKitCLI",
            dependencies: [
                "SVAKit",
                "SVAKitScenarios",
                "SVAKitExplorer",
                "CSVAKitBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "SVAKitTests",
            // The layers' `package` declarations are visible to tests through
            // plain imports (Support.swift), as to any target of this package.
            dependencies: ["SVAKit", "SVAKitBase", "SVAKitMemory", "SVAKitIOMMU", "SVAKitSVA", "SVAKitDMA",
                           "SVAKitScenarios", "SVAKitExplorer", "CSVAKit"]
        ),
        // The CLI's outputs (JSON, traces) and options. The CLI encodes with
        // FoundationEssentials; the library never imports Foundation.
        .testTarget(
            name: "SVAKitCLITests",
            dependencies: ["SVAKitCLI", "SVAKit", "SVAKitScenarios"]
        ),
    ]
)
