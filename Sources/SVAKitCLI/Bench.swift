// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
#if canImport(Glibc)
import Glibc
#endif

/// `svakit bench NAME [options] [--json]`: one benchmark, a table or one JSON
/// object `{"bench": NAME, "config": {...}, "metrics": {...}}`. Performance
/// lives here, never in timed tests. Each benchmark is a subcommand with only
/// its own options; the allocation counts of the hot paths are checked by
/// the package in Benchmarks/ (scripts/bench-counts.sh).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark.",
        subcommands: [PagetableBench.self, GateBench.self, FanoutBench.self, BindBench.self,
                      WalkBench.self, DeferralBench.self, ScaleBench.self, DMABench.self, MachineBench.self,
                      ProfileBench.self, MitigationBench.self])
}

/// What every benchmark subcommand does: measure, then print a table or the JSON.
protocol BenchCommand: ParsableCommand {
    associatedtype Config: Encodable
    static var benchName: String { get }
    var output: BenchOutput { get }
    var benchConfig: Config { get }
    func measure(_ progress: Progress) throws -> Metrics
}

extension BenchCommand {
    func report(_ progress: Progress) throws -> BenchReport<Config> {
        let metrics = try measure(progress)
        progress.done()
        return BenchReport(bench: Self.benchName, config: benchConfig, metrics: metrics)
    }

    func run() throws {
        let r = try report(Progress(json: output.json))
        print(output.json ? try JSONOutput.report(r) : try r.table())
    }
}

struct BenchOutput: ParsableArguments {
    @Flag(help: "Print one JSON object instead of a table.") var json = false
}

/// Monotonic nanoseconds.
@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Keeps a value alive so the optimiser cannot drop the work that made it.
@inline(never) func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }
