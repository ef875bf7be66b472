// swift-tools-version:6.3
// The hot paths under ordo-one/benchmark (`swift package benchmark`), kept in
// a package of their own so that the root package's `swift build` and
// `swift test` never build the benchmark harness. Run from this directory;
// scripts/bench-counts.sh checks the allocation counts. The MallocInterposer
// trait alone gives the malloc counters (no jemalloc, and the Linux 6.3 ARC
// runtime interposer, a default trait, stays off).
import PackageDescription

let package = Package(
    name: "SVAKitBenchmarks",
    dependencies: [
        .package(name: "SVAKit", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "SVAKitBenchmarks",
            dependencies: [
                .product(name: "SVAKit", package: "SVAKit"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "SVAKitBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
