// SPDX-License-Identifier: Apache-2.0
import SVAKit

/// The gate's slow path against the number of bound mms and IOMMUs: ns per
/// call and per mm, and the invalidation commands it issues.
struct FanoutBench {
    let maxMMs: Int

    func run() throws -> BenchResult {
        var metrics: [(String, Double, String)] = []
        var counts: [Int] = []
        var n = 1
        while n <= maxMMs { counts.append(n); n *= 10 }
        for iommus in [1, 4] {
            let m = try Machine(MachineConfig(frames: 1 << 20, eventLogCapacity: 1 << 10))
            let units = try (0..<iommus).map { _ in try m.addIOMMU() }
            let devices = try units.map { try m.addDevice(iommu: $0.id) }
            var bound = 0
            for target in counts {
                while bound < target {
                    let mm = try m.createAddressSpace()
                    _ = try m.bindSVA(device: devices[bound % iommus], mm: mm)
                    bound += 1
                }
                let before = units.reduce(0) { $0 + $1.counters.invalidations }
                let rounds = max(3, 200_000 / target)
                let t0 = nowNs()
                for _ in 0..<rounds { m.invalidateKernelRange(m.layout.directMapBase, .max) }
                let perCall = Double(nowNs() - t0) / Double(rounds)
                let commands = Double(units.reduce(0) { $0 + $1.counters.invalidations } - before) / Double(rounds)
                metrics.append(("ns_per_call_\(iommus)iommu_\(target)mm", perCall, "ns"))
                metrics.append(("ns_per_mm_\(iommus)iommu_\(target)mm", perCall / Double(target), "ns"))
                metrics.append(("commands_per_call_\(iommus)iommu_\(target)mm", commands, "cmds"))
            }
        }
        return BenchResult(name: "fanout", config: [("max_mms", .int(maxMMs)), ("iommus", .array([.int(1), .int(4)]))],
                           metrics: metrics)
    }
}
