// SPDX-License-Identifier: Apache-2.0
import ArgumentParser
import SVAKit

/// The gate's slow path against the number of bound mms and IOMMUs: ns per
/// call and per mm, and the invalidation commands it issues.
struct FanoutBench: BenchCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout", abstract: "The gate's slow path against the number of bound mms.")
    static let benchName = "fanout"
    /// Each bound mm has its own PASID, from 1 ..< 2^20 (MachineConfig's
    /// widest PASID space; PASID 0 is reserved).
    static let maxMMsRange = 1...((1 << 20) - 1)
    static let iommuCounts = [1, 4]

    @Option(help: "The largest number of bound mms; powers of ten up to it are measured (\(range(maxMMsRange))).")
    var maxMms: Int = 100_000
    @OptionGroup var output: BenchOutput

    func validate() throws { try check(maxMms, in: Self.maxMMsRange, "--max-mms") }

    struct Config: Encodable {
        var maxMms: Int
        var iommus: [Int]
    }

    var benchConfig: Config { Config(maxMms: maxMms, iommus: Self.iommuCounts) }

    func measure(_ progress: Progress) throws -> Metrics {
        var metrics = Metrics()
        var counts: [Int] = []
        var n = 1
        while n <= maxMms { counts.append(n); n *= 10 }
        // A root table per mm, plus the boot tables: at least 4 GiB.
        let frames = max(1 << 20, (maxMms + (1 << 18) + 1023) / 1024 * 1024)
        for iommus in Self.iommuCounts {
            let m = try Machine(MachineConfig(frames: frames, eventLogCapacity: 1 << 10))
            let units = try (0..<iommus).map { _ in try m.addIOMMU() }
            let devices = try units.map { try m.addDevice(iommu: $0.id) }
            var bound = 0
            for target in counts {
                while bound < target {
                    let mm = try m.createAddressSpace()
                    _ = try m.bindSVA(device: devices[bound % iommus], mm: mm)
                    bound += 1
                    if bound & 0xfff == 0 { progress.update("fanout: \(iommus) IOMMU(s), binding mm \(bound) of \(target)") }
                }
                progress.update("fanout: \(iommus) IOMMU(s), \(target) mms")
                let before = units.reduce(0) { $0 + $1.commandsReceived }
                let rounds = max(3, 200_000 / target)
                let t0 = nowNs()
                for _ in 0..<rounds { m.invalidateKernelRange(m.layout.directMapBase, .max) }
                let perCall = Double(nowNs() - t0) / Double(rounds)
                let commands = units.reduce(0) { $0 + $1.commandsReceived } - before
                metrics.add("ns_per_call_\(iommus)iommu_\(target)mm", perCall, "ns")
                metrics.add("ns_per_mm_\(iommus)iommu_\(target)mm", perCall / Double(target), "ns")
                metrics.add("commands_per_call_\(iommus)iommu_\(target)mm", Double(commands) / Double(rounds), "cmds")
            }
        }
        return metrics
    }
}
