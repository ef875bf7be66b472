// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit
#if canImport(Glibc)
import Glibc
#endif

/// `svakit bench NAME [--json]`: one benchmark, a table or one JSON object
/// `{"bench": NAME, "config": {...}, "metrics": {...}}`. Performance lives
/// here, never in timed tests.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a benchmark.")

    enum Name: String, ExpressibleByArgument, CaseIterable {
        case pagetable, gate, fanout, bind, walk, deferral, scale
    }

    @Argument(help: "One of: \(Name.allCases.map(\.rawValue).joined(separator: ", ")).") var name: Name
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @OptionGroup var machine: MachineOptions
    @Option(help: "pagetable: 4 KiB pages mapped for the map/unmap/cold-walk phases.") var pages: Int = 1 << 20
    @Option(help: "gate: loop iterations.") var iterations: Int = 100_000_000
    @Option(help: "fanout: the largest number of bound mms (powers of ten up to it).") var maxMms: Int = 100_000
    @Option(help: "bind: bind+unbind pairs.") var pairs: Int = 200_000
    @Option(help: "walk: translations per case.") var translations: Int = 2_000_000
    @Option(help: "deferral: kernel-table frees in the storm.") var frees: Int = 100_000

    func run() throws {
        let result: BenchResult
        switch name {
        case .pagetable: result = try PagetableBench(config: machine.config(), pages: pages).run()
        case .gate: result = try GateBench(iterations: iterations).run()
        case .fanout: result = try FanoutBench(maxMMs: maxMms).run()
        case .bind: result = try BindBench(pairs: pairs).run()
        case .walk: result = try WalkBench(translations: translations).run()
        case .deferral: result = try DeferralBench(frees: frees).run()
        case .scale: result = try ScaleBench(translations: translations).run()
        }
        print(json ? result.json : result.table)
    }
}

struct BenchResult {
    var name: String
    var config: [(String, JSON)]
    /// name, value, unit (for the table)
    var metrics: [(String, Double, String)]

    var json: String {
        JSON.object([
            ("bench", .string(name)),
            ("config", .object(config)),
            ("metrics", .object(metrics.map { ($0.0, $0.1 == $0.1.rounded() && abs($0.1) < 1e15 ? .int(Int($0.1)) : .double($0.1)) })),
        ]).text
    }

    var table: String {
        var t = TextTable(header: ["metric", "value", "unit"])
        for (k, v, u) in metrics { t.rows.append([k, v == v.rounded() ? String(Int(v)) : fixed(v, 2), u]) }
        let cfg = config.map { "\($0.0)=\($0.1.text)" }.joined(separator: " ")
        return "bench \(name): \(cfg)\n" + t.render()
    }
}

/// Monotonic nanoseconds.
@inline(__always) func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Keeps a value alive so the optimiser cannot drop the work that made it.
@inline(never) func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }
