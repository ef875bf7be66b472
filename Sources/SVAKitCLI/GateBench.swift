// SPDX-License-Identifier: Apache-2.0
import CSVAKitBench
import SVAKit
import SVAKitScenarios

/// The gate with no SVA bound (key off) against an empty loop and a call to
/// an empty C function in another translation unit, in ns per iteration; and
/// the gate with the key on and one bound mm, for scale. Instruction counts
/// come from the C version under callgrind (bench/gate_bench.c, see
/// docs/BENCHMARKS.md).
struct GateBench {
    let iterations: Int

    func run() throws -> BenchResult {
        let m = try Machine(MachineConfig(frames: 1 << 18))
        precondition(!m.svaPresent)
        func best(_ body: () -> Void) -> Double {
            var b = Double.infinity
            for _ in 0..<5 {
                let t0 = nowNs()
                body()
                b = min(b, Double(nowNs() - t0) / Double(iterations))
            }
            return b
        }
        var sink: UInt64 = 0
        let empty = best {
            var s: UInt64 = 0
            for i in 0..<iterations { s = s &* 31 &+ UInt64(truncatingIfNeeded: i); blackHole(()) }
            sink &+= s
        }
        let gate = best {
            var s: UInt64 = 0
            for i in 0..<iterations {
                s = s &* 31 &+ UInt64(truncatingIfNeeded: i)
                m.invalidateKernelRange(s, .max)
            }
            sink &+= s
        }
        let call = best {
            var s: UInt64 = 0
            for i in 0..<iterations {
                s = s &* 31 &+ UInt64(truncatingIfNeeded: i)
                svakit_bench_noop(s, .max)
            }
            sink &+= s
        }
        blackHole(sink)
        // Key on: one mm bound, nothing cached, so the slow path is the
        // bookkeeping (one range command and one fence).
        let s = try SVASetup(m)
        let onIterations = max(1, iterations / 1000)
        var t0 = nowNs()
        for i in 0..<onIterations { m.invalidateKernelRange(UInt64(i), .max) }
        let on = Double(nowNs() - t0) / Double(onIterations)
        _ = s
        t0 = 0
        return BenchResult(
            name: "gate",
            config: [("iterations", .int(iterations)), ("runs", .int(5))],
            metrics: [
                ("ns_empty_loop", empty, "ns"),
                ("ns_gate_key_off", gate, "ns"),
                ("ns_gate_cost_key_off", max(0, gate - empty), "ns"),
                ("ns_direct_call", call, "ns"),
                ("ns_gate_key_on_one_mm", on, "ns"),
            ])
    }
}
