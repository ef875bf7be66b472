// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import CSVAKitBench
import SVAKit
import SVAKitScenarios
import Synchronization

/// The gate with no SVA bound (key off) against an empty loop and a call to
/// an empty C function in another translation unit, in ns per iteration; and
/// the gate with the key on and one bound mm, for scale. Instruction counts
/// come from the C version under callgrind (bench/gate_bench.c, see
/// docs/BENCHMARKS.md); heap allocations per gate call from Benchmarks/.
struct GateBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate", abstract: "The invalidation gate with the static key off and on.")
    static let benchName = "gate"
    static let iterationsRange = 1000...(1 << 40)
    static let runs = 5

    @Option(help: "Loop iterations, best of \(runs) runs (\(range(iterationsRange))); the key-on case runs 1/1000 of them.")
    var iterations: Int = 100_000_000
    @OptionGroup var output: BenchOutput

    func validate() throws { try check(iterations, in: Self.iterationsRange, "--iterations") }

    struct Config: Encodable {
        var iterations: Int
        var runs: Int
    }

    var benchConfig: Config { Config(iterations: iterations, runs: Self.runs) }

    func measure(_ progress: Progress) throws -> Metrics {
        let m = try Machine(MachineConfig(frames: 1 << 18))
        precondition(!m.svaPresent)
        let iterations = self.iterations
        func best(_ label: String, _ body: () -> Void) -> Double {
            var b = Double.infinity
            for run in 1...Self.runs {
                progress.update("gate: \(label), run \(run) of \(Self.runs)")
                let t0 = nowNs()
                body()
                b = min(b, Double(nowNs() - t0) / Double(iterations))
            }
            return b
        }
        var sink: UInt64 = 0
        let empty = best("empty loop") {
            var s: UInt64 = 0
            for i in 0..<iterations { s = s &* 31 &+ UInt64(truncatingIfNeeded: i); blackHole(()) }
            sink &+= s
        }
        let gate = best("gate, key off") {
            var s: UInt64 = 0
            for i in 0..<iterations {
                s = s &* 31 &+ UInt64(truncatingIfNeeded: i)
                m.invalidateKernelRange(s, .max)
            }
            sink &+= s
        }
        let call = best("direct call") {
            var s: UInt64 = 0
            for i in 0..<iterations {
                s = s &* 31 &+ UInt64(truncatingIfNeeded: i)
                svakit_bench_noop(s, .max)
            }
            sink &+= s
        }
        // The merged gate (e37d5a2d60a3): guard(mutex)(&iommu_sva_lock), then
        // the bool iommu_sva_present, on every call, SVA bound or not. Here an
        // uncontended Synchronization.Mutex round trip around the bool read:
        // what each run of the deferred work pays with no SVA mm.
        let merged = Mutex(false)
        let mergedGate = best("merged form (mutex, then the bool)") {
            var s: UInt64 = 0
            for i in 0..<iterations {
                s = s &* 31 &+ UInt64(truncatingIfNeeded: i)
                if merged.withLock({ $0 }) { s &+= 1 }
            }
            sink &+= s
        }
        blackHole(sink)
        // Key on: one mm bound, nothing cached, so the slow path is the
        // bookkeeping (one range command and one fence).
        let s = try SVASetup(m)
        let onIterations = max(1, iterations / 1000)
        let t0 = nowNs()
        for i in 0..<onIterations { m.invalidateKernelRange(UInt64(i), .max) }
        let on = Double(nowNs() - t0) / Double(onIterations)
        blackHole(s)

        var metrics = Metrics()
        metrics.add("ns_empty_loop", empty, "ns")
        metrics.add("ns_gate_key_off", gate, "ns")
        metrics.add("ns_gate_cost_key_off", max(0, gate - empty), "ns")
        metrics.add("ns_direct_call", call, "ns")
        metrics.add("ns_gate_key_on_one_mm", on, "ns")
        metrics.add("ns_merged_gate_no_sva", mergedGate, "ns")
        metrics.add("ns_merged_gate_cost_no_sva", max(0, mergedGate - empty), "ns")
        return metrics
    }
}
